package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
