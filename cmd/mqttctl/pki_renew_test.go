package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

func TestPKIRenewCLI(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--client", "bob", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "neither name nor window", args: []string{"pki", "renew", "--dir", dir}, code: 1, errOut: []string{"one of them"}},
		{name: "both", args: []string{"pki", "renew", "alice", "--expiring", "30d", "--dir", dir}, code: 1, errOut: []string{"one of them"}},
		{name: "nothing due", args: []string{"pki", "renew", "--expiring", "30d", "--dir", dir}, out: []string{"nothing ends within 30 days"}},
		{name: "check: nothing due", args: []string{"pki", "check", "-q", "--dir", dir}, out: []string{"0 errors, 0 warnings"}},
		{name: "check: everything due within 400 days", args: []string{"pki", "check", "-q", "--expiring", "400d", "--dir", dir}, code: 1,
			out: []string{"expires on", "mqttctl pki renew alice --dir " + dir}},
		{name: "list names the fix", args: []string{"pki", "list", "--expiring", "400d", "--dir", dir}, code: 1, errOut: []string{"mqttctl pki renew --expiring 400d --dir " + dir}},
		{name: "renew alice", args: []string{"pki", "renew", "alice", "--dir", dir}, out: []string{"Renewed client certificate", "alice.prev.crt", "Copy "}},
		{name: "renew server with a new key", args: []string{"pki", "renew", "server", "--rekey", "--days", "90", "--dir", dir}, out: []string{"new key", "mqttctl serve uses"}},
		{name: "list shows the predecessor", args: []string{"pki", "list", "--dir", dir}, out: []string{"replaced", "clients/alice.prev.crt"}},
		{name: "check is clean", args: []string{"pki", "check", "-q", "--dir", dir}, out: []string{"0 errors, 0 warnings"}},
		{name: "revoke bob", args: []string{"pki", "revoke", "bob", "--dir", dir}, out: []string{"Revoked client certificate bob"}},
		{name: "renew revoked bob", args: []string{"pki", "renew", "bob", "--dir", dir}, code: 1, errOut: []string{"was revoked on"}},
		{name: "revoke alice revokes both", args: []string{"pki", "revoke", "alice", "--dir", dir}, out: []string{"Revoked client certificate alice", "Removed " + filepath.Join(dir, "clients", "alice.prev.crt")}},
		{name: "renew the CA", args: []string{"pki", "renew", "ca", "--dir", dir}, code: 1, errOut: []string{"CA is not renewed"}},
		{name: "a .prev name", args: []string{"pki", "issue", "client", "carol.prev", "--dir", dir}, code: 1, errOut: []string{"renew replaces"}},
	})
	if n := strings.Count(string(mustReadFile(t, filepath.Join(dir, "index.yaml"))), "status: revoked"); n != 3 {
		t.Errorf("%d revoked entries, want 3 (bob, alice, alice's predecessor)", n)
	}
}

// TestServeRenewedServerCertificate: a client connected before `pki renew
// server` stays connected and gets its messages; a new openssl s_client
// sees the new serial, with no signal sent to serve.
func TestServeRenewedServerCertificate(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	dir, p := newServePKI(t, "alice", "bob")
	srv := startServe(t, dir, 0, "--mtls", "--pki", p)
	serial := func() string {
		out, _ := testutil.Run(t, dir, []byte{}, openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", srv.port),
			"-CAfile", filepath.Join(p, "ca.crt"), "-cert", filepath.Join(p, "clients/alice.crt"), "-key", filepath.Join(p, "clients/alice.key"))
		x, _ := testutil.Run(t, dir, []byte(out), openssl, "x509", "-noout", "-serial")
		return strings.TrimSpace(x)
	}
	before := serial()
	if !strings.HasPrefix(before, "serial=") {
		t.Fatalf("no server certificate from s_client: %q", before)
	}
	sub, got := srv.subscriber(t, p, "bob", "-t", "renew/#", "-q", "1", "-v")
	if code, _, e := runCLI(t, "", "pki", "renew", "server", "--dir", p); code != 0 {
		t.Fatal(e)
	}
	after := before
	for i := 0; i < 50 && after == before; i++ {
		time.Sleep(100 * time.Millisecond)
		after = serial()
	}
	if after == before || !strings.HasPrefix(after, "serial=") {
		t.Fatalf("s_client still sees %s after the renewal:\n%s", after, srv.log.String())
	}
	srv.publish(t, p, "alice", "-t", "renew/after", "-m", "still-here", "-q", "1")
	waitFor(t, got, "renew/after still-here", "the subscriber connected before the renewal")
	if sub.ProcessState != nil || sub.Process.Signal(syscall.Signal(0)) != nil {
		t.Fatal("the subscriber connected before the renewal is gone")
	}
}

func mustReadFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
