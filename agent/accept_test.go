package agent

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/smallstep/pkcs7"

	"github.com/mqttctl/mqttctl/pki"
)

// hostileEST starts an EST server that signs, with the fixture's CA key,
// what edit makes of a good client certificate for the request's key.
func (f *fixture) hostileEST(t *testing.T, edit func(tpl *x509.Certificate, cur *x509.Certificate)) string {
	t.Helper()
	caKey, err := pki.ReadKey(filepath.Join(f.pki.Path, pki.RootKeyFile), nil)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(f.pki.Path, pki.RootCertFile))
	cas, _ := ParseCerts(caPEM)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		der, _ := base64.StdEncoding.DecodeString(string(body))
		csr, err := x509.ParseCertificateRequest(der)
		if err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		now := f.clock.Now()
		tpl := &x509.Certificate{SerialNumber: big.NewInt(now.UnixNano()), Subject: csr.Subject, NotBefore: now.Add(-time.Minute), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, BasicConstraintsValid: true}
		var cur *x509.Certificate
		if len(r.TLS.PeerCertificates) > 0 {
			cur = r.TLS.PeerCertificates[0]
		}
		edit(tpl, cur)
		out, err := x509.CreateCertificate(rand.Reader, tpl, cas[0], csr.PublicKey, caKey)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		if cur != nil && tpl.SerialNumber.Cmp(cur.SerialNumber) == 0 {
			out = cur.Raw // a replay of the current certificate
		}
		p7, _ := pkcs7.DegenerateCertificate(out)
		w.Write([]byte(base64.StdEncoding.EncodeToString(p7)))
	})
	return f.fakeEST(t, h)
}

// fakeEST serves h over TLS with the fixture's server certificate.
func (f *fixture) fakeEST(t *testing.T, h http.Handler) string {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(filepath.Join(f.pki.Path, pki.ServerCertFile), filepath.Join(f.pki.Path, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequestClientCert}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return "https://localhost:" + strings.Split(ln.Addr().String(), ":")[1]
}

// TestRefusesWhatIsNotARenewal: a certificate signed by the right CA that
// is not a device's current certificate renewed is refused, the pair as
// it was, at a renewal (with and without --rekey) and at the first
// enrolment.
func TestRefusesWhatIsNotARenewal(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(tpl, cur *x509.Certificate)
		text  string
		enrol bool // also refused at the first enrolment
	}{
		{"a CA certificate", func(tpl, _ *x509.Certificate) { tpl.IsCA = true; tpl.KeyUsage |= x509.KeyUsageCertSign }, "a CA certificate", true},
		{"no clientAuth", func(tpl, _ *x509.Certificate) { tpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} }, "client authentication", true},
		{"no extended key usage", func(tpl, _ *x509.Certificate) { tpl.ExtKeyUsage = nil }, "client authentication", true},
		{"no digitalSignature", func(tpl, _ *x509.Certificate) { tpl.KeyUsage = x509.KeyUsageContentCommitment }, "digitalSignature", true},
		{"a bootstrap certificate", func(tpl, _ *x509.Certificate) {
			tpl.Subject.OrganizationalUnit = []string{pki.BootstrapOU}
		}, "bootstrap", true},
		{"a minute long", func(tpl, _ *x509.Certificate) { tpl.NotAfter = tpl.NotBefore.Add(2 * time.Minute) }, "valid for only", true},
		{"ends before the current one", func(tpl, cur *x509.Certificate) {
			if cur != nil {
				tpl.NotAfter = cur.NotAfter.Add(-time.Hour)
			}
		}, "before the current certificate", false},
		{"the current certificate again", func(tpl, cur *x509.Certificate) {
			if cur != nil {
				tpl.SerialNumber = cur.SerialNumber
			}
		}, "the current certificate again", false},
	} {
		for _, mode := range []string{"renew", "rekey", "enrol"} {
			if mode == "enrol" && !c.enrol {
				continue
			}
			t.Run(strings.ReplaceAll(c.name, " ", "_")+"/"+mode, func(t *testing.T) {
				f := newFixture(t, 1, 0)
				o := f.opts("dev-1")
				if mode != "enrol" {
					st := f.enrol("dev-1")
					f.clock.set(time.Until(st.RenewAt) + time.Minute)
				} else {
					o.TokenFile = f.token("dev-1", false)
				}
				o.Rekey = mode == "rekey"
				o.EST = f.hostileEST(t, c.edit)
				before := snapshot(t, f.dev)
				want := c.text
				if c.name == "the current certificate again" && mode == "rekey" {
					want = "does not hold the device's key" // the old key's
				}
				out, err := Once(context.Background(), o)
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("%v %v, want %q", out, err, want)
				}
				after := snapshot(t, f.dev)
				delete(after, "dev-1.pairs") // the staged key of a new key
				delete(before, "dev-1.pairs")
				if len(after) != len(before) {
					t.Errorf("files changed: %d -> %d", len(before), len(after))
				}
				for k, v := range before {
					if after[k] != v {
						t.Errorf("%s changed", k)
					}
				}
				if _, err := os.Stat(filepath.Join(f.dev, "dev-1.pairs", "next", "dev-1.crt")); err == nil {
					t.Error("the refused certificate is staged")
				}
			})
		}
	}
}

// TestServerTextEscaped: what the server says goes into the error (and
// the journal) with its control characters escaped.
func TestServerTextEscaped(t *testing.T) {
	f := newFixture(t, 1, 0)
	o := f.opts("dev-1")
	o.TokenFile = f.token("dev-1", false)
	o.EST = f.fakeEST(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusUnauthorized)
		w.Write([]byte("\x1b[2J\x1b[31mno\r\nlevel=INFO msg=enrolled \xff\x07"))
	}))
	_, err := Once(context.Background(), o)
	if err == nil {
		t.Fatal("no error")
	}
	if strings.ContainsAny(err.Error(), "\x1b\r\n\x07\xff") || !strings.Contains(err.Error(), `\x1b[2J\x1b[31mno\r\nlevel=INFO msg=enrolled \xff\a`) {
		t.Errorf("%q", err.Error())
	}
}

func FuzzPrintable(f *testing.F) {
	for _, s := range []string{"plain", "\x1b[31mred\r\n", "\xff\xfe", "\uFFFD ok", `back\slash`, "tab\there", "\u2028\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p := Printable(s)
		for _, r := range p {
			if r != ' ' && !unicode.IsPrint(r) {
				t.Fatalf("Printable(%q) = %q holds %q", s, p, r)
			}
		}
	})
}
