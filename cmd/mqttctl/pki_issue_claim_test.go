package main

import (
	"path/filepath"
	"testing"
)

// TestIssueClaim: pki issue claim NAME [--prefix P] issues claim/NAME.crt,
// which check, list and renew know by its profile; a prefix on another
// profile, or one too short, is refused with nothing written; sign does
// not make a claim from a request.
func TestIssueClaim(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "alice"); code != 0 {
		t.Fatal(e)
	}
	before := snapshot(t, p)
	nothingWritten := func(t *testing.T, _, _ string) {
		if snapshot(t, p) != before {
			t.Fatal("a refused command changed the directory")
		}
	}
	runSteps(t, []cliStep{
		{name: "a prefix on a client", args: []string{"pki", "issue", "client", "bob", "--prefix", "line1-", "--dir", p}, code: 1, errOut: []string{"a prefix is for a claim certificate"}, check: nothingWritten},
		{name: "a one-character prefix", args: []string{"pki", "issue", "claim", "factory-1", "--prefix", "l", "--dir", p}, code: 1, errOut: []string{"at least 2 characters"}, check: nothingWritten},
		{name: "issue claim", args: []string{"pki", "issue", "claim", "factory-1", "--prefix", "line1-", "--days", "90", "--dir", p}, out: []string{"claim certificate", "claim/factory-1.crt", "provisions names starting line1-"}},
		{name: "check knows the profile", args: []string{"pki", "check", "--dir", p}, out: []string{"claim/factory-1.crt: claim: key matches; usages clientAuth"}, absent: []string{"ERROR", "WARN"}},
		{name: "list shows it", args: []string{"pki", "list", "--dir", p}, out: []string{"factory-1", "claim"}},
		{name: "renew refuses it", args: []string{"pki", "renew", "factory-1", "--dir", p}, code: 1, errOut: []string{"is a claim certificate: it is not renewed"}},
		{name: "sign refuses the profile", args: []string{"pki", "sign", "--dir", p, "--profile", "claim", "--out", filepath.Join(dir, "x.crt"), filepath.Join(p, "clients", "alice.crt")}, code: 1},
		{name: "revoke stops it", args: []string{"pki", "revoke", "factory-1", "--dir", p}, out: []string{"Revoked claim certificate factory-1"}},
	})
}
