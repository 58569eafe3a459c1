package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKIRevokeCmd(s *streams, f *pkiFlags) *cobra.Command {
	var o pki.RevokeOptions
	cmd := &cobra.Command{
		Use:   "revoke NAME | --serial HEX",
		Short: "Revoke a certificate and rewrite the CRL (what openssl ca -revoke and -gencrl did)",
		Long: `revoke marks a certificate revoked in index.yaml (date and reason) and rewrites
pki/crl.pem, signed by the CA that issued it. mqttctl serve with crlfile picks the
new CRL up by itself; mosquitto reads it on SIGHUP (mqttctl reload mosquitto -c
FILE checks the files, then signals it).

NAME is the name the certificate was issued under (pki list shows it). It
revokes every certificate of that name still valid: the current one and the
one pki renew replaced (a lost device holds both). --serial revokes just one.`,
		Example: `  # a device was lost
  mqttctl pki revoke sensor-07 --reason keyCompromise
  # by serial: every certificate that renew (or issue --force) replaced
  for s in $(mqttctl pki list -o json | jq -r '.[] | select(.status == "replaced") | .serial'); do mqttctl pki revoke --serial "$s" --reason superseded; done`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Name = args[0]
			}
			if (o.Name == "") == (o.Serial == "") {
				return fmt.Errorf("give the certificate's NAME or --serial HEX (one of them)")
			}
			if err := checkPositive(cmd, "crl-days"); err != nil {
				return err
			}
			revoked, info, err := f.dirFor(s).Revoke(o)
			if err != nil {
				return err
			}
			for _, e := range revoked {
				fmt.Fprintf(s.Out, "Revoked %s certificate %s (serial %s, %s) on %s\n", e.Profile, e.Name, e.Serial, e.RevocationReason, e.RevokedAt.Format(time.RFC3339))
			}
			printCRL(s, info)
			return nil
		},
	}
	cmd.Flags().StringVar(&o.Serial, "serial", "", "the certificate's serial in hex (colons allowed)")
	cmd.Flags().StringVar(&o.Reason, "reason", "unspecified", "keyCompromise, superseded, cessationOfOperation, affiliationChanged, privilegeWithdrawn, ...")
	cmd.Flags().IntVar(&o.CRLDays, "crl-days", pki.DefaultCRLDays, "validity of the rewritten CRL, in days")
	return cmd
}

func newPKICRLCmd(s *streams, f *pkiFlags) *cobra.Command {
	var days int
	cmd := &cobra.Command{
		Use:   "crl",
		Short: "Rewrite the CRL (pki/crl.pem) with a new number and next update",
		Long: `crl rewrites pki/crl.pem from index.yaml: a v2 CRL signed by the issuing CA (the
intermediate when there is one, plus the root's CRL so a whole chain checks),
with a CRL number and a next update --days from now. A broker refuses every
client once its CRL is past its next update: run this from cron well before.`,
		Example: `  mqttctl pki crl
  mqttctl pki crl --dir /etc/mqttctl/pki --days 7
  openssl crl -in pki/crl.pem -noout -text`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPositive(cmd, "days"); err != nil {
				return err
			}
			info, err := f.dirFor(s).WriteCRL(days)
			if info != nil {
				printCRL(s, info)
			}
			return err
		},
	}
	cmd.Flags().IntVar(&days, "days", pki.DefaultCRLDays, "days until the CRL's next update")
	return cmd
}

func printCRL(s *streams, info *pki.CRLInfo) {
	for _, w := range info.Warnings {
		fmt.Fprintf(s.Err, "warning: %s\n", w)
	}
	for _, p := range info.Removed {
		fmt.Fprintf(s.Out, "Removed %s (kept by pki renew; now revoked or expired)\n", p)
	}
	fmt.Fprintf(s.Out, "Wrote %s: CRL number %d, %d revoked, next update %s (rewrite it before: mqttctl pki crl)\n",
		info.Path, info.Number, info.Revoked, info.NextUpdate.Format(time.DateOnly))
	fmt.Fprintln(s.Out, "mqttctl serve picks it up by itself; mosquitto on SIGHUP (mqttctl reload mosquitto -c FILE checks, signals and confirms).")
}
