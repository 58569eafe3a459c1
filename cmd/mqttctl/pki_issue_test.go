package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPKIIssue(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "over an existing client", args: []string{"pki", "issue", "client", "alice", "--dir", dir}, code: 1, errOut: []string{"already exists", "--force"}},
		{name: "a new client", args: []string{"pki", "issue", "client", "bob", "--dir", dir}, out: []string{"Issued client certificate", "CN=bob"}},
		{name: "a server without names", args: []string{"pki", "issue", "server", "server", "--dir", dir}, code: 1, errOut: []string{"--host"}},
		{name: "a client with names", args: []string{"pki", "issue", "client", "carol", "--dir", dir, "--host", "x.example"}, code: 1, errOut: []string{"leave out --host"}},
		{name: "in a directory without a CA", args: []string{"pki", "issue", "client", "dan", "--dir", dir + "-none"}, code: 1, errOut: []string{"no CA in", "mqttctl pki init --dir " + dir + "-none"}},
	})
}

// TestIssueClientChecksLikeABatch: a single pki issue client refuses what a
// batch refuses at its line: a name with an unused enrolment token (the
// device would then be refused when it enrols) and one that differs only
// in case from a certificate the index has; --force issues anyway.
func TestIssueClientChecksLikeABatch(t *testing.T) {
	p := newPKIDir(t, "--client", "Dup")
	if code, _, e := runCLI(t, "", "enroll", "token", "create", "dev9", "--pki", p); code != 0 {
		t.Fatal(e)
	}
	for _, tc := range []struct{ name, want string }{
		{"dev9", "dev9 has an unused enrolment token"},
		{"dup", "differs only in case from Dup"},
	} {
		if code, o, e := runCLI(t, "", "pki", "issue", "client", tc.name, "--dir", p); code == 0 || !strings.Contains(e, tc.want) || !strings.Contains(e, "--force") {
			t.Errorf("issue client %s: exit %d, want %q and --force\n%s%s", tc.name, code, tc.want, o, e)
		}
		if _, err := os.Stat(filepath.Join(p, "clients", tc.name+".crt")); err == nil {
			t.Errorf("a refused issue wrote clients/%s.crt", tc.name)
		}
	}
	if code, o, e := runCLI(t, "", "pki", "issue", "client", "dev9", "--dir", p, "--force"); code != 0 {
		t.Errorf("issue client dev9 --force: %s%s", o, e)
	}
}
