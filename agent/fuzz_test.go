package agent

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"
)

func seedCert(f *testing.F) (*x509.Certificate, []byte) {
	f.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "dev-1"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, k.Public(), k)
	if err != nil {
		f.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	kp, _ := encodeKey(k)
	return c, kp
}

// FuzzDecodeCerts: an EST server's answer (outside input) never panics
// the agent, and what it accepts holds a certificate.
func FuzzDecodeCerts(f *testing.F) {
	c, _ := seedCert(f)
	p7, _ := pkcs7.DegenerateCertificate(append(append([]byte(nil), c.Raw...), c.Raw...))
	f.Add([]byte(base64.StdEncoding.EncodeToString(p7)))
	f.Add([]byte("MII=\n"))
	f.Add([]byte(""))
	f.Add([]byte("not base64!"))
	f.Fuzz(func(t *testing.T, body []byte) {
		certs, err := DecodeCerts(body)
		if err == nil && (len(certs) == 0 || certs[0] == nil) {
			t.Fatal("accepted an answer with no certificate")
		}
	})
}

// FuzzDeviceFiles: the device directory's certificate, key and token files
// never panic the agent, and what it accepts is usable.
func FuzzDeviceFiles(f *testing.F) {
	c, kp := seedCert(f)
	f.Add(encodeCerts([]*x509.Certificate{c}))
	f.Add(kp)
	f.Add([]byte("-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n"))
	f.Add([]byte("tokentokentoken\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if certs, err := ParseCerts(data); err == nil && (len(certs) == 0 || certs[0] == nil) {
			t.Fatal("accepted certificates with none")
		}
		if k, err := ParseKey(data); err == nil && k.Public() == nil {
			t.Fatal("accepted a key without a public key")
		}
		p := filepath.Join(t.TempDir(), "token")
		os.WriteFile(p, data, 0o600)
		if tok, err := readToken(p); err == nil && tok == "" {
			t.Fatal("accepted an empty token")
		}
	})
}
