package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the root command with captured output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	s := &streams{In: strings.NewReader(stdin), Out: &out, Err: &errb, terminal: func() bool { return false }}
	code = run(args, s)
	return code, out.String(), errb.String()
}

func TestHelpHasExamples(t *testing.T) {
	for _, args := range [][]string{
		{"--help"}, {"pki", "init", "--help"}, {"pki", "issue", "--help"}, {"pki", "csr", "--help"},
		{"pki", "sign", "--help"}, {"pki", "inspect", "--help"}, {"pki", "list", "--help"}, {"pki", "check", "--help"},
		{"passwd", "add", "--help"}, {"passwd", "delete", "--help"}, {"passwd", "verify", "--help"}, {"passwd", "list", "--help"},
		{"passwd", "import", "--help"}, {"acl", "add", "--help"}, {"acl", "check", "--help"},
		{"config", "mosquitto", "--help"}, {"config", "check", "--help"},
		{"serve", "--help"}, {"up", "--help"}, {"check", "--help"}, {"bench", "handshakes", "--help"}, {"bench", "pubsub", "--help"},
	} {
		code, out, _ := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%v: exit %d, no Examples section:\n%s", args, code, out)
		}
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "mqttctl ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

func TestPKIFlow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	code, out, errOut := runCLI(t, "", "pki", "init", "--dir", dir, "--client", "alice", "--host", "localhost", "--host", "127.0.0.1")
	if code != 0 {
		t.Fatalf("init: %d %s", code, errOut)
	}
	for _, want := range []string{"Created root CA", "Issued server certificate", "Issued client certificate", "Next:", "mqttctl pki check"} {
		if !strings.Contains(out, want) {
			t.Errorf("init output lacks %q:\n%s", want, out)
		}
	}
	code, out, _ = runCLI(t, "", "pki", "init", "--dir", dir, "--client", "alice", "--host", "localhost")
	if code != 0 || !strings.Contains(out, "Nothing to do") {
		t.Errorf("second init: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "pki", "check", "--dir", dir, "--host", "127.0.0.1")
	if code != 0 || !strings.Contains(out, "0 errors") {
		t.Fatalf("check: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "pki", "check", "--dir", dir, "--host", "mqtt.example.com")
	if code != 1 || !strings.Contains(out, "does not name mqtt.example.com") || !strings.Contains(out, "--host mqtt.example.com") {
		t.Fatalf("check with a missing host: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "pki", "list", "--dir", dir)
	if code != 0 || !strings.Contains(out, "alice") || !strings.Contains(out, "server") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "pki", "inspect", "-o", "json", filepath.Join(dir, "clients", "alice.crt"))
	var sums []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &sums) != nil || len(sums) != 1 || sums[0]["profile"] != "client" {
		t.Fatalf("inspect json: %d\n%s", code, out)
	}
	code, _, errOut = runCLI(t, "", "pki", "issue", "client", "alice", "--dir", dir)
	if code != 1 || !strings.Contains(errOut, "--force") {
		t.Fatalf("issue over existing: %d %s", code, errOut)
	}
	code, _, errOut = runCLI(t, "", "pki", "init", "--dir", dir, "--host", "broker:8883")
	if code != 1 || !strings.Contains(errOut, "give broker") {
		t.Fatalf("host:port accepted: %d %s", code, errOut)
	}
}

func TestPKICSRAndSign(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	work := t.TempDir()
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", dir, "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	code, out, e := runCLI(t, "", "pki", "csr", "dev9", "--out-dir", work)
	if code != 0 || !strings.Contains(out, "mqttctl pki sign") {
		t.Fatalf("csr: %d %s %s", code, out, e)
	}
	code, out, e = runCLI(t, "", "pki", "sign", "--dir", dir, "--csr", filepath.Join(work, "dev9.csr"), "--profile", "client")
	if code != 0 || !strings.Contains(out, "Issued client certificate") {
		t.Fatalf("sign: %d %s %s", code, out, e)
	}
	if _, err := os.Stat(filepath.Join(work, "dev9.crt")); err != nil {
		t.Fatal(err)
	}
}

func TestCAPasswordFromStdin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	code, _, e := runCLI(t, "hunter22\n", "pki", "init", "--dir", dir, "--host", "localhost", "--ca-password-file", "-", "--encrypt-ca-key")
	if code != 0 {
		t.Fatal(e)
	}
	key, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	if !strings.Contains(string(key), "ENCRYPTED") {
		t.Fatal("CA key not encrypted")
	}
	// No terminal, no password: a clear error, nothing written.
	code, _, e = runCLI(t, "", "pki", "issue", "client", "x", "--dir", dir)
	if code != 1 || !strings.Contains(e, "password") {
		t.Fatalf("issue without password: %d %s", code, e)
	}
	if _, err := os.Stat(filepath.Join(dir, "clients", "x.key")); err == nil {
		t.Fatal("a key was left behind")
	}
	code, _, e = runCLI(t, "hunter22\n", "pki", "issue", "client", "x", "--dir", dir, "--ca-password-file", "-")
	if code != 0 {
		t.Fatal(e)
	}
}
