package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// testCSR makes a key and a CSR for cn (extensions as given).
func testCSR(t testing.TB, cn string, key crypto.Signer, exts ...pkix.Extension) *x509.CertificateRequest {
	t.Helper()
	if key == nil {
		var err error
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			t.Fatal(err)
		}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, ExtraExtensions: exts}, key)
	if err != nil {
		t.Fatal(err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return csr
}

func tokenDir(t *testing.T) (*Dir, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}})
	return &Dir{Path: dir}, dir
}

func TestTokensStoredHashedAndSingleUse(t *testing.T) {
	d, dir := tokenDir(t)
	toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-1", "dev-2"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if len(toks) != 2 || len(toks[0].Secret) < 43 || toks[0].Secret == toks[1].Secret {
		t.Fatalf("tokens: %+v", toks)
	}
	data := mustRead(t, filepath.Join(dir, TokensFile))
	if strings.Contains(string(data), toks[0].Secret) || !strings.Contains(string(data), hashToken(toks[0].Secret)) {
		t.Fatalf("tokens.json holds the secret or lacks its hash:\n%s", data)
	}
	if st, _ := os.Stat(filepath.Join(dir, TokensFile)); st.Mode().Perm() != 0o600 {
		t.Fatalf("tokens.json mode %v", st.Mode().Perm())
	}
	cases := []struct {
		name, tokName, secret, cn string
		kind                      error
	}{
		{"wrong secret", "dev-1", toks[1].Secret, "dev-1", ErrEnrollAuth},
		{"another name's token", "dev-2", toks[0].Secret, "dev-2", ErrEnrollAuth},
		{"CN mismatch", "dev-1", toks[0].Secret, "dev-2", ErrEnrollPolicy},
		{"right", "dev-1", toks[0].Secret, "dev-1", nil},
		{"used twice", "dev-1", toks[0].Secret, "dev-1", ErrEnrollAuth},
	}
	for _, c := range cases {
		before := mustRead(t, filepath.Join(dir, IndexFile))
		_, err := d.Enroll(EnrollRequest{CSR: testCSR(t, c.cn, nil), TokenName: c.tokName, Token: c.secret})
		if c.kind == nil && err != nil || c.kind != nil && !errors.Is(err, c.kind) {
			t.Fatalf("%s: err %v, want %v", c.name, err, c.kind)
		}
		if c.kind != nil && string(before) != string(mustRead(t, filepath.Join(dir, IndexFile))) {
			t.Fatalf("%s: the index changed on a refusal", c.name)
		}
	}
	list, _ := d.Tokens()
	if list[0].StatusAt(time.Now()) != "used" || list[1].StatusAt(time.Now()) != "unused" || list[0].Serial == "" {
		t.Fatalf("list: %+v", list)
	}
	idx, _ := LoadIndex(dir)
	if e := idx.find("clients/dev-1.crt"); e == nil || e.Serial != list[0].Serial || e.Key != "" || e.Profile != ProfileClient {
		t.Fatalf("index entry %+v", e)
	}
	// Revoked and expired tokens enrol nothing.
	if err := d.RevokeToken("dev-2"); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-2", nil), TokenName: "dev-2", Token: toks[1].Secret}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("revoked token: %v", err)
	}
	exp, _ := d.CreateTokens(TokenOptions{Names: []string{"dev-3"}, TTL: time.Minute})
	late := &Dir{Path: dir, Now: func() time.Time { return time.Now().Add(2 * time.Minute) }}
	if _, err := late.Enroll(EnrollRequest{CSR: testCSR(t, "dev-3", nil), TokenName: "dev-3", Token: exp[0].Secret}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestTokenCreateRefusals(t *testing.T) {
	d, dir := tokenDir(t)
	if _, err := d.CreateTokens(TokenOptions{Names: []string{"dev-1"}}); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, filepath.Join(dir, TokensFile))
	for _, c := range []struct {
		name string
		o    TokenOptions
		kind error
		text string
	}{
		{"an unused token exists", TokenOptions{Names: []string{"dev-1"}}, ErrTokenExists, "already has an unused token"},
		{"a certificate exists", TokenOptions{Names: []string{"alice"}}, ErrIdentityInUse, "alice"},
		{"all or nothing", TokenOptions{Names: []string{"dev-9", "alice"}}, ErrNeedsForce, "alice"},
		{"a bad name", TokenOptions{Names: []string{"a/#"}}, nil, "token name"},
		{"a name twice", TokenOptions{Names: []string{"x", "x"}}, nil, "twice"},
		{"a predecessor's name", TokenOptions{Names: []string{"alice.prev"}}, nil, ".prev"},
		{"a server profile", TokenOptions{Names: []string{"x"}, Profile: ProfileServer}, nil, "profile client"},
		{"too long", TokenOptions{Names: []string{"x"}, TTL: 500 * 24 * time.Hour}, nil, "lifetime"},
	} {
		_, err := d.CreateTokens(c.o)
		if err == nil || c.kind != nil && !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v", c.name, err)
		}
	}
	if string(before) != string(mustRead(t, filepath.Join(dir, TokensFile))) {
		t.Fatal("a refusal changed tokens.json")
	}
	// With force: the old token is revoked, and alice's enrolment
	// supersedes her certificate (kept as alice.prev.crt; its key stays
	// clients/alice.key, which the old entry names).
	toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-1", "alice"}, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := d.Tokens()
	if len(list) != 3 || list[0].StatusAt(time.Now()) != "revoked" {
		t.Fatalf("%+v", list)
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "alice", nil), TokenName: "alice", Token: toks[1].Secret}); err != nil {
		t.Fatal(err)
	}
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	old, cur := idx.find("clients/alice.prev.crt"), idx.find("clients/alice.crt")
	if old == nil || cur == nil || old.ReplacedBy != cur.Serial || old.Key != "clients/alice.key" || cur.Key != "" || !fileExists(filepath.Join(dir, "clients/alice.key")) {
		t.Fatalf("old %+v cur %+v", old, cur)
	}
	// pki check is content: the old entry's key matches alice.prev.crt.
	findings, err := d.Check(CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if f.Level != LevelOK {
			t.Errorf("pki check after the enrolment: %v", f)
		}
	}
	// Revoking by name revokes both.
	if _, _, err := d.Revoke(RevokeOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	idx, _ = LoadIndex(dir)
	if idx.find("clients/alice.crt").Status != "revoked" || idx.byFingerprint(old.Fingerprint) < 0 || idx.Certificates[idx.byFingerprint(old.Fingerprint)].Status != "revoked" {
		t.Fatalf("revoke by name left one valid: %+v", idx.Certificates)
	}
}

