package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

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
