package enroll

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/pki"
)

type fixture struct {
	dir  *pki.Dir
	srv  *Server
	addr string
	hs   *http.Server
	pool *x509.CertPool
}

func newFixture(t *testing.T, o Options, tune func(*http.Server)) *fixture {
	t.Helper()
	ln, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return newFixtureOn(t, ln, o, tune)
}

// newFixtureOn serves a new pki directory on ln.
func newFixtureOn(t *testing.T, ln net.Listener, o Options, tune func(*http.Server)) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "pki")
	d := &pki.Dir{Path: path}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost", "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(path, pki.ServerCertFile), filepath.Join(path, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	o.Dir = d
	srv := New(o)
	hs := srv.HTTPServer("127.0.0.1:0", cert)
	if tune != nil {
		tune(hs)
	}
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	pool := x509.NewCertPool()
	ca, _ := tls.LoadX509KeyPair(filepath.Join(path, pki.RootCertFile), filepath.Join(path, pki.RootKeyFile))
	c, _ := x509.ParseCertificate(ca.Certificate[0])
	pool.AddCert(c)
	return &fixture{dir: d, srv: srv, addr: ln.Addr().String(), hs: hs, pool: pool}
}

// client is a test client at 127.0.0.1: it keeps to half the server's
// bound of connections from one address (the other half is for those the
// server is still closing when the client has its answer).
func (f *fixture) client() *http.Client {
	return &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, ServerName: "localhost"}, MaxConnsPerHost: MaxConnsPerIP / 2}}
}

func csrB64(t testing.TB, cn string) []byte {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}}, k)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(der))
}

func (f *fixture) post(t *testing.T, c *http.Client, user, pass string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", "https://"+f.addr+BasePath+"simpleenroll", bytes.NewReader(body))
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
	return resp.StatusCode, string(b)
}

// TestParallelEnrolments: 100 devices with 100 tokens at once all land in
// the index; each token sent twice at once issues one certificate.
func TestParallelEnrolments(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 1000}, nil)
	names := make([]string, 100)
	for i := range names {
		names[i] = fmt.Sprintf("dev-%d", i)
	}
	toks, err := f.dir.CreateTokens(pki.TokenOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	c := f.client()
	var mu sync.Mutex
	ok := map[string]int{}
	var wg sync.WaitGroup
	for _, tk := range toks {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				code, body := f.post(t, c, tk.Name, tk.Secret, csrB64(t, tk.Name))
				if code != 200 && code != 401 {
					t.Errorf("%s: %d %s", tk.Name, code, body)
				}
				mu.Lock()
				ok[tk.Name] += map[bool]int{true: 1}[code == 200]
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	entries, _, err := f.dir.Entries()
	if err != nil {
		t.Fatal(err)
	}
	inIndex := map[string]int{}
	for _, e := range entries {
		inIndex[e.Name]++
	}
	for _, n := range names {
		if ok[n] != 1 || inIndex[n] != 1 {
			t.Errorf("%s: %d issued, %d in the index", n, ok[n], inIndex[n])
		}
	}
}

// TestRateLimitOnFailedAuth: after MaxFailures failed tokens from one
// address, even a right token is answered 429 until the window passes.
func TestRateLimitOnFailedAuth(t *testing.T) {
	now := time.Now()
	var mu sync.Mutex
	f := newFixture(t, Options{MaxFailures: 3, FailWindow: time.Minute, Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}, nil)
	toks, _ := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"dev-1"}})
	c := f.client()
	for i := range 3 {
		if code, _ := f.post(t, c, "dev-1", fmt.Sprintf("guess%d", i), csrB64(t, "dev-1")); code != 401 {
			t.Fatalf("guess %d: %d", i, code)
		}
	}
	if code, body := f.post(t, c, "dev-1", toks[0].Secret, csrB64(t, "dev-1")); code != 429 {
		t.Fatalf("blocked: %d %s", code, body)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if code, body := f.post(t, c, "dev-1", toks[0].Secret, csrB64(t, "dev-1")); code != 200 {
		t.Fatalf("after the window: %d %s", code, body)
	}
}

