package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// crlState is what crl.pem on disk revokes (serials in hex) and its
// greatest CRL number.
func crlState(t *testing.T, dir string) (map[string]bool, int64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, CRLFile))
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, 0
	}
	if err != nil {
		t.Fatal(err)
	}
	revoked := map[string]bool{}
	var number int64
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		rl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			t.Fatalf("crl.pem: %v", err)
		}
		if rl.Number.Int64() > number {
			number = rl.Number.Int64()
		}
		for _, e := range rl.RevokedCertificateEntries {
			revoked[e.SerialNumber.Text(16)] = true
		}
	}
	return revoked, number
}

// indexRevoked is the set of serials (hex) the index records revoked.
func indexRevoked(idx *Index) map[string]bool {
	out := map[string]bool{}
	for _, e := range idx.Certificates {
		if e.Status == "revoked" {
			n, _ := new(big.Int).SetString(normSerial(e.Serial), 16)
			out[n.Text(16)] = true
		}
	}
	return out
}

func copyTree(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		info, err := d.Info()
		if err != nil {
			return err
		}
		if d.IsDir() {
			return os.MkdirAll(target, info.Mode().Perm())
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}

// crashBase is a directory with an intermediate, clients alice, bob and
// mallory (revoked for keyCompromise), a server and a signed CSR dev.
func crashBase(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice", "bob", "mallory"}, Intermediate: true})
	d := &Dir{Path: dir}
	if _, _, err := d.Revoke(RevokeOptions{Name: "mallory", Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	signDeviceCSR(t, d, "dev")
	return dir
}

// TestCrashAtEveryWriteStep stops every pki command that writes the
// directory at each of its write steps (each temporary file, the journal,
// each rename and removal, each directory sync), as kill -9 would, and
// checks what a broker and the next command see:
//   - right after the crash, crl.pem still revokes everything revoked
//     before, with a CRL number no lower;
//   - once the next command has read the directory (it completes or drops
//     the interrupted change), index.yaml and crl.pem revoke the same
//     certificates, every certificate file is listed with its fingerprint,
//     and no temporary file or journal is left;
//   - pki crl then writes a CRL that revokes at least all of that, with a
//     number above every earlier one.
func TestCrashAtEveryWriteStep(t *testing.T) {
	base := crashBase(t)
	csrDir := t.TempDir()
	_, csrPath, err := NewCSR(CSROptions{Name: "dev2", OutDir: csrDir})
	if err != nil {
		t.Fatal(err)
	}
	commands := []struct {
		name string
		run  func(d *Dir) error
	}{
		{"init adds a client", func(d *Dir) error {
			_, err := d.Init(InitOptions{Hosts: []string{"localhost"}, Clients: []string{"carol"}, Intermediate: true})
			return err
		}},
		{"init --force replaces leaves", func(d *Dir) error {
			_, err := d.Init(InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}, Intermediate: true, Force: true})
			return err
		}},
		{"issue client", func(d *Dir) error {
			_, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "carol"})
			return err
		}},
		{"issue client --force", func(d *Dir) error {
			_, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "bob", Force: true})
			return err
		}},
		{"issue bootstrap", func(d *Dir) error {
			_, err := d.Issue(IssueOptions{Profile: ProfileBootstrap, Name: "dev9"})
			return err
		}},
		{"enroll token create", func(d *Dir) error {
			_, err := d.CreateTokens(TokenOptions{Names: []string{"dev7", "dev8"}})
			return err
		}},
		{"enroll with a token", func(d *Dir) error {
			toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev6"}})
			if err != nil {
				return err
			}
			_, err = d.Enroll(EnrollRequest{CSR: testCSR(t, "dev6", nil), TokenName: "dev6", Token: toks[0].Secret})
			return err
		}},
		{"enroll with a bootstrap certificate (its entry marked used in the same change)", func(d *Dir) error {
			if _, err := d.Issue(IssueOptions{Profile: ProfileBootstrap, Name: "dev5"}); err != nil {
				return err
			}
			data, err := os.ReadFile(filepath.Join(d.Path, "bootstrap", "dev5.crt"))
			if err != nil {
				return err
			}
			certs, err := ParseCerts(data, "dev5.crt")
			if err != nil {
				return err
			}
			_, err = d.Enroll(EnrollRequest{CSR: testCSR(t, "dev5", nil), Peer: certs[:1]})
			return err
		}},
		{"issue claim", func(d *Dir) error {
			_, err := d.Issue(IssueOptions{Profile: ProfileClaim, Name: "factory9", ClaimPrefix: "line9-"})
			return err
		}},
		{"enroll by a claim with a token (the token used in the same change)", func(d *Dir) error {
			if _, err := d.Issue(IssueOptions{Profile: ProfileClaim, Name: "factory4"}); err != nil {
				return err
			}
			toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev4"}})
			if err != nil {
				return err
			}
			data, err := os.ReadFile(filepath.Join(d.Path, ClaimDir, "factory4.crt"))
			if err != nil {
				return err
			}
			certs, err := ParseCerts(data, "factory4.crt")
			if err != nil {
				return err
			}
			_, err = d.Enroll(EnrollRequest{CSR: testCSR(t, "dev4", nil), Peer: certs[:1], Claim: true, TokenName: "dev4", Token: toks[0].Secret})
			return err
		}},
		{"enroll: re-enrol alice (a certificate whose key the directory holds)", func(d *Dir) error {
			data, err := os.ReadFile(filepath.Join(d.Path, "clients", "alice.crt"))
			if err != nil {
				return err
			}
			certs, err := ParseCerts(data, "alice.crt")
			if err != nil {
				return err
			}
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			der, _ := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{RawSubject: certs[0].RawSubject}, k)
			csr, _ := x509.ParseCertificateRequest(der)
			_, err = d.Enroll(EnrollRequest{CSR: csr, Peer: certs[:1], Reenroll: true})
			return err
		}},
		{"issue server", func(d *Dir) error {
			_, err := d.Issue(IssueOptions{Profile: ProfileServer, Name: "node1", Hosts: []string{"node1.example"}})
			return err
		}},
		{"sign", func(d *Dir) error {
			csr, err := ReadCSR(csrPath)
			if err != nil {
				return err
			}
			_, _, err = d.SignCSR(csr, SignOptions{Profile: ProfileClient, Out: filepath.Join(d.Path, "clients", "dev2.crt")})
			return err
		}},
		{"sign --out elsewhere", func(d *Dir) error {
			csr, err := ReadCSR(csrPath)
			if err != nil {
				return err
			}
			out := filepath.Join(filepath.Dir(d.Path), "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			_, _, err = d.SignCSR(csr, SignOptions{Profile: ProfileClient, Out: filepath.Join(out, "dev2.crt")})
			return err
		}},
		{"export", func(d *Dir) error {
			out := filepath.Join(filepath.Dir(d.Path), "out")
			if err := os.MkdirAll(out, 0o755); err != nil {
				return err
			}
			_, err := d.Export(ExportOptions{Name: "alice", Format: FormatPEMBundle, Out: filepath.Join(out, "alice.pem")})
			return err
		}},
		{"issue client --batch with bundles", func(d *Dir) error {
			out := filepath.Join(filepath.Dir(d.Path), "out")
			_, err := d.IssueBatch(BatchOptions{File: "d.csv", Devices: batchDevices("b1", "b2", "b3"), BundleDir: out, P12: true, CHeader: true})
			return err
		}},
		{"renew", func(d *Dir) error { _, err := d.Renew(RenewOptions{Name: "alice"}); return err }},
		{"renew --rekey", func(d *Dir) error { _, err := d.Renew(RenewOptions{Name: "bob", Rekey: true}); return err }},
		{"renew --expiring", func(d *Dir) error { _, err := d.Renew(RenewOptions{Expiring: 400 * 24 * 3600e9}); return err }},
		{"revoke", func(d *Dir) error {
			_, _, err := d.Revoke(RevokeOptions{Name: "bob", Reason: "keyCompromise"})
			return err
		}},
		{"revoke --serial", func(d *Dir) error {
			idx, err := LoadIndex(d.Path)
			if err != nil {
				return err
			}
			_, _, err = d.Revoke(RevokeOptions{Serial: idx.find("clients/dev.crt").Serial})
			return err
		}},
		{"crl", func(d *Dir) error { _, err := d.WriteCRL(0); return err }},
		{"reindex", func(d *Dir) error { _, err := d.Reindex(); return err }},
	}
	// Revoke after a renewal prunes nothing yet; revoke a renewed client
	// too, so that its kept predecessor is removed in the same change.
	renewed := filepath.Join(t.TempDir(), "pki")
	copyTree(t, base, renewed)
	if _, err := (&Dir{Path: renewed}).Renew(RenewOptions{Name: "alice"}); err != nil {
		t.Fatal(err)
	}
	// What a renewal stopped between its renames left before the journal:
	// the new certificate in place, the index of before.
	unrecorded := filepath.Join(t.TempDir(), "pki")
	copyTree(t, renewed, unrecorded)
	if err := os.WriteFile(filepath.Join(unrecorded, IndexFile), mustRead(t, filepath.Join(base, IndexFile)), 0o644); err != nil {
		t.Fatal(err)
	}
	type start struct {
		name, dir string
		only      map[string]bool
	}
	total := 0
	for _, st := range []start{
		{"", base, nil},
		{"after a renewal: ", renewed, map[string]bool{"revoke": true, "renew": true}},
		{"after an unrecorded renewal: ", unrecorded, map[string]bool{"reindex": true}},
	} {
		for _, c := range commands {
			if st.only != nil && !st.only[c.name] || st.only == nil && c.name == "reindex" {
				continue
			}
			var steps []string
			probe := filepath.Join(t.TempDir(), "pki")
			copyTree(t, st.dir, probe)
			if err := c.run(&Dir{Path: probe, crash: func(s string) bool { steps = append(steps, s); return false }}); err != nil {
				t.Fatalf("%s%s: %v", st.name, c.name, err)
			}
			if len(steps) < 3 {
				t.Fatalf("%s%s: only %d write steps: %v", st.name, c.name, len(steps), steps)
			}
			for k := range steps {
				total++
				dir := filepath.Join(t.TempDir(), "pki")
				copyTree(t, st.dir, dir)
				checkCrash(t, st.name+c.name, steps[k], dir, func(d *Dir) error {
					n := 0
					d.crash = func(string) bool { n++; return n == k+1 }
					return c.run(d)
				}, k%2 == 1, st.dir == unrecorded)
			}
		}
	}
	t.Logf("%d crash points checked", total)
}

