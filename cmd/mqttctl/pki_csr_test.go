package main

import (
	"os"
	"path/filepath"
	"strings"
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

// TestSignIntoClientsOfANewPKI: the README's `pki sign --out
// pki/clients/NAME.crt` in a pki that has issued no client yet (no
// clients/ directory) writes it there (it failed: "create temporary file
// ... no such file or directory").
func TestSignIntoClientsOfANewPKI(t *testing.T) {
	p := newPKIDir(t)
	dir := t.TempDir()
	csr := filepath.Join(dir, "x.csr")
	if code, o, e := runCLI(t, "", "pki", "csr", "x", "--out-dir", dir); code != 0 {
		t.Fatalf("pki csr: %s%s", o, e)
	}
	out := filepath.Join(p, "clients", "x.crt")
	if code, o, e := runCLI(t, "", "pki", "sign", "--csr", csr, "--profile", "client", "--dir", p, "--out", out); code != 0 {
		t.Fatalf("pki sign into a new clients/: %s%s", o, e)
	}
	if st, err := os.Stat(filepath.Dir(out)); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("clients/: %v %v, want a 0700 directory", st, err)
	}
	if code, o, _ := runCLI(t, "", "pki", "list", "--dir", p); code != 0 || !strings.Contains(o, "clients/x.crt") {
		t.Errorf("pki list after sign:\n%s", o)
	}
}