// TestAttacks: requests an attacker sends are refused with their status
// and nothing is issued.
func TestAttacks(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 1000}, func(hs *http.Server) { hs.ReadHeaderTimeout = 300 * time.Millisecond })
	if f.hs.MaxHeaderBytes != MaxHeaderBytes || New(Options{}).HTTPServer("x", tls.Certificate{}).ReadHeaderTimeout != HeaderTimeout {
		t.Fatal("the server's bounds are not set")
	}
	toks, _ := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"dev-1"}})
	c := f.client()
	// A Basic header that is not NAME:TOKEN, or a token for another name.
	req, _ := http.NewRequest("POST", "https://"+f.addr+BasePath+"simpleenroll", bytes.NewReader(csrB64(t, "dev-1")))
	req.Header.Set("Content-Type", "application/pkcs10")
	req.Header.Set("Authorization", "Basic !!!")
	resp, err := c.Do(req)
	if err != nil || resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("forged Basic: %v %v", err, resp)
	}
	resp.Body.Close()
	if code, _ := f.post(t, c, "dev-2", toks[0].Secret, csrB64(t, "dev-2")); code != 401 {
		t.Fatalf("another name's token: %d", code)
	}
	// A CSR asking for CA:TRUE: 403, the token not spent.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caDER, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-1"},
		ExtraExtensions: []pkix.Extension{{Id: []int{2, 5, 29, 19}, Critical: true, Value: []byte{0x30, 0x03, 0x01, 0x01, 0xff}}}}, k)
	if code, body := f.post(t, c, "dev-1", toks[0].Secret, []byte(base64.StdEncoding.EncodeToString(caDER))); code != 403 || !strings.Contains(body, "CA:TRUE") {
		t.Fatalf("CA:TRUE: %d %s", code, body)
	}
	// Chunked bodies over the bound are cut at 64 KiB.
	req, _ = http.NewRequest("POST", "https://"+f.addr+BasePath+"simpleenroll", io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("A"), 2*MaxBody))))
	req.Header.Set("Content-Type", "application/pkcs10")
	req.SetBasicAuth("dev-1", toks[0].Secret)
	if resp, err = c.Do(req); err != nil || resp.StatusCode != 413 {
		t.Fatalf("chunked oversized body: %v %v", err, resp)
	}
	resp.Body.Close()
	// Oversized headers: 431.
	req, _ = http.NewRequest("GET", "https://"+f.addr+BasePath+"cacerts", nil)
	req.Header.Set("X-Junk", strings.Repeat("x", 2*MaxHeaderBytes))
	if resp, err = c.Do(req); err != nil || resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("oversized headers: %v %v", err, resp)
	}
	resp.Body.Close()
	// Slowloris: headers that never end are cut off.
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.pool, ServerName: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %ssimpleenroll HTTP/1.1\r\nHost: localhost\r\n", BasePath)
	start := time.Now()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for range 5 {
		if _, err := fmt.Fprintf(conn, "X-Slow: 1\r\n"); err != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	bufio.NewReader(conn).ReadString('\n') // the server's 408 or the close
	if time.Since(start) > 5*time.Second {
		t.Fatalf("a client sending its headers slowly kept its connection for %v", time.Since(start))
	}
	// Nothing was issued, and the token still works.
	if code, body := f.post(t, c, "dev-1", toks[0].Secret, csrB64(t, "dev-1")); code != 200 {
		t.Fatalf("the token after the attacks: %d %s", code, body)
	}
}

func TestDecodeCSR(t *testing.T) {
	good := csrB64(t, "dev-1")
	wrapped := []byte{}
	for i := 0; i < len(good); i += 64 {
		wrapped = append(wrapped, good[i:min(i+64, len(good))]...)
		wrapped = append(wrapped, '\r', '\n')
	}
	if _, err := DecodeCSR(wrapped); err != nil {
		t.Fatalf("line breaks: %v", err)
	}
	bad := append([]byte(nil), good...)
	bad[len(bad)-10] ^= 1
	for _, c := range []struct {
		name string
		body []byte
		text string
	}{
		{"empty", nil, "empty"},
		{"PEM", []byte("-----BEGIN CERTIFICATE REQUEST-----\nMII\n-----END CERTIFICATE REQUEST-----\n"), "PEM"},
		{"not a CSR", []byte(base64.StdEncoding.EncodeToString([]byte("hello"))), "PKCS#10"},
		{"a broken signature", bad, ""},
	} {
		if _, err := DecodeCSR(c.body); err == nil || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func FuzzDecodeCSR(f *testing.F) {
	f.Add(csrB64(f, "dev-1"))
	f.Add([]byte("MIIB\n"))
	f.Add([]byte("-----BEGIN"))
	f.Fuzz(func(t *testing.T, body []byte) {
		csr, err := DecodeCSR(body)
		if err == nil && csr.CheckSignature() != nil {
			t.Fatal("accepted a request whose signature does not verify")
		}
	})
}

// TestMethodNotAllowedAndTwoCNs: finding 11 of the adversarial pass. A 405
// names the method allowed (Allow); a CSR with two CNs
// (/CN=alice/CN=bob) is refused for bob's token (before: issued, Go takes
// the last CN) and the token stays unused.
func TestMethodNotAllowedAndTwoCNs(t *testing.T) {
	f := newFixture(t, Options{MaxFailures: 1000}, nil)
	c := f.client()
	for _, r := range []struct{ method, op, allow string }{{"GET", "simpleenroll", "POST"}, {"PUT", "simplereenroll", "POST"}, {"POST", "cacerts", "GET"}} {
		req, _ := http.NewRequest(r.method, "https://"+f.addr+BasePath+r.op, nil)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 || resp.Header.Get("Allow") != r.allow {
			t.Errorf("%s %s: %d, Allow %q, want 405 and %q", r.method, r.op, resp.StatusCode, resp.Header.Get("Allow"), r.allow)
		}
	}
	toks, err := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"bob"}})
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	two := pkix.Name{ExtraNames: []pkix.AttributeTypeAndValue{{Type: []int{2, 5, 4, 3}, Value: "alice"}, {Type: []int{2, 5, 4, 3}, Value: "bob"}}}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: two}, k)
	if err != nil {
		t.Fatal(err)
	}
	if code, body := f.post(t, c, "bob", toks[0].Secret, []byte(base64.StdEncoding.EncodeToString(der))); code != 403 || !strings.Contains(body, "2 CNs") {
		t.Fatalf("two CNs: %d %s", code, body)
	}
	if code, body := f.post(t, c, "bob", toks[0].Secret, csrB64(t, "bob")); code != 200 {
		t.Fatalf("the token after the refusal: %d %s", code, body)
	}
}
