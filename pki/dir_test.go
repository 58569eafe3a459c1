package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// treeHashes maps every file below dir to its mode and content hash.
func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			out[rel] = info.Mode().String()
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		out[rel] = info.Mode().String() + " " + string(sha256.New().Sum(data))[:0] + hashHex(data) + " " + info.ModTime().String()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func hashHex(b []byte) string {
	s := sha256.Sum256(b)
	return colonHex(s[:])
}

func mustInit(t *testing.T, dir string, o InitOptions) *Report {
	t.Helper()
	rep, err := (&Dir{Path: dir}).Init(o)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	return rep
}

func readCert(t *testing.T, path string) []*x509.Certificate {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := ParseCerts(data, path)
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func TestInitModesAndRerun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	rep := mustInit(t, dir, InitOptions{Clients: []string{"alice"}, Hosts: []string{"localhost", "127.0.0.1"}})
	if !rep.Changed() {
		t.Fatal("first Init reported no change")
	}
	modes := map[string]os.FileMode{
		".": 0o700, "clients": 0o700,
		"ca.key": 0o600, "server.key": 0o600, "clients/alice.key": 0o600,
		"ca.crt": 0o644, "server.crt": 0o644, "clients/alice.crt": 0o644,
	}
	for rel, want := range modes {
		st, err := os.Stat(filepath.Join(dir, rel))
		if err != nil {
			t.Fatal(err)
		}
		if got := st.Mode().Perm(); got != want {
			t.Errorf("%s mode = %04o, want %04o", rel, got, want)
		}
	}
	before := treeHashes(t, dir)
	rep = mustInit(t, dir, InitOptions{Clients: []string{"alice"}, Hosts: []string{"localhost", "127.0.0.1"}})
	if rep.Changed() {
		t.Errorf("second Init reported a change: %+v", rep.Actions)
	}
	after := treeHashes(t, dir)
	if len(before) != len(after) {
		t.Fatalf("re-run changed the file set: %v vs %v", before, after)
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("re-run changed %s", k)
		}
	}

	// A new client is added; the CA and server stay.
	rep = mustInit(t, dir, InitOptions{Clients: []string{"alice", "bob"}, Hosts: []string{"localhost", "127.0.0.1", "mqtt.example.com"}})
	after = treeHashes(t, dir)
	for _, rel := range []string{"ca.crt", "ca.key", "server.crt", "server.key", "clients/alice.key"} {
		if after[rel] != before[rel] {
			t.Errorf("adding a client changed %s", rel)
		}
	}
	if _, ok := after["clients/bob.crt"]; !ok {
		t.Error("bob was not issued")
	}
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "does not name mqtt.example.com") {
		t.Errorf("no warning that the kept server certificate lacks a new host: %q", rep.Warnings)
	}

	// --force replaces leaf keys, never the CA.
	mustInit(t, dir, InitOptions{Clients: []string{"alice"}, Force: true, Hosts: []string{"localhost"}})
	forced := treeHashes(t, dir)
	if forced["server.key"] == after["server.key"] || forced["clients/alice.key"] == after["clients/alice.key"] {
		t.Error("--force did not replace the leaf keys")
	}
	if forced["ca.key"] != after["ca.key"] || forced["ca.crt"] != after["ca.crt"] {
		t.Error("--force replaced the CA")
	}
	if forced["clients/bob.key"] != after["clients/bob.key"] {
		t.Error("--force touched a client it was not asked about")
	}
}

func TestInitWarnsAboutOpenDirectory(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	rep := mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	if !strings.Contains(strings.Join(rep.Warnings, "\n"), "chmod 700 "+dir) {
		t.Fatalf("no warning about mode 0755: %q", rep.Warnings)
	}
	rep = mustInit(t, filepath.Join(dir, "new"), InitOptions{Hosts: []string{"localhost"}})
	if strings.Contains(strings.Join(rep.Warnings, "\n"), "chmod 700") {
		t.Fatalf("warning for a directory Init made itself: %q", rep.Warnings)
	}
}

