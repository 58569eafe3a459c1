package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKICSRCmd(s *streams) *cobra.Command {
	var (
		o pki.CSROptions
	)
	cmd := &cobra.Command{
		Use:   "csr NAME",
		Short: "Write a new key and a certificate signing request (what openssl req -new did)",
		Long: `csr writes NAME.key (unencrypted, mode 0600) and NAME.csr in --out-dir. Send the
CSR to whoever runs the CA; they sign it with 'mqttctl pki sign'. The key never
leaves this machine.`,
		Example: `  mqttctl pki csr sensor-07
  mqttctl pki csr broker2 --host broker2.example.com --out-dir /etc/mosquitto/certs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Name = args[0]
			if err := refuseDash(cmd, "out-dir", "a key and a request, two files"); err != nil {
				return err
			}
			keyPath, csrPath, err := pki.NewCSR(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Wrote key %s (mode 0600) and request %s\n", keyPath, csrPath)
			fmt.Fprintf(s.Out, "Next, on the CA's machine:\n  mqttctl pki sign --csr %s --profile client\n", shellWord(csrPath))
			return nil
		},
	}
	fl := cmd.Flags()
	addKeyTypeFlag(cmd, &o.KeyType)
	fl.StringVar(&o.CN, "cn", "", "subject common name (default NAME)")
	fl.StringVar(&o.Org, "org", "", "subject organisation")
	fl.StringArrayVar(&o.Hosts, "host", nil, "DNS names or IP addresses to request (the signer decides)")
	fl.StringVar(&o.OutDir, "out-dir", ".", "directory for NAME.key and NAME.csr")
	fl.BoolVar(&o.Force, "force", false, "replace existing files")
	return cmd
}