// TestEnrollSameTokenConcurrently: two uses of one token at once issue one
// certificate; 100 tokens used in parallel all land in the index.
func TestEnrollSameTokenConcurrently(t *testing.T) {
	d, dir := tokenDir(t)
	names := make([]string, 100)
	for i := range names {
		names[i] = "dev-" + strconv.Itoa(i)
	}
	toks, err := d.CreateTokens(TokenOptions{Names: names})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	okCount := map[string]int{}
	for i := range toks {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := (&Dir{Path: dir}).Enroll(EnrollRequest{CSR: testCSR(t, toks[i].Name, nil), TokenName: toks[i].Name, Token: toks[i].Secret})
				if err != nil && !errors.Is(err, ErrEnrollAuth) {
					t.Error(err)
				}
				if err == nil {
					mu.Lock()
					okCount[toks[i].Name]++
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if okCount[n] != 1 {
			t.Errorf("%s: %d certificates issued", n, okCount[n])
		}
		if idx.find("clients/"+n+".crt") == nil {
			t.Errorf("%s is not in the index", n)
		}
	}
}

// TestEnrollCrashIsAtomic stops an enrolment at each write step: after
// recovery the token is used exactly when the certificate is recorded.
func TestEnrollCrashIsAtomic(t *testing.T) {
	base, baseDir := tokenDir(t)
	toks, err := base.CreateTokens(TokenOptions{Names: []string{"dev-1"}})
	if err != nil {
		t.Fatal(err)
	}
	csr := testCSR(t, "dev-1", nil)
	var steps []string
	probe := filepath.Join(t.TempDir(), "pki")
	copyTree(t, baseDir, probe)
	if _, err := (&Dir{Path: probe, crash: func(s string) bool { steps = append(steps, s); return false }}).Enroll(EnrollRequest{CSR: csr, TokenName: "dev-1", Token: toks[0].Secret}); err != nil {
		t.Fatal(err)
	}
	if len(steps) < 3 {
		t.Fatalf("steps %v", steps)
	}
	for k := range steps {
		dir := filepath.Join(t.TempDir(), "pki")
		copyTree(t, baseDir, dir)
		n := 0
		_, err := (&Dir{Path: dir, crash: func(string) bool { n++; return n == k+1 }}).Enroll(EnrollRequest{CSR: csr, TokenName: "dev-1", Token: toks[0].Secret})
		if !errors.Is(err, fsx.ErrCrashed) {
			t.Fatalf("step %s: %v", steps[k], err)
		}
		d := &Dir{Path: dir}
		list, err := d.Tokens()
		if err != nil {
			t.Fatal(err)
		}
		idx, err := LoadIndex(dir)
		if err != nil {
			t.Fatal(err)
		}
		e := idx.find("clients/dev-1.crt")
		used := list[0].StatusAt(time.Now()) == "used"
		if used != (e != nil) || used && e.Serial != list[0].Serial {
			t.Fatalf("crash at %s: token used %v, index entry %+v", steps[k], used, e)
		}
		// Retrying (the server crashed: the device has no answer):
		// exactly one certificate in the end; once the token was used,
		// the retry for the same key gets that certificate again.
		got, err := d.Enroll(EnrollRequest{CSR: csr, TokenName: "dev-1", Token: toks[0].Secret})
		if err != nil || got.Repeat != used || used && FormatSerial(got.Cert) != e.Serial {
			t.Fatalf("crash at %s, retry: %v %+v", steps[k], err, got)
		}
		if idx, _ := LoadIndex(dir); len(idx.Certificates) != len(mustIndex(t, baseDir).Certificates)+1 {
			t.Fatalf("crash at %s, retry: %d certificates", steps[k], len(idx.Certificates))
		}
	}
}

func TestEnrollCSRPolicy(t *testing.T) {
	d, dir := tokenDir(t)
	rsa1024, _ := rsa.GenerateKey(rand.Reader, 1024)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	caTrue, _ := asn1.Marshal(struct {
		IsCA bool
	}{true})
	san, _ := asn1.Marshal([]asn1.RawValue{{Class: 2, Tag: 2, Bytes: []byte("evil.example.com")}})
	eku, _ := asn1.Marshal([]asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
	for _, c := range []struct {
		name string
		csr  *x509.CertificateRequest
		text string
	}{
		{"CA:TRUE", testCSR(t, "dev-1", nil, pkix.Extension{Id: oidBasicConstraints, Value: caTrue}), "CA:TRUE"},
		{"a SAN", testCSR(t, "dev-1", nil, pkix.Extension{Id: oidSAN, Value: san}), "subjectAltName"},
		{"serverAuth", testCSR(t, "dev-1", nil, pkix.Extension{Id: oidExtKeyUsage, Value: eku}), "extKeyUsage"},
		{"an unknown extension", testCSR(t, "dev-1", nil, pkix.Extension{Id: asn1.ObjectIdentifier{1, 2, 3, 4}, Value: []byte{5, 0}}), "1.2.3.4"},
		{"RSA-1024", testCSR(t, "dev-1", rsa1024), "RSA-1024"},
		{"P-224", testCSR(t, "dev-1", p224), "P-224"},
		{"no CN", testCSR(t, "", nil), "no CN"},
		{"a wildcard CN", testCSR(t, "dev/#", nil), "identity"},
		{"a predecessor's CN", testCSR(t, "alice.prev", nil), ".prev"},
	} {
		toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-1"}, Force: true})
		if err != nil {
			t.Fatal(err)
		}
		before := mustRead(t, filepath.Join(dir, TokensFile))
		_, err = d.Enroll(EnrollRequest{CSR: c.csr, TokenName: "dev-1", Token: toks[0].Secret})
		if !errors.Is(err, ErrEnrollPolicy) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v", c.name, err)
		}
		if string(before) != string(mustRead(t, filepath.Join(dir, TokensFile))) {
			t.Errorf("%s: the token was spent on a refusal", c.name)
		}
	}
	// The accepted key types.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, ed, _ := ed25519.GenerateKey(rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	for _, k := range []crypto.Signer{p384, ed, rsa2048} {
		toks, _ := d.CreateTokens(TokenOptions{Names: []string{"dev-1"}, Force: true})
		if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", k), TokenName: "dev-1", Token: toks[0].Secret}); err != nil {
			t.Errorf("%T: %v", k.Public(), err)
		}
	}
	// A request asking for what the profile gives anyway is fine.
	ku, _ := asn1.Marshal(asn1.BitString{Bytes: []byte{0x80}, BitLength: 1})
	ok, _ := asn1.Marshal([]asn1.ObjectIdentifier{oidClientAuth})
	toks, _ := d.CreateTokens(TokenOptions{Names: []string{"dev-1"}, Force: true})
	e, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil, pkix.Extension{Id: oidKeyUsage, Value: ku}, pkix.Extension{Id: oidExtKeyUsage, Value: ok}), TokenName: "dev-1", Token: toks[0].Secret})
	if err != nil {
		t.Fatal(err)
	}
	if e.Cert.IsCA || len(e.Cert.ExtKeyUsage) != 1 || e.Cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || e.Cert.Subject.OrganizationalUnit[0] != ClientOU {
		t.Fatalf("issued %+v", e.Cert)
	}
	// The subject is the profile's: a CSR's other attributes are not copied.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "dev-2", Organization: []string{"Evil CA"}, OrganizationalUnit: []string{BootstrapOU}}}, k)
	evil, _ := x509.ParseCertificateRequest(der)
	toks, _ = d.CreateTokens(TokenOptions{Names: []string{"dev-2"}})
	if e, err = d.Enroll(EnrollRequest{CSR: evil, TokenName: "dev-2", Token: toks[0].Secret}); err != nil {
		t.Fatal(err)
	}
	if got := e.Cert.Subject.String(); got != "CN=dev-2,OU=MQTT Clients,O=mqttctl" || IsBootstrap(e.Cert) {
		t.Fatalf("subject %s", got)
	}
}

