package main

import (
	"encoding/csv"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newEnrollTokenCreateCmd(s *streams, f *enrollFlags) *cobra.Command {
	var (
		o       pki.TokenOptions
		ttl     daysFlag = daysFlag(pki.DefaultTokenTTL)
		profile string
		batch   string
	)
	cmd := &cobra.Command{
		Use:   "create NAME | --batch FILE",
		Short: "Make a one-time enrolment token for a device (printed once, stored hashed)",
		Long: `create makes a one-time token that lets the device NAME enrol once at
'mqttctl enroll serve' (HTTP Basic NAME:TOKEN; the CSR's CN must be NAME). The
token is printed once, alone on standard output; only its SHA-256 is kept in
the pki directory (tokens.json, 0600). It expires after --ttl.

A name that already has an unused token, or a current client certificate, is
refused; --force replaces the unused token, and lets the enrolment supersede
the current certificate (which stays valid until it expires or is revoked:
revoke it if the device was lost).

--batch FILE makes one token per line of FILE (the first comma-separated field
of each line is the name; blank lines and # comments are skipped), all or
none, and prints CSV "name,token" for the factory.`,
		Example: `  (umask 077 && mqttctl enroll token create sensor-17 --ttl 7d > sensor-17.token)
  (umask 077 && mqttctl enroll token create --batch devices.csv > tokens.csv)`,
		Args: func(cmd *cobra.Command, args []string) error {
			if batch != "" {
				return cobra.NoArgs(cmd, args)
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Profile, o.TTL = pki.Profile(profile), time.Duration(ttl)
			if batch != "" {
				file, err := os.Open(batch)
				if err != nil {
					return err
				}
				o.Names, err = pki.ReadNames(file, batch)
				file.Close()
				if err != nil {
					return err
				}
			} else {
				o.Names = args
			}
			toks, err := f.dir(s).CreateTokens(o)
			if err != nil {
				return err
			}
			if batch == "" {
				fmt.Fprintln(s.Out, toks[0].Secret)
				fmt.Fprintf(s.Err, "made a one-time token for %s, valid until %s; it is shown only this once: give it to the device (e.g. in a 0600 file), never on a command line\n",
					toks[0].Name, toks[0].Expires.Format(time.RFC3339))
				return nil
			}
			w := csv.NewWriter(s.Out)
			w.Write([]string{"name", "token"})
			for _, t := range toks {
				w.Write([]string{t.Name, t.Secret})
			}
			w.Flush()
			fmt.Fprintf(s.Err, "made %d one-time tokens, valid until %s; they are shown only this once: keep the CSV as secret as the devices' keys\n",
				len(toks), toks[0].Expires.Format(time.RFC3339))
			return w.Error()
		},
	}
	fl := cmd.Flags()
	fl.Var(&ttl, "ttl", "how long the token can be used (24h, 7d; at most 400d)")
	fl.StringVar(&profile, "profile", string(pki.ProfileClient), "the certificate profile the token enrols (client)")
	fl.StringVar(&batch, "batch", "", "a file with one device name per line: one token each, printed as CSV")
	fl.BoolVar(&o.Force, "force", false, "replace the name's unused token, and let the enrolment supersede its current certificate")
	return cmd
}
