package broker

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

// TestEnrolRateLimits: a claim certificate gets claimBurst requests at
// once, then one every claimEvery, and a renewing device renewBurst then
// one every renewEvery; each key has its own bucket.
func TestEnrolRateLimits(t *testing.T) {
	for _, c := range []struct {
		name  string
		burst int
		every time.Duration
	}{
		{"claim", claimBurst, claimEvery},
		{"renew", renewBurst, renewEvery},
	} {
		h := newEnrolHook(nil)
		now := time.Now()
		allow := func(key string, at time.Time) bool {
			return h.allow(c.name+"/"+key, float64(c.burst), c.every, at)
		}
		for i := 0; i < c.burst; i++ {
			if !allow("A", now) {
				t.Fatalf("%s: request %d of the burst refused", c.name, i+1)
			}
		}
		if allow("A", now) {
			t.Fatalf("%s: a request past the burst was allowed", c.name)
		}
		if !allow("B", now) {
			t.Fatalf("%s: another key shares the first's bucket", c.name)
		}
		if allow("A", now.Add(c.every/2)) {
			t.Fatalf("%s: allowed before the next request is due", c.name)
		}
		if !allow("A", now.Add(c.every+c.every/2)) {
			t.Fatalf("%s: refused when the next request is due", c.name)
		}
	}
}

func testCSRPEM(t testing.TB) []byte {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-1"}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

// TestDecodeEnrolRequest: a PEM or DER CSR, optionally after a token
// line; anything else is refused in words.
func TestDecodeEnrolRequest(t *testing.T) {
	p := testCSRPEM(t)
	block, _ := pem.Decode(p)
	for _, c := range []struct {
		name    string
		in      []byte
		token   string
		refuses string
	}{
		{"PEM", p, "", ""},
		{"DER", block.Bytes, "", ""},
		{"token and PEM", append([]byte("abc_DEF-123\n"), p...), "abc_DEF-123", ""},
		{"token, CRLF", append([]byte("abc\r\n"), p...), "abc", ""},
		{"token starting with 0 (0x30, DER's first byte)", append([]byte("0bc_DEF\n"), p...), "0bc_DEF", ""},
		{"empty", nil, "", "empty"},
		{"junk first line", append([]byte("token: abc\n"), p...), "", "first line"},
		{"two CSRs", append(append([]byte{}, p...), p...), "", "more after"},
		{"a certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), "", "no PEM CERTIFICATE REQUEST"},
		{"bad DER", []byte{0x30, 0x03, 0x01, 0x01, 0x00}, "", "not a PKCS#10"},
	} {
		csr, tok, err := decodeEnrolRequest(c.in)
		switch {
		case c.refuses != "" && (err == nil || !strings.Contains(err.Error(), c.refuses)):
			t.Errorf("%s: %v, want %q", c.name, err, c.refuses)
		case c.refuses == "" && (err != nil || csr.Subject.CommonName != "dev-1" || tok != c.token):
			t.Errorf("%s: %v, token %q", c.name, err, tok)
		}
	}
}

// FuzzDecodeEnrolRequest: a request payload comes from any client of an
// enrolling listener.
func FuzzDecodeEnrolRequest(f *testing.F) {
	p := testCSRPEM(f)
	block, _ := pem.Decode(p)
	f.Add(p)
	f.Add(block.Bytes)
	f.Add(append([]byte("abc\n"), p...))
	f.Add([]byte("-----BEGIN CERTIFICATE REQUEST-----\n\n-----END CERTIFICATE REQUEST-----\n"))
	f.Add([]byte{0x30, 0x80})
	f.Fuzz(func(t *testing.T, in []byte) {
		csr, tok, err := decodeEnrolRequest(in)
		if err != nil {
			return
		}
		if csr == nil || len(tok) > maxTokenLen || csr.CheckSignature() != nil {
			t.Fatalf("accepted: %v %q", csr, tok)
		}
	})
}
