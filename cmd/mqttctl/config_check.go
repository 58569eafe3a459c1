package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
)

func newConfigCheckCmd(s *streams) *cobra.Command {
	target := confgen.CheckServeTarget
	cmd := &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a mosquitto.conf the way its broker loads it (every error with file:line; exit 1 on errors)",
		Long: `check parses FILE (and its include_dir files), resolves every listener and then
does what the broker does at start-up without opening any socket: it reads and
matches every certificate, key, CA, CRL, password and ACL file. It reports every
problem in one run, each at the file:line of the option behind it.

--target serve (the default) also refuses what mqttctl serve does not implement;
--target mosquitto checks what mosquitto itself needs, for the version on PATH
(2.0 where there is none), --target mosquitto-2.0 or mosquitto-2.1 for that one:
for 2.0, the options that came in 2.1 are errors; for 2.1, the options it
deprecates and the password and ACL files it warns about are warnings.`,
		Example: `  mqttctl config check /etc/mosquitto/mosquitto.conf
  mqttctl config check --target mosquitto /etc/mosquitto/mosquitto.conf
  mqttctl config check --target mosquitto-2.1 /etc/mosquitto/mosquitto.conf`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := confgen.Load(args[0])
			if err != nil {
				return err
			}
			if target == confgen.CheckInstalledMosquitto {
				v, from, err := confgen.DetectMosquittoTarget(cmd.Context())
				if err != nil {
					return err
				}
				target = confgen.CheckTargetFor(v)
				fmt.Fprintf(s.Out, "checking for mosquitto %s (%s)\n", v, from)
			}
			r, ds := c.Check(target, broker.Check)
			errs := 0
			for _, d := range ds {
				fmt.Fprintln(s.Out, d)
				if !d.Warning {
					errs++
				}
			}
			if errs > 0 {
				fmt.Fprintf(s.Out, "%d errors\n", errs)
				return exitError{1}
			}
			for _, l := range r.Listeners {
				enrol := ""
				if l.RenewPKI != "" {
					enrol = fmt.Sprintf(", renew_pki %q ($mqttctl/renew)", l.RenewPKI)
				}
				if l.Provision {
					enrol += ", provision_by_claim on ($mqttctl/provision)"
				}
				fmt.Fprintf(s.Out, "listener %s: %s, anonymous %v, password_file %q, acl_file %q%s\n", l.Addr(), l.Kind(), l.Security.AllowAnonymous, l.Security.PasswordFile, l.Security.ACLFile, enrol)
			}
			fmt.Fprintln(s.Out, "ok")
			return nil
		},
	}
	cmd.Flags().Var(checkTargetFlag{&target}, "target", "which broker the file is for: serve (mqttctl serve), mosquitto (the version on PATH), mosquitto-2.0 or mosquitto-2.1")
	return cmd
}
