package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

type passwordFlags struct {
	batch string // -b PASSWORD, as mosquitto_passwd
	stdin bool
}

func (p *passwordFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVarP(&p.batch, "batch", "b", "", "the password on the command line (visible to other users in ps; prefer --password-stdin)")
	cmd.Flags().BoolVar(&p.stdin, "password-stdin", false, "read the password from the first line of standard input")
}

func (p *passwordFlags) read(s *streams, confirm bool) ([]byte, error) {
	switch {
	case p.batch != "" && p.stdin:
		return nil, errors.New("give the password with -b or --password-stdin, not both")
	case p.batch != "":
		return []byte(p.batch), nil
	case p.stdin:
		return readSecret(s, "-", "", false)
	}
	return readSecret(s, "", "Password", confirm)
}

func newPasswdCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Manage mosquitto password files ($7$ PBKDF2-SHA512)",
		Long: `passwd edits password files that mosquitto (password_file) and mqttctl serve read.
Hashes are mosquitto's $7$ format (PBKDF2-HMAC-SHA512, 101 iterations by
default); $6$ lines are read. Files are created 0600, rewritten atomically and
locked against concurrent edits. Lines mqttctl does not understand, comments
included, are kept as they are (mosquitto_passwd would drop every user after the
first comment).`,
	}
	cmd.AddCommand(newPasswdAddCmd(s), newPasswdDeleteCmd(s), newPasswdVerifyCmd(s), newPasswdListCmd(s), newPasswdImportCmd(s))
	return cmd
}

func warnUnparsed(s *streams, path string, pf *confgen.PasswordFile) {
	for _, l := range pf.Unparsed() {
		why := "not a user:hash line"
		if l.Err != nil {
			why = "user " + l.User + ": " + l.Err.Error()
		}
		if strings.HasPrefix(strings.TrimSpace(l.Raw), "#") {
			why = "comment"
		}
		fmt.Fprintf(s.Err, "warning: %s:%d: kept a line mqttctl does not use (%s)\n", path, l.Line, why)
	}
}

func newPasswdAddCmd(s *streams) *cobra.Command {
	var (
		pw         passwordFlags
		iterations int
	)
	cmd := &cobra.Command{
		Use:   "add FILE USER",
		Short: "Add a user or change a password (creates FILE if needed)",
		Example: `  mqttctl passwd add passwd alice                      # asks twice on the terminal
  printf '%s\n' "$PW" | mqttctl passwd add passwd alice --password-stdin
  mqttctl passwd add passwd alice -b s3cret              # like mosquitto_passwd -b`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "iterations"); err != nil {
				return err
			}
			path, user := args[0], args[1]
			if err := ident.Validate(user); err != nil {
				return err
			}
			secret, err := pw.read(s, true)
			if err != nil {
				return err
			}
			hash, err := confgen.HashPassword(secret, iterations)
			if err != nil {
				return err
			}
			_, statErr := os.Stat(path)
			verb := "Added"
			err = confgen.EditPasswordFile(path, true, func(pf *confgen.PasswordFile) error {
				if _, ok := pf.Lookup(user); ok {
					verb = "Updated"
				}
				pf.Set(user, hash)
				warnUnparsed(s, path, pf)
				return nil
			})
			if err != nil {
				return err
			}
			if statErr != nil {
				fmt.Fprintf(s.Out, "Created %s (mode 0600)\n", path)
			}
			fmt.Fprintf(s.Out, "%s %s in %s\n", verb, user, path)
			return nil
		},
	}
	pw.add(cmd)
	cmd.Flags().IntVar(&iterations, "iterations", confgen.DefaultIterations, "PBKDF2 iterations")
	return cmd
}

func newPasswdDeleteCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:     "delete FILE USER",
		Aliases: []string{"rm"},
		Short:   "Remove a user",
		Example: `  mqttctl passwd delete passwd alice`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, user := args[0], args[1]
			found := false
			err := confgen.EditPasswordFile(path, false, func(pf *confgen.PasswordFile) error {
				found = pf.Delete(user)
				if !found {
					return fmt.Errorf("user %s is not in %s", user, path)
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Deleted %s from %s\n", user, path)
			return nil
		},
	}
}