func TestIssueNeverOverwritesWithoutForce(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Clients: []string{"alice"}, Hosts: []string{"localhost"}})
	d := &Dir{Path: dir}
	key0, _ := os.ReadFile(filepath.Join(dir, "clients/alice.key"))
	_, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "alice"})
	if err == nil || !errors.Is(err, ErrNeedsForce) || !errors.Is(err, fs.ErrExist) || strings.Contains(err.Error(), "--") {
		t.Fatalf("Issue over an existing client: %v, want an ErrNeedsForce/ErrExist error that names no flag", err)
	}
	key1, _ := os.ReadFile(filepath.Join(dir, "clients/alice.key"))
	if string(key0) != string(key1) {
		t.Fatal("the key changed although Issue failed")
	}
	if _, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "alice", Force: true}); err != nil {
		t.Fatal(err)
	}
	key2, _ := os.ReadFile(filepath.Join(dir, "clients/alice.key"))
	if string(key2) == string(key0) {
		t.Fatal("--force did not replace the key")
	}
	st, _ := os.Stat(filepath.Join(dir, "clients/alice.key"))
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("replaced key mode %04o", st.Mode().Perm())
	}
}

func TestInitFailureLeavesNothing(t *testing.T) {
	dir := t.TempDir()
	// A stray key without its certificate makes the second client fail after
	// the CA, server and first client were prepared.
	if err := os.MkdirAll(filepath.Join(dir, "clients"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "clients", "carol.key"), []byte("stray"), 0o600); err != nil {
		t.Fatal(err)
	}
	before := treeHashes(t, dir)
	_, err := (&Dir{Path: dir}).Init(InitOptions{Clients: []string{"alice", "carol"}, Hosts: []string{"localhost"}})
	if err == nil || !strings.Contains(err.Error(), "carol.crt is missing") {
		t.Fatalf("Init = %v, want an error about carol's missing certificate", err)
	}
	after := treeHashes(t, dir)
	if len(after) != len(before) {
		t.Fatalf("a failed Init left files behind: %v", after)
	}
}

func TestIntermediateChain(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Intermediate: true, Clients: []string{"alice"}, Hosts: []string{"localhost"}})
	root := readCert(t, filepath.Join(dir, "ca.crt"))
	inter := readCert(t, filepath.Join(dir, "intermediate.crt"))
	srv := readCert(t, filepath.Join(dir, "server.crt"))
	if len(root) != 1 || !root[0].IsCA || root[0].MaxPathLen != 1 {
		t.Fatalf("root: %d certs, CA %v, pathlen %d", len(root), root[0].IsCA, root[0].MaxPathLen)
	}
	if !inter[0].IsCA || inter[0].MaxPathLen != 0 || !inter[0].MaxPathLenZero {
		t.Fatal("intermediate must be a CA with path length 0")
	}
	if inter[0].NotAfter.After(root[0].NotAfter) {
		t.Fatal("intermediate outlives the root")
	}
	if len(srv) != 2 || !srv[1].Equal(inter[0]) {
		t.Fatalf("server.crt must hold leaf and intermediate, has %d certs", len(srv))
	}
	pool := x509.NewCertPool()
	pool.AddCert(root[0])
	ipool := x509.NewCertPool()
	ipool.AddCert(srv[1])
	if _, err := srv[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: ipool, DNSName: "localhost"}); err != nil {
		t.Fatalf("server chain: %v", err)
	}
}

func TestSubjectsDistinct(t *testing.T) {
	dir := t.TempDir()
	// A client named like the host and a CA named like the client.
	mustInit(t, dir, InitOptions{CAName: "localhost", Clients: []string{"localhost"}, Hosts: []string{"localhost"}})
	seen := map[string]string{}
	for _, f := range []string{"ca.crt", "server.crt", "clients/localhost.crt"} {
		s := readCert(t, filepath.Join(dir, f))[0].Subject.String()
		if prev, ok := seen[s]; ok {
			t.Fatalf("%s and %s share subject %q", f, prev, s)
		}
		seen[s] = f
	}
	// Two servers whose CN would clash are refused.
	d := &Dir{Path: dir}
	_, err := d.Issue(IssueOptions{Profile: ProfileServer, Name: "other", Hosts: []string{"localhost"}})
	if err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("clashing subject: %v", err)
	}
	if _, err := d.Issue(IssueOptions{Profile: ProfileServer, Name: "other", Hosts: []string{"localhost"}, CN: "other.local"}); err != nil {
		t.Fatalf("with --cn: %v", err)
	}
}