func TestBootstrapProfile(t *testing.T) {
	d, dir := tokenDir(t)
	if _, err := d.Issue(IssueOptions{Profile: ProfileBootstrap, Name: "dev-1"}); err != nil {
		t.Fatal(err)
	}
	c := readCert(t, filepath.Join(dir, "bootstrap", "dev-1.crt"))[0]
	if !IsBootstrap(c) || c.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth || profileOf(c) != "bootstrap" {
		t.Fatalf("bootstrap certificate %+v", c.Subject)
	}
	idx, _ := LoadIndex(dir)
	if e := idx.find("bootstrap/dev-1.crt"); e == nil || e.Profile != ProfileBootstrap {
		t.Fatalf("index %+v", e)
	}
	alice := readCert(t, filepath.Join(dir, "clients", "alice.crt"))[0]
	if IsBootstrap(alice) {
		t.Fatal("a client certificate reads as bootstrap")
	}
	// It enrols its own name once, not another.
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-2", nil), Peer: []*x509.Certificate{c}}); !errors.Is(err, ErrEnrollPolicy) {
		t.Fatalf("another name: %v", err)
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), Peer: []*x509.Certificate{c}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), Peer: []*x509.Certificate{c}}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("enrolled twice: %v", err)
	}
	// It cannot re-enrol, and a client certificate cannot bootstrap.
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), Peer: []*x509.Certificate{c}, Reenroll: true}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("bootstrap re-enrol: %v", err)
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "alice", nil), Peer: []*x509.Certificate{alice}}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("client as bootstrap: %v", err)
	}
	// Rebuilt from disk, it is still a bootstrap certificate.
	os.Remove(filepath.Join(dir, IndexFile))
	idx, _ = LoadIndex(dir)
	if e := idx.find("bootstrap/dev-1.crt"); e == nil || e.Profile != ProfileBootstrap {
		t.Fatalf("rebuilt %+v", e)
	}
}

