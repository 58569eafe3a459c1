package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

func TestPKIInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	runSteps(t, []cliStep{
		{name: "first init", args: []string{"pki", "init", "--dir", dir, "--client", "alice", "--host", "localhost", "--host", "127.0.0.1"},
			out: []string{"Created root CA", "Issued server certificate", "Issued client certificate", "Next:", "mqttctl pki check"}},
		{name: "second init", args: []string{"pki", "init", "--dir", dir, "--client", "alice", "--host", "localhost"}, out: []string{"Nothing to do"}},
		{name: "host with a port", args: []string{"pki", "init", "--dir", dir, "--host", "broker:8883"}, code: 1, errOut: []string{"give broker"}},
	})
}

func TestPKIInitCAPasswordFromStdin(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	runSteps(t, []cliStep{
		{name: "encrypted CA key", stdin: "hunter22\n", args: []string{"pki", "init", "--dir", dir, "--host", "localhost", "--ca-password-file", "-", "--encrypt-ca-key"},
			check: func(t *testing.T, _, _ string) {
				if key, _ := os.ReadFile(filepath.Join(dir, "ca.key")); !strings.Contains(string(key), "ENCRYPTED") {
					t.Error("CA key not encrypted")
				}
			}},
		// No terminal, no password: a clear error, nothing written.
		{name: "issue without the password", args: []string{"pki", "issue", "client", "x", "--dir", dir}, code: 1, errOut: []string{"password", "--ca-password-file"},
			check: func(t *testing.T, _, _ string) {
				if _, err := os.Stat(filepath.Join(dir, "clients", "x.key")); err == nil {
					t.Error("a key was left behind")
				}
			}},
		{name: "issue with the password", stdin: "hunter22\n", args: []string{"pki", "issue", "client", "x", "--dir", dir, "--ca-password-file", "-"}},
	})
}

// TestPKIInitNodes: --node issues one server certificate per cluster node
// (CN the node, its hosts as names, verified by openssl), no server.crt
// without --host; a bad node list is refused with nothing written.
func TestPKIInitNodes(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	dir := filepath.Join(t.TempDir(), "pki")
	runSteps(t, []cliStep{
		{name: "nodes", args: []string{"pki", "init", "--dir", dir, "--node", "rabbit1=mqtt1.example.com", "--node", "rabbit2=mqtt2.example.com,192.0.2.12"},
			out: []string{"servers/rabbit1.crt", "servers/rabbit2.crt", "mqtt2.example.com, 192.0.2.12", "servers/rabbit1.crt\n"},
			check: func(t *testing.T, _, _ string) {
				if _, err := os.Stat(filepath.Join(dir, "server.crt")); err == nil {
					t.Error("server.crt was issued though only nodes were asked for")
				}
				for node, want := range map[string][]string{
					"rabbit1": {"CN = rabbit1", "DNS:mqtt1.example.com", "TLS Web Server Authentication"},
					"rabbit2": {"CN = rabbit2", "DNS:mqtt2.example.com", "IP Address:192.0.2.12"},
				} {
					crt := filepath.Join(dir, "servers", node+".crt")
					o, err := testutil.Run(t, dir, nil, openssl, "x509", "-in", crt, "-noout", "-subject", "-ext", "subjectAltName,extendedKeyUsage")
					if err != nil {
						t.Fatal(err)
					}
					for _, w := range want {
						if !strings.Contains(o, w) {
							t.Errorf("%s: no %q in\n%s", node, w, o)
						}
					}
					if o, err := testutil.Run(t, dir, nil, openssl, "verify", "-CAfile", filepath.Join(dir, "ca.crt"), crt); err != nil {
						t.Errorf("openssl verify %s: %v %s", node, err, o)
					}
				}
			}},
		{name: "again", args: []string{"pki", "init", "--dir", dir, "--node", "rabbit1=mqtt1.example.com"}, out: []string{"Nothing to do"}},
		{name: "a node and a host", args: []string{"pki", "init", "--dir", dir, "--node", "rabbit3", "--host", "localhost"},
			out: []string{"servers/rabbit3.crt", "rabbit3\n", "server.crt"}},
	})
	before := snapshot(t, dir)
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"twice", []string{"--node", "rabbit4", "--node", "rabbit4=a.example.com"}, `node "rabbit4" is given twice`},
		{"named server", []string{"--node", "server=a.example.com"}, "server.crt"},
		{"a URL as host", []string{"--node", "rabbit4=https://a.example.com"}, "without a scheme"},
		{"an empty host", []string{"--node", "rabbit4=a.example.com,"}, "empty host name"},
		{"no host after =", []string{"--node", "rabbit4="}, "empty host name"},
		{"a bad name", []string{"--node", "a/b=a.example.com"}, "node name"},
	} {
		code, _, e := runCLI(t, "", append([]string{"pki", "init", "--dir", dir}, tc.args...)...)
		if code == 0 || !strings.Contains(e, tc.err) {
			t.Errorf("%s: exit %d, want an error with %q:\n%s", tc.name, code, tc.err, e)
		}
		if snapshot(t, dir) != before {
			t.Fatalf("%s: files changed", tc.name)
		}
	}
}
