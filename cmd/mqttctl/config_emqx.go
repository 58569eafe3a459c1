package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

func newConfigEMQXCmd(s *streams) *cobra.Command {
	var (
		o       confgen.EMQXOptions
		out     string
		force   bool
		partial bool
	)
	cmd := &cobra.Command{
		Use:   "emqx --pki DIR --mode tls|mtls --out DIR",
		Short: "Write EMQX 5.8 configuration (and its users file) from the same PKI and password file",
		Long: `emqx writes, in --out:

  emqx.conf    an SSL listener with the pki's CA, certificate and key; for --mode mtls
               verify_peer and fail_if_no_peer_cert, and the certificate CN as the
               username (peer_cert_as_username = cn, like use_identity_as_username)
  users.json   with --passwd: the password file's users for EMQX's built-in database,
               converted without knowing the passwords (mosquitto's $7$ is PBKDF2-SHA512,
               which EMQX's pbkdf2 authenticator checks from the same salt), and the
               matching authenticator in emqx.conf

A user that cannot be converted ($6$ hashes, another iteration count, a salt that is not
text, as mosquitto_passwd makes) is reported at its line, and nothing is written unless
--partial. Set such a user's password again with mqttctl passwd add.`,
		Example: `  mqttctl config emqx --pki pki --mode mtls --out emqx/
  mqttctl config emqx --pki pki --mode tls --passwd passwd --out emqx/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("give the directory to write to with --out DIR")
			}
			if err := refuseDash(cmd, "out", "a directory of files"); err != nil {
				return err
			}
			files, problems, err := confgen.GenerateEMQX(o)
			for _, p := range problems {
				fmt.Fprintln(s.Err, diagnosticWithHint(p))
			}
			if err != nil {
				return err
			}
			if len(problems) > 0 && !partial {
				return fmt.Errorf("%d users cannot be converted (above); nothing written: set their passwords again with mqttctl passwd add, or write the others with --partial", len(problems))
			}
			if err := fsx.MkdirPrivate(out); err != nil {
				return err
			}
			names := make([]string, 0, len(files))
			for n := range files {
				names = append(names, n)
			}
			sort.Strings(names)
			var t fsx.Txn
			defer t.Abort()
			for _, n := range names {
				if err := t.Add(filepath.Join(out, n), files[n], 0o600, force); err != nil {
					return err
				}
			}
			if err := t.Commit(); err != nil {
				return err
			}
			for _, n := range names {
				fmt.Fprintf(s.Out, "Wrote %s\n", filepath.Join(out, n))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.PKIDir, "pki", "pki", "pki directory (ca.crt, server.crt, server.key)")
	fl.StringVar(&o.Mode, "mode", "mtls", "tls (one-way, passwords) or mtls (client certificates)")
	fl.StringVar(&o.PasswordFile, "passwd", "", "mosquitto password file to convert into users.json (required for --mode tls)")
	fl.StringVar(&o.Listen, "listen", "0.0.0.0:8883", "SSL listener address")
	fl.StringVar(&out, "out", "", "directory to write emqx.conf (and users.json) to")
	fl.BoolVar(&force, "force", false, "replace existing files")
	fl.BoolVar(&partial, "partial", false, "write the users that convert even when others cannot")
	return cmd
}