func TestEncryptedCAKey(t *testing.T) {
	dir := t.TempDir()
	pw := []byte("correct horse")
	mustInit(t, dir, InitOptions{CAKeyPassword: pw, Hosts: []string{"localhost"}})
	data, _ := os.ReadFile(filepath.Join(dir, "ca.key"))
	if !strings.Contains(string(data), "ENCRYPTED PRIVATE KEY") {
		t.Fatalf("CA key not encrypted:\n%s", data)
	}
	srv, _ := os.ReadFile(filepath.Join(dir, "server.key"))
	if isEncryptedKey(srv) {
		t.Fatal("the server key must stay unencrypted")
	}
	// Without a password source, issuing fails clearly.
	_, err := (&Dir{Path: dir}).Issue(IssueOptions{Profile: ProfileClient, Name: "a"})
	if !errors.Is(err, ErrKeyEncrypted) {
		t.Fatalf("no password: %v", err)
	}
	wrong := &Dir{Path: dir, CAPassword: func() ([]byte, error) { return []byte("nope"), nil }}
	if _, err := wrong.Issue(IssueOptions{Profile: ProfileClient, Name: "a"}); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("wrong password: %v", err)
	}
	right := &Dir{Path: dir, CAPassword: func() ([]byte, error) { return pw, nil }}
	if _, err := right.Issue(IssueOptions{Profile: ProfileClient, Name: "a"}); err != nil {
		t.Fatalf("right password: %v", err)
	}
	if _, err := marshalKey(nil, []byte{}); err == nil {
		t.Fatal("an empty password was accepted")
	}
}

