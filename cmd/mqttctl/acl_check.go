package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

func newACLCheckCmd(s *streams) *cobra.Command {
	var (
		usr, clientID string
		anonymous     bool
	)
	cmd := &cobra.Command{
		Use:     "check FILE read|write TOPIC",
		Short:   "Say whether a client may read or write a topic (exit 0 allowed, 1 denied)",
		Example: `  mqttctl acl check acl write sensors/alice/temp --user alice`,
		Args:    cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := confgen.ReadACL(args[0])
			if err != nil {
				return err
			}
			access, ok := confgen.ParseAccess(args[1])
			if !ok || (access != confgen.Read && access != confgen.Write) {
				return fmt.Errorf("access %q: use read or write", args[1])
			}
			if usr == "" && !anonymous {
				return errors.New("give --user NAME or --anonymous")
			}
			if a.Allowed(confgen.Client{Username: usr, Anonymous: anonymous, ClientID: clientID}, args[2], access) {
				fmt.Fprintln(s.Out, "allowed")
				return nil
			}
			fmt.Fprintln(s.Out, "denied")
			return exitError{1}
		},
	}
	cmd.Flags().StringVar(&usr, "user", "", "username")
	cmd.Flags().BoolVar(&anonymous, "anonymous", false, "a client without username")
	cmd.Flags().StringVar(&clientID, "client-id", "", "client id (for %c patterns)")
	return cmd
}
