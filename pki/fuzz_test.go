package pki

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// fuzzSeeds is a small pki directory's files (once per process): the
// seeds of the fuzz targets of the files pki reads from outside.
var fuzzSeeds = sync.OnceValues(func() (map[string][]byte, error) {
	dir, err := os.MkdirTemp("", "pki-fuzz-seeds")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	d := &Dir{Path: filepath.Join(dir, "pki")}
	if _, err := d.Init(InitOptions{Hosts: []string{"localhost", "192.0.2.1"}, Clients: []string{"alice", "bob"}, Intermediate: true}); err != nil {
		return nil, err
	}
	if _, _, err := d.Revoke(RevokeOptions{Name: "bob", Reason: "keyCompromise"}); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	for _, f := range []string{IndexFile, CRLFile, RootCertFile, "server.crt", "clients/alice.crt"} {
		if out[f], err = os.ReadFile(d.path(f)); err != nil {
			return nil, err
		}
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "sensor-07", Organization: []string{"x"}},
		DNSNames: []string{"sensor-07.example.com"}}, key)
	if err != nil {
		return nil, err
	}
	out["csr.der"] = der
	out["csr.pem"] = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
	return out, nil
})

func addSeeds(f *testing.F, names ...string) {
	seeds, err := fuzzSeeds()
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range names {
		f.Add(seeds[n])
	}
}

// FuzzParseCSR: pki sign reads a CSR made anywhere (PEM or DER). Any bytes
// give a request or an error, never a panic; a request that parses has a
// verified signature and summarizes.
func FuzzParseCSR(f *testing.F) {
	addSeeds(f, "csr.pem", "csr.der", "server.crt")
	f.Add([]byte("-----BEGIN NEW CERTIFICATE REQUEST-----\nMAA=\n-----END NEW CERTIFICATE REQUEST-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		csr, err := parseCSR(data, "fuzz.csr")
		if err != nil {
			return
		}
		if csr.CheckSignature() != nil {
			t.Fatal("parseCSR accepted a request whose signature does not verify")
		}
		summarizeCSR(csr)
	})
}

// FuzzInspect: pki inspect reads any file (certificates, CSRs, CRLs,
// keys; PEM or DER). Any bytes give summaries or an error, never a panic,
// and every summary can be printed.
func FuzzInspect(f *testing.F) {
	addSeeds(f, CRLFile, RootCertFile, "clients/alice.crt", "csr.pem", "csr.der")
	seeds, _ := fuzzSeeds()
	f.Add(append(append([]byte{}, seeds["server.crt"]...), seeds[CRLFile]...))
	f.Fuzz(func(t *testing.T, data []byte) {
		sums, err := inspect(data, "fuzz.pem", time.Now())
		if err != nil {
			return
		}
		for _, s := range sums {
			var b bytes.Buffer
			s.WriteText(&b)
		}
	})
}

// FuzzLoadIndex: index.yaml is read on every pki command and may have
// been edited by hand or truncated. LoadIndex gives an index or an error,
// never a panic; an index it accepts is written back (Marshal) to a file
// it accepts again, unchanged.
func FuzzLoadIndex(f *testing.F) {
	addSeeds(f, IndexFile)
	f.Add([]byte("version: 1\ncertificates: []\n"))
	f.Add([]byte("version: 1\ncertificates:\n  - name: a\n    profile: client\n    serial: \"01\"\n    cert: clients/a.crt\n    sha256: x\n    status: valid\n    not_before: 2026-01-01T00:00:00Z\n    not_after: 2027-01-01T00:00:00Z\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, IndexFile), data, 0o600); err != nil {
			t.Fatal(err)
		}
		idx, err := LoadIndex(dir)
		if err != nil {
			return
		}
		out, err := idx.Marshal()
		if err != nil {
			t.Fatalf("an index LoadIndex accepted does not marshal: %v", err)
		}
		if err := os.WriteFile(filepath.Join(dir, IndexFile), out, 0o600); err != nil {
			t.Fatal(err)
		}
		again, err := LoadIndex(dir)
		if err != nil {
			t.Fatalf("the index written back is refused: %v\n%s", err, out)
		}
		if out2, _ := again.Marshal(); !bytes.Equal(out, out2) {
			t.Fatalf("index not stable across a rewrite:\n%s\n---\n%s", out, out2)
		}
	})
}