// checkCrash runs one command that crashes at one step and checks the
// invariants of TestCrashAtEveryWriteStep. With crashRecovery, the first
// recovery is itself stopped at its first step. With unlisted, the
// directory started with a certificate the index did not list: until a
// reindex completes, every command must refuse it (ErrUnlisted), and a
// reindex after the crash completes it.
func checkCrash(t *testing.T, cmd, step, dir string, run func(d *Dir) error, crashRecovery, unlisted bool) {
	t.Helper()
	beforeCRL, beforeNum := crlState(t, dir)
	if err := run(&Dir{Path: dir}); !errors.Is(err, fsx.ErrCrashed) {
		t.Fatalf("%s, crash at %q: err = %v, want the simulated crash", cmd, step, err)
	}
	afterCRL, afterNum := crlState(t, dir)
	for s := range beforeCRL {
		if !afterCRL[s] {
			t.Errorf("%s, crash at %q: crl.pem no longer revokes %s", cmd, step, s)
		}
	}
	if afterNum < beforeNum {
		t.Errorf("%s, crash at %q: CRL number went down from %d to %d", cmd, step, beforeNum, afterNum)
	}
	if crashRecovery {
		d := &Dir{Path: dir, crash: func(string) bool { return true }}
		if _, _, err := d.Entries(); err != nil && !errors.Is(err, fsx.ErrCrashed) && !(unlisted && errors.Is(err, ErrUnlisted)) {
			t.Fatalf("%s, crash at %q, crashed recovery: %v", cmd, step, err)
		}
	}
	d := &Dir{Path: dir}
	_, _, err := d.Entries()
	if unlisted && errors.Is(err, ErrUnlisted) {
		if _, err := d.WriteCRL(0); !errors.Is(err, ErrUnlisted) {
			t.Fatalf("%s, crash at %q: pki crl with an unlisted certificate: %v, want ErrUnlisted", cmd, step, err)
		}
		_, err = d.Reindex()
	}
	if err != nil {
		t.Fatalf("%s, crash at %q: the next command fails: %v", cmd, step, err)
	}
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatalf("%s, crash at %q: %v", cmd, step, err)
	}
	diskCRL, diskNum := crlState(t, dir)
	inIndex := indexRevoked(idx)
	for s := range diskCRL {
		if !inIndex[s] {
			t.Errorf("%s, crash at %q: crl.pem revokes %s, index.yaml does not", cmd, step, s)
		}
	}
	for s := range inIndex {
		if !diskCRL[s] {
			t.Errorf("%s, crash at %q: index.yaml revokes %s, crl.pem does not", cmd, step, s)
		}
	}
	// Also outside the directory, where sign --out writes.
	out := filepath.Join(filepath.Dir(dir), "out")
	for _, root := range []string{dir, out} {
		filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
			if err == nil && (strings.Contains(e.Name(), ".tmp") || strings.HasPrefix(e.Name(), JournalFile)) {
				t.Errorf("%s, crash at %q: %s left behind", cmd, step, p)
			}
			return nil
		})
	}
	checkBatchAllOrNone(t, cmd+", crash at "+step, dir, idx, out)
	if fp, _ := fileFingerprint(filepath.Join(out, "dev2.crt")); fp != "" && idx.byFingerprint(fp) < 0 {
		t.Errorf("%s, crash at %q: %s is a certificate the index does not list", cmd, step, filepath.Join(out, "dev2.crt"))
	}
	info, err := d.WriteCRL(0)
	if err != nil {
		t.Fatalf("%s, crash at %q: pki crl: %v", cmd, step, err)
	}
	finalCRL, _ := crlState(t, dir)
	for s := range diskCRL {
		if !finalCRL[s] {
			t.Errorf("%s, crash at %q: pki crl dropped the revocation of %s", cmd, step, s)
		}
	}
	if info.Number <= diskNum || info.Number <= beforeNum {
		t.Errorf("%s, crash at %q: pki crl wrote CRL number %d after %d", cmd, step, info.Number, max(diskNum, beforeNum))
	}
}

