package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKICheckCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o        pki.CheckOptions
		output   outputFormat
		quiet    bool
		expiring = daysFlag(pki.ExpiryWarning)
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the whole directory: chains, keys, usages, expiry, subjects, modes, host names",
		Long: `check reads every certificate and key in the directory and reports, one line each:
chains that do not verify, keys that do not match their certificate, usages that
do not fit (a client certificate that could act as a broker), certificates that
expired or expire within --expiring (30 days), identical subjects, files others
can read, and --host names the broker certificate lacks.

Exit status 1 when anything is an error or a certificate in use expires within the
window (renew it: mqttctl pki renew NAME, or --expiring for all), for cron.`,
		Example: `  mqttctl pki check
  mqttctl pki check --dir /etc/mqttctl/pki --host mqtt.example.com --host 192.0.2.10
  mqttctl pki check -q --expiring 45d || mail -s 'MQTT pki needs attention' ops@example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Within = time.Duration(expiring)
			d := f.dirFor(s)
			if f.caPassFile == "" {
				d.CAPassword = nil // never prompt during a check
			}
			findings, err := d.Check(o)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(s, findings); err != nil {
					return err
				}
			} else {
				errs, warns := 0, 0
				for _, fd := range findings {
					switch fd.Level {
					case pki.LevelError:
						errs++
					case pki.LevelWarn:
						warns++
					case pki.LevelOK:
						if quiet {
							continue
						}
					}
					fmt.Fprintln(s.Out, fd)
				}
				fmt.Fprintf(s.Out, "%d errors, %d warnings\n", errs, warns)
			}
			if pki.HasErrors(findings) || pki.NeedsRenewal(findings) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&o.Hosts, "host", nil, "a name clients dial; it must be among the broker certificate's SANs (repeatable)")
	cmd.Flags().StringVar(&o.Server, "server", "server", "which broker certificate --host is checked against (server, or a name under servers/)")
	addOutputFlag(cmd, &output)
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only warnings and errors")
	cmd.Flags().Var(&expiring, "expiring", "report (and exit 1 for) certificates in use that end within this window (30d, 12h)")
	return cmd
}