func TestCheckFindsProblems(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Clients: []string{"alice", "bob"}, Hosts: []string{"localhost", "127.0.0.1"}})
	d := &Dir{Path: dir}
	f, err := d.Check(CheckOptions{Hosts: []string{"localhost", "127.0.0.1"}})
	if err != nil {
		t.Fatal(err)
	}
	if HasErrors(f) {
		t.Fatalf("fresh directory has errors: %v", f)
	}

	// Plant: bob's key in alice's place, an expired client, a world-readable key.
	bobKey, _ := os.ReadFile(filepath.Join(dir, "clients/bob.key"))
	if err := os.WriteFile(filepath.Join(dir, "clients/alice.key"), bobKey, 0o600); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-48 * time.Hour)
	if _, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "old", NotBefore: past.Add(-24 * time.Hour), NotAfter: past}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "soon", NotAfter: time.Now().Add(10 * 24 * time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(dir, "server.key"), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err = d.Check(CheckOptions{Hosts: []string{"mqtt.example.com", "localhost"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		level      Level
		path, text string
	}{
		{LevelError, "clients/alice.key", "does not belong to the certificate"},
		{LevelError, "clients/old.crt", "expired on"},
		{LevelWarn, "clients/soon.crt", "expires on"},
		{LevelError, "server.key", "readable by every user"},
		{LevelError, "server.crt", "does not name mqtt.example.com"},
		{LevelOK, "server.crt", "names localhost"},
	}
	for _, w := range want {
		found := false
		for _, x := range f {
			if x.Level == w.level && strings.HasSuffix(x.Path, w.path) && strings.Contains(x.Message, w.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s finding %q for %s in:\n%v", w.level, w.text, w.path, joinFindings(f))
		}
	}
	if !HasErrors(f) {
		t.Error("HasErrors = false")
	}
}

func joinFindings(f []Finding) string {
	var s []string
	for _, x := range f {
		s = append(s, x.String())
	}
	return strings.Join(s, "\n")
}

func TestCheckDuplicateSubject(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Clients: []string{"alice"}, Hosts: []string{"localhost"}})
	// Copy alice's pair to a second name: same subject twice.
	for _, ext := range []string{".crt", ".key"} {
		data, _ := os.ReadFile(filepath.Join(dir, "clients/alice"+ext))
		os.WriteFile(filepath.Join(dir, "clients/alias"+ext), data, 0o600)
	}
	f, err := (&Dir{Path: dir}).Check(CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(joinFindings(f), "same subject") {
		t.Fatalf("duplicate subject not found:\n%s", joinFindings(f))
	}
}

func TestSignCSRIgnoresRequestedExtensions(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	out := t.TempDir()
	_, csrPath, err := NewCSR(CSROptions{Name: "dev1", Hosts: []string{"evil.example.com"}, OutDir: out})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ReadCSR(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	cert, rep, err := (&Dir{Path: dir}).SignCSR(csr, SignOptions{Profile: ProfileClient, Out: filepath.Join(out, "dev1.crt")})
	if err != nil {
		t.Fatal(err)
	}
	if len(cert.DNSNames) != 0 || cert.IsCA {
		t.Fatalf("client cert got SANs %v / CA %v from the CSR", cert.DNSNames, cert.IsCA)
	}
	if !strings.Contains(strings.Join(rep.Warnings, " "), "evil.example.com") {
		t.Errorf("no warning about the ignored SAN: %v", rep.Warnings)
	}
	idx, _ := LoadIndex(dir)
	if e := idx.find(filepath.ToSlash(filepath.Join(out, "dev1.crt"))); e == nil || e.Profile != ProfileClient {
		t.Fatalf("signed certificate not in the index: %+v", idx.Certificates)
	}
}

func TestInspect(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Intermediate: true, Hosts: []string{"localhost", "192.0.2.1"}})
	sums, err := InspectFile(filepath.Join(dir, "server.crt"), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(sums) != 2 || sums[0].Profile != "server" || sums[1].Profile != "intermediate" {
		t.Fatalf("server.crt summaries: %+v", sums)
	}
	if strings.Join(sums[0].SANs, ",") != "DNS:localhost,IP:192.0.2.1" || strings.Join(sums[0].ExtKeyUsage, ",") != "serverAuth" {
		t.Fatalf("SANs %v, EKU %v", sums[0].SANs, sums[0].ExtKeyUsage)
	}
	k, err := InspectFile(filepath.Join(dir, "server.key"), time.Now())
	if err != nil || k[0].Kind != "private-key" || k[0].KeyType != "ec-p256" {
		t.Fatalf("key summary %+v, %v", k, err)
	}
	if _, err := inspect([]byte("hello"), "x", time.Now()); err == nil {
		t.Fatal("garbage was inspected without error")
	}
}

func BenchmarkInit(b *testing.B) {
	for _, kt := range KeyTypes {
		b.Run(string(kt), func(b *testing.B) {
			for b.Loop() {
				dir := b.TempDir()
				if _, err := (&Dir{Path: dir}).Init(InitOptions{KeyType: kt, Clients: []string{"client"}, Hosts: []string{"localhost"}}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestBridgeCNIsItsName: a bridge certificate's CN is its name (its MQTT
// username on the remote broker), with its hosts as SANs; a second bridge
// or client with that identity is refused.
func TestBridgeCNIsItsName(t *testing.T) {
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}})
	d := &Dir{Path: dir}
	if _, err := d.Issue(IssueOptions{Profile: ProfileBridge, Name: "site1", Hosts: []string{"site1.example.com"}}); err != nil {
		t.Fatal(err)
	}
	c := readCert(t, filepath.Join(dir, "servers", "site1.crt"))[0]
	if c.Subject.CommonName != "site1" || len(c.DNSNames) != 1 || c.DNSNames[0] != "site1.example.com" {
		t.Fatalf("bridge certificate CN %q, SANs %v; want CN site1 and SAN site1.example.com", c.Subject.CommonName, c.DNSNames)
	}
	if _, err := d.Issue(IssueOptions{Profile: ProfileBridge, Name: "alice", Hosts: []string{"a.example.com"}}); !errors.Is(err, ErrIdentityInUse) {
		t.Fatalf("a bridge with client alice's identity: %v, want ErrIdentityInUse", err)
	}
}
