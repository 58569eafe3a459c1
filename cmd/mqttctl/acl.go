package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
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
			if err := confgen.ValidateTopicFilter(args[2]); err != nil {
				return err
			}
			n := 0
			for _, b := range []bool{usr != "", anonymous, pattern} {
				if b {
					n++
				}
			}
			if n != 1 {
				return errors.New("say whom the rule is for: --user NAME, --anonymous or --pattern")
			}
			unlock, err := fsx.Lock(path)
			if err != nil {
				return err
			}
			defer unlock()
			a := &confgen.ACL{}
			data, err := os.ReadFile(path)
			if err == nil {
				if a, err = confgen.ParseACL(data, path); err != nil {
					return err
				}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("read ACL: %w", err)
			}
			r := confgen.ACLRule{Access: access, Topic: args[2]}
			switch {
			case pattern:
				a.Patterns = append(a.Patterns, r)
			case anonymous:
				a.Anonymous = append(a.Anonymous, r)
			default:
				if err := ident.Validate(usr); err != nil {
					return err
				}
				u := a.AddUser(usr)
				u.Rules = append(u.Rules, r)
			}
			if err := fsx.WriteFile(path, a.Marshal(), 0o600, true); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Added %s %s to %s\n", args[1], args[2], path)
			return nil
		},
	}
	cmd.Flags().StringVar(&usr, "user", "", "the rule is for this username (a client certificate's CN with use_identity_as_username)")
	cmd.Flags().BoolVar(&anonymous, "anonymous", false, "the rule is for clients without a username")
	cmd.Flags().BoolVar(&pattern, "pattern", false, "the rule is a pattern for every client (%u, %c)")
	return cmd
}

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