func newPasswdVerifyCmd(s *streams) *cobra.Command {
	var pw passwordFlags
	cmd := &cobra.Command{
		Use:     "verify FILE USER",
		Short:   "Check a password (exit 0 when it matches, 1 when not)",
		Example: `  printf '%s\n' "$PW" | mqttctl passwd verify passwd alice --password-stdin && echo ok`,
		Args:    cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			pf, err := confgen.ReadPasswordFile(args[0])
			if err != nil {
				return err
			}
			h, ok := pf.Lookup(args[1])
			if !ok {
				fmt.Fprintf(s.Out, "no: user %s is not in %s\n", args[1], args[0])
				return exitError{1}
			}
			ph, err := confgen.ParseHash(h)
			if err != nil {
				fmt.Fprintf(s.Out, "no: the hash of %s is unusable: %v\n", args[1], err)
				return exitError{1}
			}
			secret, err := pw.read(s, false)
			if err != nil {
				return err
			}
			if !ph.Verify(secret) {
				fmt.Fprintln(s.Out, "no: wrong password")
				return exitError{1}
			}
			fmt.Fprintln(s.Out, "ok")
			return nil
		},
	}
	pw.add(cmd)
	return cmd
}

func newPasswdListCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:     "list FILE",
		Short:   "List the users of a password file",
		Example: `  mqttctl passwd list passwd`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pf, err := confgen.ReadPasswordFile(args[0])
			if err != nil {
				return err
			}
			for _, u := range pf.Users() {
				h, _ := pf.Lookup(u)
				kind := "unusable hash"
				if ph, err := confgen.ParseHash(h); err == nil {
					kind = fmt.Sprintf("$%d$", ph.Kind)
					if ph.Kind == 7 {
						kind += fmt.Sprintf(" %d iterations", ph.Iterations)
					}
				}
				fmt.Fprintf(s.Out, "%s\t%s\n", u, kind)
			}
			warnUnparsed(s, args[0], pf)
			return nil
		},
	}
}

func newPasswdImportCmd(s *streams) *cobra.Command {
	var (
		out        string
		iterations int
	)
	cmd := &cobra.Command{
		Use:   "import PLAINFILE",
		Short: "Hash a file of user:password lines (like mosquitto_passwd -U)",
		Long: `import hashes every user:password line of PLAINFILE, in place or into --out.
It refuses a file that already holds hashes, so nothing is hashed twice.`,
		Example: `  mqttctl passwd import users.txt --out passwd
  mqttctl passwd import passwd        # in place`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "iterations"); err != nil {
				return err
			}
			in := args[0]
			data, err := os.ReadFile(in)
			if err != nil {
				return fmt.Errorf("read %s: %w", in, err)
			}
			pf := confgen.ParsePasswordFile(data)
			n := 0
			for i, l := range pf.Lines {
				if l.User == "" {
					continue
				}
				if _, err := confgen.ParseHash(l.Hash); err == nil || strings.HasPrefix(l.Hash, "$6$") || strings.HasPrefix(l.Hash, "$7$") {
					return fmt.Errorf("%s:%d: user %s already has a hash; import takes plain user:password lines (nothing was changed)", in, l.Line, l.User)
				}
				if err := ident.Validate(l.User); err != nil {
					return fmt.Errorf("%s:%d: %w", in, l.Line, err)
				}
				// The password is everything after the first ':' (it may hold ':').
				_, plain, _ := strings.Cut(strings.TrimSpace(l.Raw), ":")
				h, err := confgen.HashPassword([]byte(plain), iterations)
				if err != nil {
					return fmt.Errorf("%s:%d: user %s: %w", in, l.Line, l.User, err)
				}
				pf.Lines[i] = confgen.PasswordLine{Raw: l.User + ":" + h, User: l.User, Hash: h, Line: l.Line}
				n++
			}
			target := in
			if out != "" {
				target = out
			}
			if err := fsx.WriteFile(target, pf.Marshal(), 0o600, target == in); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Hashed %d users into %s\n", n, target)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write here instead of replacing PLAINFILE")
	cmd.Flags().IntVar(&iterations, "iterations", confgen.DefaultIterations, "PBKDF2 iterations")
	return cmd
}
