package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

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
			secret, err := pw.read(s, "Password", false)
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
	pw.add(cmd, true)
	return cmd
}
