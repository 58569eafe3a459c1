package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
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
		Example: `  mqttctl passwd import users.txt --out /etc/mosquitto/passwd
  mqttctl passwd import users.txt     # in place: users.txt becomes a password file`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "iterations"); err != nil {
				return err
			}
			in := args[0]
			if out == "-" {
				data, n, err := confgen.HashPlainFile(in, iterations)
				if err != nil {
					return err
				}
				if _, err := s.Out.Write(data); err != nil {
					return err
				}
				fmt.Fprintf(s.Err, "Hashed %d users\n", n)
				return nil
			}
			n, err := confgen.ImportPlain(in, out, iterations)
			if err != nil {
				return err
			}
			target := in
			if out != "" {
				target = out
			}
			fmt.Fprintf(s.Out, "Hashed %d users into %s\n", n, target)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "write to this new file instead of replacing PLAINFILE (- for standard output)")
	cmd.Flags().IntVar(&iterations, "iterations", confgen.DefaultIterations, "PBKDF2 iterations")
	return cmd
}