func TestReenroll(t *testing.T) {
	d, dir := tokenDir(t)
	alice := readCert(t, filepath.Join(dir, "clients", "alice.crt"))[0]
	csrLike := func(c *x509.Certificate) *x509.CertificateRequest {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: c.RawSubject}, k)
		r, _ := x509.ParseCertificateRequest(der)
		return r
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "alice", nil), Peer: []*x509.Certificate{alice}, Reenroll: true}); !errors.Is(err, ErrEnrollPolicy) {
		t.Fatalf("another subject: %v", err)
	}
	e, err := d.Enroll(EnrollRequest{CSR: csrLike(alice), Peer: []*x509.Certificate{alice}, Reenroll: true})
	if err != nil {
		t.Fatal(err)
	}
	if e.How != AuthRenewal || e.Cert.Subject.String() != alice.Subject.String() {
		t.Fatalf("%+v", e)
	}
	// Expired: refused, unless within the window.
	late := &Dir{Path: dir, Now: func() time.Time { return e.Cert.NotAfter.Add(24 * time.Hour) }}
	if _, err := late.Enroll(EnrollRequest{CSR: csrLike(e.Cert), Peer: []*x509.Certificate{e.Cert}, Reenroll: true}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("expired: %v", err)
	}
	if _, err := late.Enroll(EnrollRequest{CSR: csrLike(e.Cert), Peer: []*x509.Certificate{e.Cert}, Reenroll: true, RenewAfterExpiry: 48 * time.Hour}); err != nil {
		t.Fatalf("expired within the window: %v", err)
	}
	cur := readCert(t, filepath.Join(dir, "clients", "alice.crt"))[0]
	if _, _, err := d.Revoke(RevokeOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if _, err := late.Enroll(EnrollRequest{CSR: csrLike(cur), Peer: []*x509.Certificate{cur}, Reenroll: true}); !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked: %v", err)
	}
	// Revoking the name revoked every certificate of the slot, the
	// re-enrolled ones' predecessors too.
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range idx.Certificates {
		if e.Name == "alice" {
			n++
			if e.Status != "revoked" {
				t.Errorf("%s (serial %s) is still valid after revoking alice", e.Cert, e.Serial)
			}
		}
	}
	if n != 3 || idx.find("clients/alice.prev.crt") == nil || idx.find("clients/alice.prev.crt").ReplacedBy == "" {
		t.Fatalf("%d entries for alice: %+v", n, idx.Certificates)
	}
	// Revoked in crl.pem only (an index.yaml restored from before the
	// revocation): still refused.
	fresh, freshDir := tokenDir(t)
	bob := readCert(t, filepath.Join(freshDir, "clients", "alice.crt"))[0]
	before := mustRead(t, filepath.Join(freshDir, IndexFile))
	if _, _, err := fresh.Revoke(RevokeOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(freshDir, IndexFile), before, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fresh.Enroll(EnrollRequest{CSR: csrLike(bob), Peer: []*x509.Certificate{bob}, Reenroll: true}); !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked in crl.pem only: %v", err)
	}
	// Another profile with clientAuth (a bridge) cannot re-enrol.
	if _, err := d.Issue(IssueOptions{Profile: ProfileBridge, Name: "site1", Hosts: []string{"site1.example.com"}}); err != nil {
		t.Fatal(err)
	}
	bridge := readCert(t, filepath.Join(dir, "servers", "site1.crt"))[0]
	if _, err := d.Enroll(EnrollRequest{CSR: csrLike(bridge), Peer: []*x509.Certificate{bridge}, Reenroll: true}); !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), "bridge") {
		t.Fatalf("bridge: %v", err)
	}
	// A certificate of another CA.
	_, otherDir := tokenDir(t)
	other := readCert(t, filepath.Join(otherDir, "clients", "alice.crt"))[0]
	if _, err := d.Enroll(EnrollRequest{CSR: csrLike(other), Peer: []*x509.Certificate{other}, Reenroll: true}); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("foreign: %v", err)
	}
}

