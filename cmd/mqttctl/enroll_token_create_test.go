package main

import (
	"encoding/csv"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestEnrollToken: create prints the token alone on standard output (the
// advice on standard error), list never shows a secret, revoke, --batch
// prints CSV, and the refusals name the fix.
func TestEnrollToken(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	devices := filepath.Join(t.TempDir(), "devices.csv")
	os.WriteFile(devices, []byte("# factory batch 7\nsensor-1,extra\n\nsensor-2\n"), 0o644)
	bad := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(bad, []byte("sensor-3\nsensor/#\n"), 0o644)
	formula := filepath.Join(t.TempDir(), "formula.csv")
	os.WriteFile(formula, []byte("sensor-3\n=HYPERLINK(A1)\n@SUM(1)\n-rf\n"), 0o644)
	var secret string
	tokenLine := regexp.MustCompile(`^[A-Za-z0-9_-]{43}\n$`)
	runSteps(t, []cliStep{
		{name: "create", args: []string{"enroll", "token", "create", "dev-1", "--pki", dir, "--ttl", "7d"}, errOut: []string{"shown only this once"},
			check: func(t *testing.T, out, _ string) {
				if !tokenLine.MatchString(out) {
					t.Fatalf("stdout is not the token alone: %q", out)
				}
				secret = strings.TrimSpace(out)
			}},
		{name: "again", args: []string{"enroll", "token", "create", "dev-1", "--pki", dir}, code: 1, errOut: []string{"already has an unused token", "enroll token revoke NAME", "--force"}},
		{name: "a name with a certificate", args: []string{"enroll", "token", "create", "alice", "--pki", dir}, code: 1, errOut: []string{"alice", "--force"}},
		{name: "a bad ttl", args: []string{"enroll", "token", "create", "dev-2", "--pki", dir, "--ttl", "500d"}, code: 1, errOut: []string{"lifetime"}},
		// In days, as --help says (before: "from 1m to 9600h0m0s, not 9624h0m0s").
		{name: "a ttl one day too long", args: []string{"enroll", "token", "create", "dev-2", "--pki", dir, "--ttl", "401d"}, code: 1, errOut: []string{"from 1m to 400d, not 401d"}, absent: []string{"9600h"}},
		// The maximum named (before: "give whole days from 1").
		{name: "a renew-after-expiry window too long", args: []string{"enroll", "serve", "--pki", dir, "--renew-after-expiry", "100000d"}, code: 1, errOut: []string{"from 1 to 36500"}},
		{name: "list", args: []string{"enroll", "token", "list", "--pki", dir}, out: []string{"dev-1", "client", "unused"},
			check: func(t *testing.T, out, _ string) {
				if secret == "" || strings.Contains(out, secret) {
					t.Fatal("list shows the secret")
				}
			}},
		{name: "revoke", args: []string{"enroll", "token", "revoke", "dev-1", "--pki", dir}, out: []string{"Revoked"}},
		{name: "revoke again", args: []string{"enroll", "token", "revoke", "dev-1", "--pki", dir}, code: 1, errOut: []string{"no unused token"}},
		{name: "list after revoke", args: []string{"enroll", "token", "list", "--pki", dir, "-o", "json"}, out: []string{`"status": "revoked"`}},
		{name: "batch", args: []string{"enroll", "token", "create", "--batch", devices, "--pki", dir},
			check: func(t *testing.T, out, _ string) {
				rows, err := csv.NewReader(strings.NewReader(out)).ReadAll()
				if err != nil || len(rows) != 3 || rows[0][0] != "name" || rows[1][0] != "sensor-1" || rows[2][0] != "sensor-2" || len(rows[2][1]) != 43 {
					t.Fatalf("%v %q", err, out)
				}
			}},
		{name: "a bad batch line", args: []string{"enroll", "token", "create", "--batch", bad, "--pki", dir}, code: 1, errOut: []string{bad + ":2:"}},
		// tokens.csv goes to the factory's spreadsheet: no formulas (finding 15).
		{name: "a formula", args: []string{"enroll", "token", "create", "--batch", formula, "--pki", dir}, code: 1,
			errOut: []string{formula + ":2: ", "=HYPERLINK", "formula", formula + ":3: ", formula + ":4: ", "starts with '-'"}},
		{name: "a formula token", args: []string{"enroll", "token", "create", "@SUM(1)", "--pki", dir}, code: 1, errOut: []string{"formula"}},
	})
	if data, _ := os.ReadFile(filepath.Join(dir, "tokens.json")); strings.Contains(string(data), "sensor-3") || strings.Contains(string(data), secret) {
		t.Fatal("a refused batch was written, or a secret stored")
	}
}
