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
		hashKind   string
	)
	cmd := &cobra.Command{
		Use:   "add FILE USER",
		Short: "Add a user or change a password (creates FILE if needed)",
		Example: `  mqttctl passwd add passwd alice                      # asks twice on the terminal
  printf '%s\n' "$PW" | mqttctl passwd add passwd alice --password-stdin
  mqttctl passwd add passwd alice -b s3cret              # like mosquitto_passwd -b
  # mosquitto 2.1 built with argon2 only (2.0 and EMQX cannot read it)
  printf '%s\n' "$PW" | mqttctl passwd add passwd alice --password-stdin --hash argon2id`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "iterations"); err != nil {
				return err
			}
			if hashKind != "pbkdf2" && hashKind != "argon2id" {
				return fmt.Errorf("--hash %q: use pbkdf2 (mosquitto's $7$, read by mosquitto 2.0 and 2.1 and convertible to EMQX) or argon2id (mosquitto 2.1 built with argon2)", hashKind)
			}
			if hashKind == "argon2id" && cmd.Flags().Changed("iterations") {
				return fmt.Errorf("--iterations is for --hash pbkdf2: argon2id uses mosquitto 2.1's parameters (46 MiB, one pass)")
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
			if hashKind == "argon2id" {
				hash, err = confgen.HashArgon2id(secret)
			}
			if err != nil {
				return err
			}
			_, statErr := os.Stat(path)
			verb := "Added"
			err = confgen.EditPasswordFile(path, true, func(pf *confgen.PasswordFile) error {
				if _, ok := pf.Lookup(user); ok {
					verb = "Updated"
				} else if err := ident.ValidateNew(user); err != nil {
					return err // a new user; one already in the file keeps its name
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
	cmd.Flags().IntVar(&iterations, "iterations", confgen.DefaultIterations, "PBKDF2 iterations (--hash pbkdf2)")
	cmd.Flags().StringVar(&hashKind, "hash", "pbkdf2", "pbkdf2 ($7$: mosquitto 2.0 and 2.1, EMQX) or argon2id (mosquitto 2.1 built with argon2; 46 MiB per check)")
	return cmd
}
