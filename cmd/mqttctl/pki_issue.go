package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKIIssueCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o                   pki.IssueOptions
		notBefore, notAfter string
		batch               batchFlags
	)
	cmd := &cobra.Command{
		Use:   "issue server|client|bridge|bootstrap|claim NAME",
		Short: "Issue one broker, client, bridge, bootstrap or claim certificate from the directory's CA",
		Long: `issue adds a certificate and a new key signed by the directory's CA.

  server NAME   servers/NAME.crt (NAME "server" replaces server.crt with --force)
  client NAME   clients/NAME.crt, CN = NAME = the MQTT identity
  bridge NAME   servers/NAME.crt usable as both broker and client
  bootstrap NAME  bootstrap/NAME.crt, a device's factory certificate: accepted
                only by 'mqttctl enroll serve' to obtain the client certificate
                NAME, refused by serve's MQTT listeners
  claim NAME    claim/NAME.crt, shared by a batch of devices: on a serve
                listener with '# mqttctl: provision on' it may only ask, on
                $mqttctl/provision, for a device's own certificate (with the
                device's one-time token, or alone for a name starting with
                --prefix); refused everywhere else, and by mosquitto

` + batchHelp,
		Example: `  mqttctl pki issue client sensor-02
  # a second broker, reached by name and by address (CN edge1)
  mqttctl pki issue server edge1 --cn edge1 --host edge1.example.com --host 192.0.2.11
  mqttctl pki issue bootstrap sensor-03 --days 30
  # a claim for a batch of devices, which may name themselves line1-*
  mqttctl pki issue claim factory-2026 --prefix line1- --days 90
  # reissue the default broker certificate with an extra name
  mqttctl pki issue server server --force --host localhost --host mqtt.example.com
` + batchExample,
		Args: func(cmd *cobra.Command, args []string) error {
			if batch.file != "" {
				return nil // checked by runIssueBatch, in its words
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "days"); err != nil {
				return err
			}
			if batch.file != "" {
				return runIssueBatch(cmd, s, f, o, batch, args)
			}
			if err := batch.refuseWithout(); err != nil {
				return err
			}
			p, err := pki.ParseProfile(args[0])
			if err != nil {
				return err
			}
			o.Profile, o.Name = p, args[1]
			if o.NotBefore, err = parseTimeFlag("--not-before", notBefore); err != nil {
				return err
			}
			if o.NotAfter, err = parseTimeFlag("--not-after", notAfter); err != nil {
				return err
			}
			rep, err := f.dirFor(s).Issue(o)
			if err != nil {
				return err
			}
			printReport(s.Out, rep)
			return nil
		},
	}
	fl := cmd.Flags()
	addKeyTypeFlag(cmd, &o.KeyType)
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity in days")
	fl.StringArrayVar(&o.Hosts, "host", nil, "a DNS name or IP address of the broker (repeatable; servers only)")
	fl.StringVar(&o.CN, "cn", "", "subject common name (default: the client name, or the first host)")
	fl.BoolVar(&o.Force, "force", false, "replace an existing certificate and key")
	fl.StringVar(&o.ClaimPrefix, "prefix", "", "claim only: device names it may provision without a token start with this")
	fl.StringVar(&notBefore, "not-before", "", "start of validity, RFC 3339 (default now)")
	fl.StringVar(&notAfter, "not-after", "", "end of validity, RFC 3339 (default now + --days)")
	cmd.MarkFlagsMutuallyExclusive("days", "not-after")
	batch.add(cmd)
	return cmd
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: use RFC 3339, e.g. 2027-01-31T00:00:00Z", name, v)
	}
	return t, nil
}
