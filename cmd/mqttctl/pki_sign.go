package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKISignCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o       pki.SignOptions
		csrPath string
		profile string
	)
	cmd := &cobra.Command{
		Use:   "sign --csr FILE --profile server|client|bridge",
		Short: "Sign a CSR made anywhere (what openssl x509 -req -CA ... did)",
		Long: `sign issues a certificate for a CSR from any tool (openssl req, mqttctl pki csr,
a device). Only the CSR's public key and subject are used: the extensions come
from --profile and --host, so a CSR that asks to be a CA still gets a leaf, and
the names a server certificate holds are the ones you give.`,
		Example: `  mqttctl pki sign --csr sensor-09.csr --profile client
  mqttctl pki sign --csr broker2.csr --profile server --host broker2.example.com --out broker2.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPositive(cmd, "days"); err != nil {
				return err
			}
			if err := refuseDash(cmd, "out", "the certificate file that the pki directory's index records"); err != nil {
				return err
			}
			p, err := pki.ParseProfile(profile)
			if err != nil {
				return err
			}
			o.Profile = p
			csr, err := pki.ReadCSR(csrPath)
			if err != nil {
				return err
			}
			if o.Out == "" {
				o.Out = strings.TrimSuffix(csrPath, filepath.Ext(csrPath)) + ".crt"
			}
			cert, rep, err := f.dirFor(s).SignCSR(csr, o)
			if err != nil {
				return err
			}
			printReport(s.Out, rep)
			fmt.Fprintf(s.Out, "Serial %s, valid until %s\n", pki.FormatSerial(cert), cert.NotAfter.UTC().Format(time.DateOnly))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&csrPath, "csr", "", "the certificate request (PEM or DER)")
	fl.StringVar(&profile, "profile", "", "server, client or bridge")
	fl.StringArrayVar(&o.Hosts, "host", nil, "broker DNS names or IP addresses (server/bridge; default the CSR's CN)")
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity in days")
	fl.StringVar(&o.Out, "out", "", "certificate file to write (default: the CSR's name with .crt)")
	fl.BoolVar(&o.Force, "force", false, "replace an existing certificate file (never a key or a file of the pki directory); allow --days over 825; sign a CN that another valid client certificate has")
	_ = cmd.MarkFlagRequired("csr")
	_ = cmd.MarkFlagRequired("profile")
	return cmd
}
