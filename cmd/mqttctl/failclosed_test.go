package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// snapshot hashes every file below dir (names, modes and contents), so a
// test can prove that a refused command wrote nothing.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		info, _ := d.Info()
		data, _ := os.ReadFile(p)
		lines = append(lines, fmt.Sprintf("%s %v %x", p, info.Mode(), sha256.Sum256(data)))
		return nil
	})
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// TestFailClosedCLI: each refusal of issue 8 exits non-zero, says why, and
// leaves every file as it was.
func TestFailClosedCLI(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "alice", "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	out := filepath.Join(dir, "out")
	os.Mkdir(out, 0o700)
	if code, _, e := runCLI(t, "", "pki", "csr", "dev", "--out-dir", out); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runCLI(t, "", "pki", "csr", "alice", "--out-dir", out); code != 0 {
		t.Fatal(e)
	}
	csr, aliceCSR := filepath.Join(out, "dev.csr"), filepath.Join(out, "alice.csr")
	truncated := filepath.Join(out, "trunc.csr")
	data, _ := os.ReadFile(csr)
	os.WriteFile(truncated, data[:len(data)/2], 0o644)
	keyAsPEM := filepath.Join(out, "stolen.pem")
	keyData, _ := os.ReadFile(filepath.Join(out, "dev.key"))
	os.WriteFile(keyAsPEM, keyData, 0o600)
	existing := filepath.Join(out, "existing.crt")
	certData, _ := os.ReadFile(filepath.Join(p, "clients", "alice.crt"))
	os.WriteFile(existing, certData, 0o644)
	worldDir := filepath.Join(dir, "world")
	os.Mkdir(worldDir, 0o777)
	os.Chmod(worldDir, 0o777)
	openParent := filepath.Join(dir, "open")
	os.Mkdir(openParent, 0o777)
	os.Chmod(openParent, 0o777) // world-writable, no sticky bit

	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"sign over the CA key", []string{"pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", filepath.Join(p, "ca.key"), "--force"}, []string{"key file"}},
		{"sign over the CA certificate", []string{"pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", filepath.Join(p, "ca.crt"), "--force"}, []string{"file of the pki directory"}},
		{"sign over the index", []string{"pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", filepath.Join(p, "index.yaml"), "--force"}, []string{"index.yaml"}},
		{"sign over a client certificate of the pki", []string{"pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", filepath.Join(p, "clients", "alice.crt"), "--force"}, []string{"file of the pki directory"}},
		{"sign over a key with a .pem name", []string{"pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", keyAsPEM, "--force"}, []string{"private key"}},
		{"sign over an existing file without --force", []string{"pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", existing}, []string{"exists", "--force"}},
		{"sign a CSR with an existing client's CN", []string{"pki", "sign", "--dir", p, "--csr", aliceCSR, "--profile", "client", "--out", filepath.Join(out, "alice2.crt")}, []string{"already the MQTT identity", "--force"}},
		{"sign without --profile", []string{"pki", "sign", "--dir", p, "--csr", csr}, []string{`"profile"`}},
		{"sign without --csr", []string{"pki", "sign", "--dir", p, "--profile", "client"}, []string{`"csr"`}},
		{"sign a truncated CSR", []string{"pki", "sign", "--dir", p, "--csr", truncated, "--profile", "client", "--out", filepath.Join(out, "t.crt")}, []string{"not a readable certificate request"}},
		{"init --days 0", []string{"pki", "init", "--dir", filepath.Join(dir, "n1"), "--days", "0"}, []string{"--days 0"}},
		{"init --ca-days 0", []string{"pki", "init", "--dir", filepath.Join(dir, "n1"), "--ca-days", "0"}, []string{"--ca-days 0"}},
		{"init --days overflowing", []string{"pki", "init", "--dir", filepath.Join(dir, "n1"), "--days", "9999999999999", "--force"}, []string{"from 1 to 36500 days"}},
		{"init --ca-days overflowing", []string{"pki", "init", "--dir", filepath.Join(dir, "n1"), "--ca-days", "99999999"}, []string{"from 1 to 36500 days"}},
		{"issue --days with --not-after", []string{"pki", "issue", "client", "bob", "--dir", p, "--days", "3", "--not-after", "2030-01-01T00:00:00Z"}, []string{"days", "not-after"}},
		{"issue --days -1", []string{"pki", "issue", "client", "bob", "--dir", p, "--days", "-1"}, []string{"--days -1"}},
		{"passwd --iterations 0", []string{"passwd", "add", filepath.Join(dir, "n1", "passwd"), "bob", "-b", "pw", "--iterations", "0"}, []string{"--iterations 0"}},
		{"init into a world-writable directory", []string{"pki", "init", "--dir", worldDir}, []string{"others can replace the CA key", "chmod 700"}},
		{"init below a world-writable parent", []string{"pki", "init", "--dir", filepath.Join(openParent, "pki")}, []string{"others can rename or replace"}},
		{"init with a client given twice", []string{"pki", "init", "--dir", p, "--client", "carol", "--client", "carol"}, []string{`"carol" is given twice`}},
		{"client name '.'", []string{"pki", "init", "--dir", p, "--client", "."}, []string{"directory name"}},
		{"client name with a leading space", []string{"pki", "issue", "client", " alice", "--dir", p}, []string{"white space"}},
		{"client name with U+202E", []string{"pki", "issue", "client", "evil\u202egnp.exe", "--dir", p}, []string{"bidirectional"}},
		{"host 192.168.1.300", []string{"pki", "issue", "server", "edge", "--dir", p, "--host", "192.168.1.300"}, []string{"not a valid one"}},
		{"bench --workers 0", []string{"bench", "handshakes", "mqtt://127.0.0.1:1", "--workers", "0"}, []string{"--workers 0"}},
		{"bench --duration -1s", []string{"bench", "handshakes", "mqtt://127.0.0.1:1", "--duration", "-1s"}, []string{"--duration -1s"}},
		{"bench pubsub --qos 2", []string{"bench", "pubsub", "mqtt://127.0.0.1:1", "--qos", "2"}, []string{"--qos 2"}},
		{"check --timeout 0", []string{"check", "mqtt://127.0.0.1:1", "--timeout", "0"}, []string{"--timeout 0s"}},
		{"passwd add into the CA key", []string{"passwd", "add", filepath.Join(p, "ca.key"), "bob", "-b", "pw"}, []string{"PEM data"}},
		{"acl add into the CA key", []string{"acl", "add", filepath.Join(p, "ca.key"), "read", "x", "--user", "bob"}, []string{"unknown keyword"}},
		{"config mosquitto over the CA key", []string{"config", "mosquitto", "--pki", p, "--out", filepath.Join(p, "ca.key"), "--force", "--broker-group", "none"}, []string{"PEM data"}},
		{"serve -c with --mtls", []string{"serve", "-c", filepath.Join(dir, "m.conf"), "--mtls"}, []string{"config-file", "mtls"}},
		{"check with --cert but no --key", []string{"check", "mqtts://127.0.0.1:1", "--cert", filepath.Join(p, "server.crt")}, []string{"--cert and --key"}},
		{"bench with --cert but no --key", []string{"bench", "handshakes", "mqtts://127.0.0.1:1", "--cert", filepath.Join(p, "server.crt")}, []string{"cert", "key"}},
		{"unknown pki subcommand", []string{"pki", "bogus"}, []string{`unknown command "bogus"`}},
		{"unknown passwd subcommand", []string{"passwd", "ad"}, []string{"did you mean add"}},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			before := snapshot(t, dir)
			code, stdout, stderr := runCLI(t, "", tt.args...)
			if code == 0 {
				t.Fatalf("exit 0, want a refusal:\n%s%s", stdout, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("a refused command changed files")
			}
		})
	}

	// What the refusals allow instead.
	if code, _, e := runCLI(t, "", "pki", "sign", "--dir", p, "--csr", aliceCSR, "--profile", "client", "--out", filepath.Join(out, "alice2.crt"), "--force"); code != 0 {
		t.Errorf("sign --force of a CN in use: %s", e)
	}
	if code, _, e := runCLI(t, "", "pki", "sign", "--dir", p, "--csr", csr, "--profile", "client", "--out", existing, "--force"); code != 0 {
		t.Errorf("sign --force over a leaf certificate outside the pki: %s", e)
	}
	if code, o, e := runCLI(t, "", "pki", "issue", "server", "idn", "--dir", p, "--host", "bücher.example"); code != 0 || !strings.Contains(o, "xn--bcher-kva.example") {
		t.Errorf("IDN host: %d %s %s", code, o, e)
	}
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", filepath.Join(os.TempDir(), fmt.Sprintf("mqttctl-sticky-%d", os.Getpid()))); code != 0 {
		t.Errorf("init below the sticky /tmp was refused: %s", e)
	}
	os.RemoveAll(filepath.Join(os.TempDir(), fmt.Sprintf("mqttctl-sticky-%d", os.Getpid())))
}
