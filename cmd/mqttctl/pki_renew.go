package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKIRenewCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o        pki.RenewOptions
		expiring daysFlag
	)
	cmd := &cobra.Command{
		Use:   "renew NAME | --expiring WINDOW",
		Short: "Renew a certificate: same identity, names and key, new validity",
		Long: `renew issues a new certificate for the same identity: the same subject, names and
profile, and the same key (a new one with --rekey), signed by the directory's CA.
The old certificate stays valid until it expires or is revoked and is kept beside
the new one as NAME.prev.crt (NAME.prev.key with --rekey), so a device can be
moved back; mqttctl removes it once it is revoked or expired.

With --expiring WINDOW it is the directory's maintenance, for cron: it renews every
certificate that ends within the window and rewrites the CRL in the same change
(--crl-days), so the CRL never goes stale. A certificate it cannot renew (a key
missing) is reported and the command exits 1, after renewing the others. A revoked
certificate is never renewed.

mqttctl serve picks a renewed broker certificate up by itself (clients stay
connected); mosquitto on SIGHUP. Clients need their new certificate copied over
(the same key unless --rekey).`,
		Example: `  mqttctl pki renew server
  mqttctl pki renew sensor-07 --rekey
  mqttctl pki renew --expiring 30d
  # a device that made its own key (pki csr) keeps it: renewing re-signs its public key
  mqttctl pki renew sensor-08`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.Name = args[0]
			}
			o.Expiring = time.Duration(expiring)
			if (o.Name == "") == (o.Expiring == 0) {
				return fmt.Errorf("give a certificate's NAME or --expiring WINDOW (one of them)")
			}
			if err := checkPositive(cmd, "days"); err != nil {
				return err
			}
			rep, err := f.dirFor(s).Renew(o)
			if rep != nil {
				printReport(s.Out, rep)
			}
			if err != nil {
				return err
			}
			for _, a := range rep.Actions {
				switch {
				case a.Verb != "renewed":
				case strings.HasPrefix(a.What, string(pki.ProfileClient)):
					fmt.Fprintf(s.Out, "Copy %s (and its key with --rekey) to the device; the old one works until it expires.\n", a.Path)
				default:
					fmt.Fprintf(s.Out, "mqttctl serve uses %s at once, clients stay connected; mosquitto after SIGHUP (mqttctl reload mosquitto -c FILE checks, signals and confirms).\n", a.Path)
				}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.BoolVar(&o.Rekey, "rekey", false, "make a new key (of the same type) instead of keeping the old one")
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity of the new certificate in days")
	fl.Var(&expiring, "expiring", "renew every certificate that ends within this window (30d, 12h), and rewrite the CRL")
	fl.IntVar(&o.CRLDays, "crl-days", pki.DefaultCRLDays, "with --expiring: validity of the rewritten CRL, in days")
	return cmd
}
