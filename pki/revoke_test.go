package pki

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// TestCRLListsLeavesOfEveryCA: a client issued by the root before an
// intermediate was added is still listed once revoked (on the root's CRL).
func TestCRLListsLeavesOfEveryCA(t *testing.T) {
	d := &Dir{Path: filepath.Join(t.TempDir(), "pki")}
	if _, err := d.Init(InitOptions{Hosts: []string{"localhost"}, Clients: []string{"early"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Init(InitOptions{Hosts: []string{"localhost"}, Intermediate: true, Clients: []string{"late"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"early", "late"} {
		if _, _, err := d.Revoke(RevokeOptions{Name: n}); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(d.path(CRLFile))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range crl.RevokedCertificateEntries {
			listed[r.SerialNumber.Text(16)] = true
		}
	}
	for _, n := range []string{"early", "late"} {
		certs, err := ParseCerts(mustRead(t, d.path("clients/"+n+".crt")), n)
		if err != nil {
			t.Fatal(err)
		}
		if !listed[certs[0].SerialNumber.Text(16)] {
			t.Errorf("revoked %s is not on any CRL", n)
		}
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
