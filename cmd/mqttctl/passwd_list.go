package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

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
					kind = ph.String()
				}
				fmt.Fprintf(s.Out, "%s\t%s\n", u, kind)
			}
			warnUnparsed(s, args[0], pf)
			return nil
		},
	}
}
