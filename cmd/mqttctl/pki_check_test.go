package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/pki"
)

func TestPKICheck(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost", "--host", "127.0.0.1")
	runSteps(t, []cliStep{
		{name: "a host the certificate names", args: []string{"pki", "check", "--dir", dir, "--host", "127.0.0.1"}, out: []string{"0 errors"}},
		{name: "a host it does not name", args: []string{"pki", "check", "--dir", dir, "--host", "mqtt.example.com"}, code: 1,
			out: []string{"does not name mqtt.example.com", "--host mqtt.example.com"}},
		{name: "bad output format", args: []string{"pki", "check", "--dir", dir, "-o", "yaml"}, code: 1, errOut: []string{"text or json"}},
	})
}

// TestPKICheckRevoked: a revoked certificate is reported as revoked, never
// as OK and never as one to renew, with or without --expiring.
func TestPKICheckRevoked(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--client", "bob", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "revoke", args: []string{"pki", "revoke", "bob", "--dir", dir}},
		{name: "check", args: []string{"pki", "check", "--dir", dir}, out: []string{"bob.crt", "revoked on", "not renewed"},
			check: func(t *testing.T, stdout, _ string) {
				for _, line := range strings.Split(stdout, "\n") {
					if strings.Contains(line, "bob.crt") && (strings.Contains(line, "ok") && !strings.Contains(line, "revoked") || strings.Contains(line, "pki renew")) {
						t.Errorf("revoked bob reported as fine or to renew: %q", line)
					}
				}
			}},
		{name: "check --expiring", args: []string{"pki", "check", "--dir", dir, "--expiring", "400d"}, code: 1, out: []string{"revoked on"},
			check: func(t *testing.T, stdout, _ string) {
				if strings.Contains(stdout, "pki renew bob") {
					t.Errorf("suggests renewing revoked bob:\n%s", stdout)
				}
			}},
	})
}

// TestPKICheckExpiredCRL: an expired crl.pem refuses every client at the
// broker; pki check reports it, with or without --expiring, with the fix.
func TestPKICheckExpiredCRL(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	if _, err := (&pki.Dir{Path: dir, Now: func() time.Time { return time.Now().Add(-40 * 24 * time.Hour) }}).WriteCRL(0); err != nil {
		t.Fatal(err)
	}
	want := []string{"crl.pem: the CRL of", "expired on", "mqttctl pki crl --dir " + dir + ", then reload the broker"}
	runSteps(t, []cliStep{
		{name: "pki check", args: []string{"pki", "check", "--dir", dir}, code: 1, out: want},
		{name: "pki check --expiring", args: []string{"pki", "check", "--dir", dir, "--expiring", "45d"}, code: 1, out: want},
		{name: "pki crl", args: []string{"pki", "crl", "--dir", dir}},
		{name: "pki check after pki crl", args: []string{"pki", "check", "--dir", dir}, out: []string{"0 errors", "CRL of"}},
	})
}

// TestPKICheckStaleCRL: a crl.pem rolled back to an older copy, deleted,
// or ending within days is reported, with the fix.
func TestPKICheckStaleCRL(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	crl := filepath.Join(dir, "crl.pem")
	old := mustReadFile(t, crl)
	runSteps(t, []cliStep{{name: "revoke", args: []string{"pki", "revoke", "alice", "--dir", dir}}})
	if err := os.WriteFile(crl, old, 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []cliStep{{name: "rolled back", args: []string{"pki", "check", "--dir", dir}, code: 1, out: []string{"is CRL number 1, but number 2 was written since", "mqttctl pki crl"}}})
	os.Remove(crl)
	runSteps(t, []cliStep{
		{name: "deleted", args: []string{"pki", "check", "--dir", dir}, code: 1, out: []string{"crl.pem: is missing", "mqttctl pki crl"}},
		{name: "a one-day CRL", args: []string{"pki", "crl", "--dir", dir, "--days", "1"}},
		{name: "ending tomorrow", args: []string{"pki", "check", "--dir", dir, "--expiring", "30d"}, code: 1, out: []string{"expires on"}},
	})
}