// BenchmarkEnroll measures one token enrolment (lock, index and crl.pem
// read, CA key read, sign, journaled write) in a directory that already
// holds 500 enrolled devices.
func BenchmarkEnroll(b *testing.B) {
	dir := filepath.Join(b.TempDir(), "pki")
	d := &Dir{Path: dir}
	if _, err := d.Init(InitOptions{Hosts: []string{"localhost"}}); err != nil {
		b.Fatal(err)
	}
	enrol := func(names []string) {
		toks, err := d.CreateTokens(TokenOptions{Names: names})
		if err != nil {
			b.Fatal(err)
		}
		for _, tk := range toks {
			if _, err := d.Enroll(EnrollRequest{CSR: testCSR(b, tk.Name, nil), TokenName: tk.Name, Token: tk.Secret}); err != nil {
				b.Fatal(err)
			}
		}
	}
	var names []string
	for i := range 500 {
		names = append(names, "base-"+strconv.Itoa(i))
	}
	enrol(names)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-" + strconv.Itoa(i)}})
		if err != nil {
			b.Fatal(err)
		}
		csr := testCSR(b, toks[0].Name, nil)
		b.StartTimer()
		if _, err := d.Enroll(EnrollRequest{CSR: csr, TokenName: toks[0].Name, Token: toks[0].Secret}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWrongTokenDoesNotWaitForTheLock: a wrong token is refused while
// another command holds the directory's lock (guessing does not queue
// behind real enrolments); a right one waits for it.
func TestWrongTokenDoesNotWaitForTheLock(t *testing.T) {
	d, dir := tokenDir(t)
	toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-1"}})
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := fsx.LockDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() {
		_, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), TokenName: "dev-1", Token: "guess"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrEnrollAuth) {
			t.Fatalf("wrong token: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a wrong token waited for the lock")
	}
	go func() {
		_, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), TokenName: "dev-1", Token: toks[0].Secret})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("the right token did not wait for the lock: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestReadNamesIsTheBatchFormat: enroll token create --batch reads the file
// pki issue client --batch reads, by the same rules (an adversarial pass:
// a byte order mark stayed in the first name, a header made a device called
// "name", and a duplicate had no line number).
func TestReadNamesIsTheBatchFormat(t *testing.T) {
	names, err := ReadNames(strings.NewReader("\ufeffname,san\ng1\ng2,g2.example\n"), "d.csv")
	if err != nil || len(names) != 2 || names[0] != "g1" || names[1] != "g2" {
		t.Fatalf("%q %v", names, err)
	}
	for in, want := range map[string]string{
		"name\ng1\ng1\n":     "d.csv:3:",
		"name,serial\ng1\n":  "d.csv:1:",
		"ali\u200bce\n":      "invisible character",
		"# only a comment\n": "d.csv",
	} {
		if _, err := ReadNames(strings.NewReader(in), "d.csv"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ReadNames(%q) = %v, want %q", in, err, want)
		}
	}
}

func mustIndex(t *testing.T, dir string) *Index {
	t.Helper()
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	return idx
}

// TestRestoredTokensFileDoesNotReviveAToken: index.yaml keeps the hash of
// the token each certificate was enrolled with, so a tokens.json copied
// back from before the enrolment (a backup restored) cannot make the used
// token good again; nothing is written by the refusal.
func TestRestoredTokensFileDoesNotReviveAToken(t *testing.T) {
	d, dir := tokenDir(t)
	toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-1"}, TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	backup := mustRead(t, filepath.Join(dir, TokensFile))
	e, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), TokenName: "dev-1", Token: toks[0].Secret})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := idx.find("clients/dev-1.crt"); got == nil || got.Token != hashToken(toks[0].Secret) {
		t.Fatalf("the index does not record the token the certificate was enrolled with: %+v", got)
	}
	if err := os.WriteFile(filepath.Join(dir, TokensFile), backup, 0o600); err != nil {
		t.Fatal(err)
	}
	before := mustRead(t, filepath.Join(dir, IndexFile))
	_, err = d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), TokenName: "dev-1", Token: toks[0].Secret})
	if !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), FormatSerial(e.Cert)) || !strings.Contains(err.Error(), "restored") {
		t.Fatalf("a token revived by a restored tokens.json: %v", err)
	}
	if after := mustRead(t, filepath.Join(dir, IndexFile)); string(after) != string(before) {
		t.Fatal("the refusal changed index.yaml")
	}
}
