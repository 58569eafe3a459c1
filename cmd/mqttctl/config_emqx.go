package main

import (
	"errors"
	"fmt"
	"os"
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
		Short: "Write EMQX 5.8 configuration (its users file and ACL) from the same PKI, password file and ACL",
		Long: `emqx writes, in --out:

  emqx.conf    an SSL listener with the pki's CA, certificate and key, the only MQTT
               listener (EMQX's default tcp 1883, ws 8083 and wss 8084 are turned off;
               its HTTP API and dashboard listen on 127.0.0.1:18083 only)
  users.json   the password file's users for EMQX's built-in database,
               converted without knowing the passwords (mosquitto's $7$ is PBKDF2-SHA512,
               which EMQX's pbkdf2 authenticator checks from the same salt), and the
               matching authenticator in emqx.conf
  acl.conf     with --acl: the ACL as EMQX file authorization (each user's deny lines,
               then its allow lines, then its %u patterns' deny and allow lines with
               the username for %u, then deny all; no_match = deny). A rule EMQX
               cannot hold exactly is refused at its file:line (for a pattern, naming
               the user): patterns with %c (the client chooses its id: use %u) or %u
               inside a level, usernames with '/', read lines ending in '+' or in
               '+/#' after another level (EMQX lets them grant a subscription 'a/#'),
               a deny that overlaps a read line after it, writes to $SYS, text
               acl.conf cannot carry.

--mode mtls is refused: EMQX checks revocation only against the CRL at the URL each
client certificate names, and mqttctl's certificates name none, so a revoked
certificate would log in.

A user that cannot be converted ($6$ hashes, another iteration count, a salt that is not
text, as mosquitto_passwd makes) is reported at its line, and nothing is written unless
--partial. Set such a user's password again with mqttctl passwd add.`,
		Example: `  mqttctl config emqx --pki pki --mode tls --passwd passwd --out emqx/
  # again, now with the ACL (--force replaces the files written before)
  mqttctl config emqx --pki pki --mode tls --passwd passwd --acl acl --out emqx/ --force`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return errors.New("give the directory to write to with --out DIR")
			}
			if err := refuseDash(cmd, "out", "a directory of files"); err != nil {
				return err
			}
			if o.ACLFile != "" {
				var err error
				if o.ACLPath, err = filepath.Abs(filepath.Join(out, "acl.conf")); err != nil {
					return err
				}
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
			committed := false
			if _, err := os.Lstat(out); err != nil {
				defer func() { // a refusal leaves no directory it made
					if !committed {
						os.Remove(out)
					}
				}()
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
			committed = true
			for _, n := range names {
				fmt.Fprintf(s.Out, "Wrote %s\n", filepath.Join(out, n))
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.PKIDir, "pki", "pki", "pki directory (ca.crt, server.crt, server.key)")
	addModeFlag(cmd, &o.Mode, "tls", "tls (one-way, passwords); mtls is refused (EMQX cannot check pki/crl.pem)")
	fl.StringVar(&o.PasswordFile, "passwd", "", "mosquitto password file to convert into users.json (required)")
	fl.StringVar(&o.ACLFile, "acl", "", "mosquitto ACL file to carry over as acl.conf")
	fl.StringVar(&o.Listen, "listen", "0.0.0.0:8883", "SSL listener address")
	fl.StringVar(&out, "out", "", "directory to write emqx.conf (and users.json) to")
	fl.BoolVar(&force, "force", false, "replace existing files")
	fl.BoolVar(&partial, "partial", false, "write the users that convert even when others cannot")
	return cmd
}
