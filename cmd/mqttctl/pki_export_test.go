package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestPKIExportInterop: both p12 variants are read by openssl and by Java's
// keytool, and the key and certificate taken out of them (and a pem-bundle)
// connect a mosquitto client to mqttctl serve over mutual TLS.
func TestPKIExportInterop(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	keytool := testutil.RequireBinary(t, "keytool")
	dir, p := newServePKI(t, "alice")
	srv := startServe(t, dir, 0, "--mtls", "--pki", p)
	pw := filepath.Join(dir, "p12.pass")
	if err := os.WriteFile(pw, []byte("s3cret-Pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	connect := func(cert, key string) {
		t.Helper()
		if out, err := testutil.Run(t, dir, nil, pub, "-h", "localhost", "-p", fmt.Sprint(srv.port), "--cafile", filepath.Join(p, "ca.crt"),
			"--cert", cert, "--key", key, "-t", "export/x", "-m", "1", "-q", "1"); err != nil {
			t.Errorf("mosquitto_pub with %s: %v\n%s\nserve:\n%s", cert, err, out, srv.log.String())
		}
	}
	for _, tc := range []struct {
		name string
		args []string
		info string // in openssl pkcs12 -info
	}{
		{name: "modern", info: "AES-256-CBC"},
		{name: "legacy", args: []string{"--legacy"}, info: "TripleDES"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, tc.name+".p12")
			args := append([]string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", pw}, tc.args...)
			code, stdout, e := runCLI(t, "", args...)
			if code != 0 || !strings.Contains(stdout, "2 certificates") {
				t.Fatalf("export: %d %s %s", code, stdout, e)
			}
			if st, err := os.Stat(out); err != nil || st.Mode().Perm() != 0o600 {
				t.Fatalf("%s: %v, mode %v", out, err, st.Mode())
			}
			info, err := testutil.Run(t, dir, nil, openssl, "pkcs12", "-info", "-noout", "-in", out, "-passin", "file:"+pw)
			if err != nil || !strings.Contains(info, tc.info) {
				t.Errorf("openssl pkcs12 -info: %v\n%s", err, info)
			}
			if _, err := testutil.Run(t, dir, nil, openssl, "pkcs12", "-info", "-noout", "-in", out, "-passin", "pass:wrong"); err == nil {
				t.Error("openssl read the p12 with a wrong password")
			}
			kt, err := testutil.Run(t, dir, nil, keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", out, "-storepass", "s3cret-Pass")
			if err != nil || !strings.Contains(kt, "PrivateKeyEntry") || !strings.Contains(kt, "Certificate chain length: 2") || !strings.Contains(kt, "CN=alice") {
				t.Errorf("keytool -list: %v\n%s", err, kt)
			}
			// The alias is the certificate's name (it was "1").
			if !strings.Contains(kt, "Alias name: alice\n") {
				t.Errorf("keytool -list: the alias is not alice:\n%s", kt)
			}

			key, cert := filepath.Join(dir, tc.name+".key"), filepath.Join(dir, tc.name+".crt")
			testutil.MustRun(t, dir, openssl, "pkcs12", "-in", out, "-passin", "file:"+pw, "-nocerts", "-nodes", "-out", key)
			if kb, _ := os.ReadFile(key); !strings.Contains(string(kb), "friendlyName: alice\n") {
				t.Errorf("openssl pkcs12 -nocerts: the key's bag attributes name no friendlyName alice:\n%.300s", kb)
			}
			testutil.MustRun(t, dir, openssl, "pkcs12", "-in", out, "-passin", "file:"+pw, "-clcerts", "-nokeys", "-out", cert)
			connect(cert, key)
		})
	}
	bundle := filepath.Join(dir, "alice.pem")
	if code, stdout, e := runCLI(t, "", "pki", "export", "alice", "--dir", p, "--format", "pem-bundle", "--out", bundle); code != 0 || !strings.Contains(stdout, ", 1 certificate\n") {
		t.Fatalf("export: %d %q %s", code, stdout, e)
	}
	connect(bundle, bundle)
}

func TestPKIExportRefusals(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--host", "localhost", "--client", "alice", "--client", "bob"); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runCLI(t, "", "pki", "csr", "dev", "--out-dir", dir); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runCLI(t, "", "pki", "sign", "--csr", filepath.Join(dir, "dev.csr"), "--profile", "client", "--dir", p, "--out", filepath.Join(p, "clients", "dev.crt")); code != 0 {
		t.Fatal(e)
	}
	if code, _, e := runCLI(t, "", "pki", "revoke", "bob", "--dir", p); code != 0 {
		t.Fatal(e)
	}
	write := func(name, content string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	good, empty := write("good.pass", "pw\n"), write("empty.pass", "\n")
	exists := write("exists.p12", "old")
	out := filepath.Join(dir, "out.p12")
	runSteps(t, []cliStep{
		{name: "a signed CSR has no key here", args: []string{"pki", "export", "dev", "--dir", p, "--out", out, "--password-file", good}, code: 1, errOut: []string{"signed from a CSR", "openssl pkcs12 -export"}},
		{name: "empty password file", args: []string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", empty}, code: 1, errOut: []string{"empty.pass is empty"}},
		{name: "the key as password file", args: []string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", filepath.Join(p, "clients", "alice.key")}, code: 1, errOut: []string{"PEM file"}},
		{name: "missing password file", args: []string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", filepath.Join(dir, "nope")}, code: 1, errOut: []string{"nope"}},
		{name: "no password and no terminal", args: []string{"pki", "export", "alice", "--dir", p, "--out", out}, code: 1, errOut: []string{"--password-file"}},
		{name: "revoked", args: []string{"pki", "export", "bob", "--dir", p, "--out", out, "--password-file", good}, code: 1, errOut: []string{"was revoked on"}},
		{name: "the CA", args: []string{"pki", "export", "ca", "--dir", p, "--out", out, "--password-file", good}, code: 1, errOut: []string{"never leaves"}},
		{name: "unknown", args: []string{"pki", "export", "nobody", "--dir", p, "--out", out, "--password-file", good}, code: 1, errOut: []string{"no certificate"}},
		{name: "existing output", args: []string{"pki", "export", "alice", "--dir", p, "--out", exists, "--password-file", good}, code: 1, errOut: []string{"exists", "--force"}},
		{name: "a file of the pki directory", args: []string{"pki", "export", "alice", "--dir", p, "--out", filepath.Join(p, "clients", "alice.key"), "--password-file", good, "--force"}, code: 1, errOut: []string{"pki directory"}},
		{name: "legacy pem-bundle", args: []string{"pki", "export", "alice", "--dir", p, "--format", "pem-bundle", "--legacy", "--out", out}, code: 1, errOut: []string{"for --format p12"}},
		{name: "unknown format", args: []string{"pki", "export", "alice", "--dir", p, "--format", "jks", "--out", out}, code: 1, errOut: []string{"p12 or pem-bundle"}},
	})
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused export wrote %s", out)
	}
	if data := mustReadFile(t, exists); string(data) != "old" {
		t.Error("a refused export replaced an existing file")
	}
	runSteps(t, []cliStep{{name: "--force replaces", args: []string{"pki", "export", "alice", "--dir", p, "--out", exists, "--password-file", good, "--force"}, out: []string{"Wrote " + exists}}})
}
