package main

import (
	"github.com/spf13/cobra"
)

func newACLCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "acl",
		Short: "Write and test mosquitto ACL files",
		Long: `acl edits mosquitto acl_file files: rules for anonymous clients, per-user
blocks, and patterns for everyone (%u = username, %c = client id). Denials win;
a client's own rules come first, then patterns, then everything is denied.`,
	}
	cmd.AddCommand(newACLAddCmd(s), newACLCheckCmd(s))
	return cmd
}
