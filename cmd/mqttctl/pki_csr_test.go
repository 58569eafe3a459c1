package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestPKICSRAndSign(t *testing.T) {
	dir := newPKIDir(t, "--host", "localhost")
	work := t.TempDir()
	runSteps(t, []cliStep{
		{name: "csr", args: []string{"pki", "csr", "dev9", "--out-dir", work}, out: []string{"mqttctl pki sign"}},
		{name: "csr again", args: []string{"pki", "csr", "dev9", "--out-dir", work}, code: 1, errOut: []string{"exists", "--force"}},
		{name: "sign", args: []string{"pki", "sign", "--dir", dir, "--csr", filepath.Join(work, "dev9.csr"), "--profile", "client"},
			out: []string{"Issued client certificate"}, check: func(t *testing.T, _, _ string) {
				if _, err := os.Stat(filepath.Join(work, "dev9.crt")); err != nil {
					t.Error(err)
				}
			}},
	})
}