// TestCrashDuringFirstInit: a first init stopped at any step leaves either
// no CA or the whole directory; running init again completes it, with every
// certificate listed and nothing temporary left.
func TestCrashDuringFirstInit(t *testing.T) {
	o := InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}, Intermediate: true}
	var steps []string
	probe := &Dir{Path: filepath.Join(t.TempDir(), "pki"), crash: func(s string) bool { steps = append(steps, s); return false }}
	if _, err := probe.Init(o); err != nil {
		t.Fatal(err)
	}
	for k := range steps {
		d := &Dir{Path: filepath.Join(t.TempDir(), "pki")}
		n := 0
		d.crash = func(string) bool { n++; return n == k+1 }
		if _, err := d.Init(o); !errors.Is(err, fsx.ErrCrashed) {
			t.Fatalf("crash at %q: %v", steps[k], err)
		}
		d.crash = nil
		if fileExists(d.path(RootCertFile)) && !fileExists(d.path(JournalFile)) && !fileExists(d.path(IndexFile)) {
			t.Errorf("crash at %q: ca.crt without the journal or index that records it", steps[k])
		}
		if _, err := d.Init(o); err != nil {
			t.Fatalf("crash at %q: init again: %v", steps[k], err)
		}
		idx, err := LoadIndex(d.Path)
		if err != nil || len(idx.Certificates) != 4 {
			t.Fatalf("crash at %q: after init again: %v, %d entries", steps[k], err, len(idx.Certificates))
		}
		filepath.WalkDir(d.Path, func(p string, e fs.DirEntry, err error) error {
			if err == nil && (strings.Contains(e.Name(), ".tmp") || e.Name() == JournalFile) {
				t.Errorf("crash at %q: %s left behind", steps[k], p)
			}
			return nil
		})
	}
}

// checkBatchAllOrNone: after a batch (b1, b2, b3) was stopped and the next
// command ran, either every device is in the index with its files and its
// bundle and the manifest, or none is and no file of the batch is left
// (empty bundle directories may be).
func checkBatchAllOrNone(t *testing.T, what, dir string, idx *Index, out string) {
	t.Helper()
	var have, want int
	for _, n := range []string{"b1", "b2", "b3"} {
		files := []string{filepath.Join(dir, ClientsDir, n+".crt")}
		for _, f := range []string{n + ".key", n + ".crt", RootCertFile, n + ".p12", n + ".p12.pass", n + ".h"} {
			files = append(files, filepath.Join(out, n, f))
		}
		if idx.find("clients/"+n+".crt") != nil {
			have++
		}
		for _, f := range files {
			want++
			if fileExists(f) {
				have++
			}
		}
		want++
	}
	if fileExists(filepath.Join(out, ManifestFile)) {
		have++
	}
	if want++; have != 0 && have != want {
		t.Errorf("%s: %d of the batch's %d files and index entries are there, not none or all", what, have, want)
	}
}
