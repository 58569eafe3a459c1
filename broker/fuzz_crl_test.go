package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"github.com/mqttctl/mqttctl/confgen"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// FuzzLoadCRLs: crlfile is read at start and on every SIGHUP. Any bytes
// give CRLs or an error, never a panic; a CRL this listener's CA signed is
// indexed so that every serial it lists is refused.
func FuzzLoadCRLs(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz CA"}, NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		f.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(der)
	crl := func(n int64, serials ...int64) []byte {
		rl := &x509.RevocationList{Number: big.NewInt(n), ThisUpdate: now.Add(-time.Minute), NextUpdate: now.Add(24 * time.Hour)}
		for _, s := range serials {
			rl.RevokedCertificateEntries = append(rl.RevokedCertificateEntries, x509.RevocationListEntry{SerialNumber: big.NewInt(s), RevocationTime: now.Add(-time.Minute)})
		}
		d, err := x509.CreateRevocationList(rand.Reader, rl, ca, key)
		if err != nil {
			f.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: d})
	}
	f.Add(crl(1))
	f.Add(crl(2, 2, 3, 0x7fffffffffff))
	f.Add(append(append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), crl(3, 5)...), "trailing text\n"...))
	f.Add([]byte("-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "crl.pem")
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		crls, err := loadCRLs(path)
		if err != nil {
			return
		}
		idx, err := indexCRLs(crls, []*x509.Certificate{ca}, nil)
		if err != nil {
			return
		}
		st := &tlsState{spec: &confgen.TLS{CRLFile: path}}
		st.crls.Store(&idx)
		for _, c := range crls {
			for _, e := range c.RevokedCertificateEntries {
				if e.SerialNumber == nil {
					continue
				}
				leaf := &x509.Certificate{SerialNumber: e.SerialNumber}
				if err := st.revoked([][]*x509.Certificate{{leaf, ca}}); err == nil {
					t.Fatalf("serial %v is listed in a CRL the CA signed, and it is let in", e.SerialNumber)
				}
			}
		}
	})
}
