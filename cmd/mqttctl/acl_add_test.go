package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestACLAddAndCheck(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	runSteps(t, []cliStep{
		{name: "pattern", args: []string{"acl", "add", acl, "readwrite", "devices/%u/#", "--pattern"}},
		{name: "user read", args: []string{"acl", "add", acl, "read", "sensors/#", "--user", "dashboard"}},
		{name: "user deny", args: []string{"acl", "add", acl, "deny", "sensors/secret", "--user", "dashboard"}},
		{name: "the same rule again", args: []string{"acl", "add", acl, "deny", "sensors/secret", "--user", "dashboard"}, out: []string{"nothing changed"}},
		{name: "two targets", args: []string{"acl", "add", acl, "read", "x", "--user", "a", "--pattern"}, code: 1, errOut: []string{"user", "pattern"}},
		{name: "no target", args: []string{"acl", "add", acl, "read", "x"}, code: 1, errOut: []string{"user", "anonymous", "pattern"}},
		{name: "allowed", args: []string{"acl", "check", acl, "read", "sensors/a", "--user", "dashboard"}, out: []string{"allowed"}},
		{name: "deny rule", args: []string{"acl", "check", acl, "read", "sensors/secret", "--user", "dashboard"}, code: 1, out: []string{"denied"}},
	})
}

// TestACLAddKeepsMosquittoReadable: the edited file keeps the mode the
// broker's group access depends on.
func TestACLAddKeepsMosquittoReadable(t *testing.T) {
	acl := filepath.Join(t.TempDir(), "acl")
	os.WriteFile(acl, []byte("# keep me\nuser a\ntopic read a/#\n"), 0o640)
	os.Chmod(acl, 0o640)
	runSteps(t, []cliStep{{name: "add", args: []string{"acl", "add", acl, "write", "a/#", "--user", "a"}, check: func(t *testing.T, _, _ string) {
		st, _ := os.Stat(acl)
		data, _ := os.ReadFile(acl)
		if st.Mode().Perm() != 0o640 || string(data) != "# keep me\nuser a\ntopic read a/#\ntopic write a/#\n" {
			t.Errorf("mode %04o, contents:\n%s", st.Mode().Perm(), data)
		}
	}}})
}
