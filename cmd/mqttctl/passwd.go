package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

func newPasswdCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "passwd",
		Short: "Manage mosquitto password files ($7$ PBKDF2-SHA512)",
		Long: `passwd edits password files that mosquitto (password_file) and mqttctl serve read.
Hashes are mosquitto's $7$ format (PBKDF2-HMAC-SHA512, 101 iterations by
default); $6$ lines are read. Files are created 0600, rewritten atomically and
locked against concurrent edits. Lines mqttctl does not understand, comments
included, are kept as they are (mosquitto_passwd would drop every user after the
first comment).`,
	}
	cmd.AddCommand(newPasswdAddCmd(s), newPasswdDeleteCmd(s), newPasswdVerifyCmd(s), newPasswdListCmd(s), newPasswdImportCmd(s))
	return cmd
}

func warnUnparsed(s *streams, path string, pf *confgen.PasswordFile) {
	for _, l := range pf.Unparsed() {
		why := "not a user:hash line"
		if l.Err != nil {
			why = "user " + l.User + ": " + l.Err.Error()
		}
		if strings.HasPrefix(strings.TrimSpace(l.Raw), "#") {
			why = "comment"
		}
		fmt.Fprintf(s.Err, "warning: %s:%d: kept a line mqttctl does not use (%s)\n", path, l.Line, why)
	}
}
