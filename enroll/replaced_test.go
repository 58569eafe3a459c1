package enroll

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/mqttctl/mqttctl/pki"
)

// device is a key and the certificate the server issued for it.
type device struct {
	key  crypto.Signer
	cert *x509.Certificate
}

func newKey(t testing.TB) crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func csrOf(t testing.TB, subj pkix.Name, k crypto.Signer) []byte {
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, k)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(der))
}

// do sends body to op (simpleenroll, simplereenroll) with the TLS client
// certificate as (if any) and Basic user:pass (if user is set); on 200 it
// returns the issued certificate.
func (f *fixture) do(t *testing.T, op string, as *device, user, pass string, body []byte) (int, string, *x509.Certificate) {
	t.Helper()
	cfg := &tls.Config{RootCAs: f.pool, ServerName: "localhost"}
	if as != nil {
		cfg.Certificates = []tls.Certificate{{Certificate: [][]byte{as.cert.Raw}, PrivateKey: as.key, Leaf: as.cert}}
	}
	c := &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	defer c.CloseIdleConnections()
	req, _ := http.NewRequest("POST", "https://"+f.addr+BasePath+op, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/pkcs10")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return resp.StatusCode, string(b), nil
	}
	der, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(string(b), "\n", ""))
	if err != nil {
		t.Fatal(err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil || len(p7.Certificates) == 0 {
		t.Fatalf("response: %v", err)
	}
	return 200, "", p7.Certificates[0]
}

// syncBuffer is a log sink the server writes from its goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReplacedCertificateCannotRenew: finding 1 of the adversarial pass. A
// device enrols (A), renews with A (B); a thief holding A's pair then
// asks simplereenroll with A again: refused (401, "a certificate that a
// renewal replaced cannot renew"), also with --renew-after-expiry once A
// expired, and nothing is issued; A asking for B's own key (a device
// whose answer was lost) gets B again; B, the current one, renews, and the log
// names the certificate that authorised each issue.
func TestReplacedCertificateCannotRenew(t *testing.T) {
	var logs syncBuffer
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, Options{MaxFailures: 1000, RenewAfterExpiry: 1000 * 24 * time.Hour, Now: clock, Log: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	f.dir.Now = clock
	toks, err := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"dev5"}})
	if err != nil {
		t.Fatal(err)
	}
	a := &device{key: newKey(t)}
	code, body, cert := f.do(t, "simpleenroll", nil, "dev5", toks[0].Secret, csrOf(t, pkix.Name{CommonName: "dev5"}, a.key))
	if code != 200 {
		t.Fatalf("token enrolment: %d %s", code, body)
	}
	a.cert = cert
	b := &device{key: newKey(t)}
	if code, body, b.cert = f.do(t, "simplereenroll", a, "", "", csrOf(t, a.cert.Subject, b.key)); code != 200 {
		t.Fatalf("the legitimate renewal: %d %s", code, body)
	}
	if !strings.Contains(logs.String(), "authorising_serial="+pki.FormatSerial(a.cert)) {
		t.Errorf("the log does not name the certificate that authorised the renewal:\n%s", logs.String())
	}
	before, _, _ := f.dir.Entries()
	for _, at := range []time.Time{now, a.cert.NotAfter.Add(24 * time.Hour)} {
		mu.Lock()
		now = at
		mu.Unlock()
		code, body, _ := f.do(t, "simplereenroll", a, "", "", csrOf(t, a.cert.Subject, newKey(t)))
		if code != 401 || !strings.Contains(body, "a certificate that a renewal replaced cannot renew: use the current one") {
			t.Fatalf("the replaced certificate A at %s: %d %s", at.Format(time.DateOnly), code, body)
		}
	}
	mu.Lock()
	now = time.Now()
	mu.Unlock()
	// The device whose answer was lost asks again with A, for B's key
	// (the CSR's signature proves it holds it): B again, nothing issued.
	code, body, again := f.do(t, "simplereenroll", a, "", "", csrOf(t, a.cert.Subject, b.key))
	if code != 200 || !again.Equal(b.cert) || !strings.Contains(logs.String(), "answered again") {
		t.Fatalf("the lost answer asked again: %d %s %v", code, body, again != nil && again.Equal(b.cert))
	}
	if after, _, _ := f.dir.Entries(); len(after) != len(before) {
		t.Fatalf("%d certificates before, %d after the refused and repeated renewals", len(before), len(after))
	}
	c := &device{key: newKey(t)}
	if code, body, c.cert = f.do(t, "simplereenroll", b, "", "", csrOf(t, b.cert.Subject, c.key)); code != 200 {
		t.Fatalf("the current certificate B: %d %s", code, body)
	}
	// B is now the replaced one: refused too.
	if code, body, _ := f.do(t, "simplereenroll", b, "", "", csrOf(t, b.cert.Subject, newKey(t))); code != 401 {
		t.Fatalf("B after its renewal: %d %s", code, body)
	}
	// A, two renewals back, even with the current key: refused.
	if code, body, _ := f.do(t, "simplereenroll", a, "", "", csrOf(t, a.cert.Subject, c.key)); code != 401 {
		t.Fatalf("A for C's key: %d %s", code, body)
	}
}
