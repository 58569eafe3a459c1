package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOutDash: --out - is standard output where the output is one text file
// (config mosquitto, passwd import) and refused, naming the command, where
// it is not (directories, a key, a certificate the index records); never a
// file named "-".
func TestOutDash(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "alice", "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runCLI(t, "", "pki", "csr", "dev", "--out-dir", dir); code != 0 {
		t.Fatal(e)
	}
	plain := filepath.Join(dir, "users.txt")
	os.WriteFile(plain, []byte("alice:s3cret\nbob:pw\n"), 0o600)
	pw := filepath.Join(dir, "p12.pass")
	os.WriteFile(pw, []byte("pw\n"), 0o600)
	t.Chdir(dir)
	noDash := func(t *testing.T, _, _ string) {
		if _, err := os.Lstat(filepath.Join(dir, "-")); err == nil {
			os.RemoveAll(filepath.Join(dir, "-"))
			t.Error(`wrote a file named "-"`)
		}
	}
	refused := func(cmd string) []string {
		return []string{"--out", "-: mqttctl " + cmd + " writes", "not standard output"}
	}
	runSteps(t, []cliStep{
		{name: "config mosquitto", args: []string{"config", "mosquitto", "--pki", p, "--out", "-"}, out: []string{"listener 8883", "cafile "}, absent: []string{"Wrote"}, check: noDash},
		{name: "passwd import", args: []string{"passwd", "import", plain, "--out", "-"}, out: []string{"alice:$7$101$", "bob:$7$101$"}, errOut: []string{"Hashed 2 users"}, absent: []string{"s3cret"},
			check: func(t *testing.T, o, e string) {
				noDash(t, o, e)
				if data, _ := os.ReadFile(plain); !strings.Contains(string(data), "alice:s3cret") {
					t.Error("the plain file was changed")
				}
			}},
		{name: "config emqx", args: []string{"config", "emqx", "--pki", p, "--out", "-"}, code: 1, errOut: refused("config emqx"), check: noDash},
		{name: "config rabbitmq", args: []string{"config", "rabbitmq", "--pki", p, "--node", "rabbit1=localhost:8883", "--out", "-"}, code: 1, errOut: refused("config rabbitmq"), check: noDash},
		{name: "pki export p12", args: []string{"pki", "export", "alice", "--dir", p, "--out", "-", "--password-file", pw}, code: 1, errOut: refused("pki export"), check: noDash},
		{name: "pki export pem-bundle", args: []string{"pki", "export", "alice", "--dir", p, "--format", "pem-bundle", "--out", "-"}, code: 1, errOut: refused("pki export"), check: noDash},
		{name: "pki sign", args: []string{"pki", "sign", "--csr", filepath.Join(dir, "dev.csr"), "--profile", "client", "--dir", p, "--out", "-"}, code: 1, errOut: refused("pki sign"), check: noDash},
		{name: "pki csr", args: []string{"pki", "csr", "dev2", "--out-dir", "-"}, code: 1, errOut: []string{"--out-dir -: mqttctl pki csr writes"}, check: noDash},
		{name: "./- is a file named -", args: []string{"config", "mosquitto", "--pki", p, "--out", "./-"}, out: []string{"Wrote ./-"},
			check: func(t *testing.T, _, _ string) {
				if _, err := os.Stat(filepath.Join(dir, "-")); err != nil {
					t.Error(err)
				}
			}},
	})
}
