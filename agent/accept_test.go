package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
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
	"unicode/utf8"

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
	if strings.ContainsAny(err.Error(), "\x1b\r\n\x07") || !utf8.ValidString(err.Error()) || !strings.Contains(err.Error(), `\x1b[2J\x1b[31mno\r\nlevel=INFO msg=enrolled \xff\a`) {
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

// TestMessages: each failure is named for what it is.
func TestMessages(t *testing.T) {
	f := newFixture(t, 1, 0)
	status := func(code int, loc string) string {
		return f.fakeEST(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if loc != "" {
				w.Header().Set("Location", loc)
			}
			w.WriteHeader(code)
		}))
	}
	other := &pki.Dir{Path: filepath.Join(t.TempDir(), "other")}
	if _, err := other.Init(pki.InitOptions{Hosts: []string{"other.example.com"}}); err != nil {
		t.Fatal(err)
	}
	otherSrv := (&fixture{pki: other, clock: f.clock}).fakeEST(t, http.NotFoundHandler())
	for _, c := range []struct {
		name      string
		setup     func(o *Options)
		kind      error
		text, not string
	}{
		{"a wrong token", func(o *Options) {}, ErrRefused, "wrong, used, revoked or expired", ""},
		{"500", func(o *Options) { o.EST = status(500, "") }, ErrUnreachable, "the EST server failed", "unreachable"},
		{"404", func(o *Options) { o.EST = status(404, "") }, nil, "not an EST answer", "unreachable"},
		{"302", func(o *Options) { o.EST = status(302, "https://elsewhere.example.com/") }, nil, "not an EST answer", "unreachable"},
		{"a certificate for another name", func(o *Options) {
			o.EST, o.CAFile = otherSrv, filepath.Join(other.Path, pki.RootCertFile)
		}, ErrUntrusted, `is not for the name "localhost"`, "refused by the EST server"},
		{"a huge token file", func(o *Options) {
			os.WriteFile(o.TokenFile, bytes.Repeat([]byte("A"), 100<<10), 0o600)
		}, nil, "over 64 KiB", "0 MiB"},
		{"a password in --est", func(o *Options) { o.EST = strings.Replace(o.EST, "https://", "https://dev-1:s3cret@", 1) }, nil, "holds a user name or password", "s3cret"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			o := f.opts("dev-1")
			o.Dir = f.emptyDir(t)
			o.TokenFile = filepath.Join(o.Dir, "token")
			os.WriteFile(o.TokenFile, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600)
			c.setup(&o)
			_, err := Once(context.Background(), o)
			if err == nil || (c.kind != nil && !errors.Is(err, c.kind)) || !strings.Contains(err.Error(), c.text) || (c.not != "" && strings.Contains(err.Error(), c.not)) {
				t.Fatalf("%v, want %v %q without %q", err, c.kind, c.text, c.not)
			}
			if errors.Is(err, ErrRevoked) {
				t.Errorf("called revoked: %v", err)
			}
		})
	}
	// status on what is not a device directory.
	dir := f.emptyDir(t)
	os.WriteFile(filepath.Join(dir, "dev-1.crt"), []byte("x"), 0o644)
	for _, c := range []struct{ dir, text string }{
		{filepath.Join(dir, "missing"), "no such file or directory"},
		{dir, "dev-1.crt is there but not its key"},
	} {
		if _, err := ReadStatus(c.dir, "", 0, time.Now()); err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("status of %s: %v, want %q", c.dir, err, c.text)
		}
	}
}
