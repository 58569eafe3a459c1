package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

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
