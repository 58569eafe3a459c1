package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

func newACLAddCmd(s *streams) *cobra.Command {
	var (
		usr       string
		anonymous bool
		pattern   bool
	)
	cmd := &cobra.Command{
		Use:   "add FILE read|write|readwrite|deny TOPIC",
		Short: "Add a rule (creates FILE if needed)",
		Example: `  mqttctl acl add acl readwrite 'sensors/%u/#' --pattern
  mqttctl acl add acl read 'sensors/#' --user dashboard
  mqttctl acl add acl deny 'admin/#' --user dashboard
  mqttctl acl add acl read 'public/#' --anonymous`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := args[0]
			access, ok := confgen.ParseAccess(args[1])
			if !ok {
				return fmt.Errorf("access %q: use read, write, readwrite or deny", args[1])
			}
			target := confgen.ACLTarget{User: usr, Anonymous: anonymous, Pattern: pattern}
			added, err := confgen.AddACLRuleToFile(path, target, confgen.ACLRule{Access: access, Topic: args[2]})
			if err != nil {
				return err
			}
			if !added {
				fmt.Fprintf(s.Out, "%s %s is in %s already; nothing changed\n", args[1], args[2], path)
				return nil
			}
			fmt.Fprintf(s.Out, "Added %s %s to %s (reload mosquitto, after a check: mqttctl reload mosquitto -c FILE)\n", args[1], args[2], path)
			return nil
		},
	}
	cmd.Flags().StringVar(&usr, "user", "", "the rule is for this username (a client certificate's CN with use_identity_as_username)")
	cmd.Flags().BoolVar(&anonymous, "anonymous", false, "the rule is for clients without a username")
	cmd.Flags().BoolVar(&pattern, "pattern", false, "the rule is a pattern for every client (%u, %c)")
	cmd.MarkFlagsMutuallyExclusive("user", "anonymous", "pattern")
	cmd.MarkFlagsOneRequired("user", "anonymous", "pattern")
	return cmd
}
