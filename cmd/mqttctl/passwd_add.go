package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/ident"
)

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
			secret, err := pw.read(s, "Password", true)
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
	pw.add(cmd, true)
	cmd.Flags().IntVar(&iterations, "iterations", confgen.DefaultIterations, "PBKDF2 iterations")
	return cmd
}
