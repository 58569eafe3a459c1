package pki

import (
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// renewDir makes a directory with a server, clients alice and bob, and a
// client "dev" signed from a CSR (its key outside the directory).
func renewDir(t *testing.T) *Dir {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice", "bob"}})
	d := &Dir{Path: dir}
	signDeviceCSR(t, d, "dev")
	return d
}

// signDeviceCSR signs, as clients/NAME.crt, the CSR of a key made
// elsewhere (as on a device).
func signDeviceCSR(t *testing.T, d *Dir, name string) {
	t.Helper()
	_, csrPath, err := NewCSR(CSROptions{Name: name, OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ReadCSR(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.SignCSR(csr, SignOptions{Profile: ProfileClient, Out: filepath.Join(d.Path, "clients", name+".crt")}); err != nil {
		t.Fatal(err)
	}
}

func TestRenew(t *testing.T) {
	for _, tc := range []struct {
		name    string
		o       RenewOptions
		file    string // certificate renewed
		newKey  bool
		prevKey bool
	}{
		{name: "client keeps its key", o: RenewOptions{Name: "alice"}, file: "clients/alice.crt"},
		{name: "client with a new key", o: RenewOptions{Name: "alice", Rekey: true}, file: "clients/alice.crt", newKey: true, prevKey: true},
		{name: "server by its path", o: RenewOptions{Name: "server.crt", Days: 90}, file: "server.crt"},
		{name: "signed CSR keeps the device's key", o: RenewOptions{Name: "dev"}, file: "clients/dev.crt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := renewDir(t)
			old := readCert(t, d.path(tc.file))[0]
			if _, err := d.Renew(tc.o); err != nil {
				t.Fatal(err)
			}
			cur := readCert(t, d.path(tc.file))
			if cur[0].SerialNumber.Cmp(old.SerialNumber) == 0 {
				t.Fatal("the serial did not change")
			}
			if cur[0].Subject.String() != old.Subject.String() || strings.Join(Names(cur[0]), ",") != strings.Join(Names(old), ",") {
				t.Errorf("identity changed: %s %v -> %s %v", old.Subject, Names(old), cur[0].Subject, Names(cur[0]))
			}
			if same := publicKeysEqual(cur[0].PublicKey, old.PublicKey); same == tc.newKey {
				t.Errorf("same key = %v, want %v", same, !tc.newKey)
			}
			if _, err := cur[0].Verify(x509.VerifyOptions{Roots: pool(readCert(t, d.path(RootCertFile))[0]), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				t.Errorf("renewed certificate does not verify: %v", err)
			}
			if days := int(cur[0].NotAfter.Sub(cur[0].NotBefore).Hours()/24 + 0.5); tc.o.Days != 0 && days != tc.o.Days {
				t.Errorf("validity %d days, want %d", days, tc.o.Days)
			}
			prev := readCert(t, d.path(prevPath(tc.file)))[0]
			if !prev.Equal(old) {
				t.Error("the predecessor file does not hold the old certificate")
			}
			if fileExists(d.path(prevPath(strings.TrimSuffix(tc.file, ".crt")+".key"))) != tc.prevKey {
				t.Errorf("predecessor key kept = %v, want %v", !tc.prevKey, tc.prevKey)
			}
			if !strings.HasPrefix(tc.file, "clients/dev") {
				k, err := ReadKey(d.path(strings.TrimSuffix(tc.file, ".crt")+".key"), nil)
				if err != nil || !keyMatches(k, cur[0].PublicKey) {
					t.Errorf("the key on disk does not match the renewed certificate (%v)", err)
				}
			}
			idx, err := LoadIndex(d.Path)
			if err != nil {
				t.Fatal(err)
			}
			var oldE, newE *Entry
			for i, e := range idx.Certificates {
				switch e.Serial {
				case FormatSerial(old):
					oldE = &idx.Certificates[i]
				case FormatSerial(cur[0]):
					newE = &idx.Certificates[i]
				}
			}
			if oldE == nil || newE == nil || oldE.ReplacedBy != newE.Serial || oldE.Cert != prevPath(tc.file) || newE.Cert != tc.file {
				t.Fatalf("index entries: old %+v new %+v", oldE, newE)
			}
			// check: no duplicate subject, nothing to renew, no error.
			f, err := d.Check(CheckOptions{})
			if err != nil || HasErrors(f) || NeedsRenewal(f) {
				t.Errorf("check after renew (%v):\n%s", err, joinFindings(f))
			}
		})
	}
}

func TestRenewRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		prep  func(t *testing.T, d *Dir)
		o     RenewOptions
		want  string
		isErr error
	}{
		{name: "unknown name", o: RenewOptions{Name: "nobody"}, want: "no certificate", isErr: ErrNotFound},
		{name: "revoked", prep: func(t *testing.T, d *Dir) {
			if _, _, err := d.Revoke(RevokeOptions{Name: "bob"}); err != nil {
				t.Fatal(err)
			}
		}, o: RenewOptions{Name: "bob"}, want: "was revoked on", isErr: ErrRevoked},
		{name: "the CA", o: RenewOptions{Name: "ca"}, want: "CA is not renewed"},
		{name: "a new key for a signed CSR", o: RenewOptions{Name: "dev", Rekey: true}, want: "new CSR", isErr: ErrRekeyCSR},
		{name: "key missing", prep: func(t *testing.T, d *Dir) { os.Remove(d.path("clients/alice.key")) }, o: RenewOptions{Name: "alice"}, want: "key", isErr: ErrHalfPair},
		{name: "certificate replaced by hand", prep: func(t *testing.T, d *Dir) {
			if err := os.WriteFile(d.path("clients/alice.crt"), mustRead(t, d.path("clients/bob.crt")), 0o644); err != nil {
				t.Fatal(err)
			}
		}, o: RenewOptions{Name: "alice"}, want: "a copy of bob's certificate", isErr: ErrUnlisted},
		{name: "key of another certificate", prep: func(t *testing.T, d *Dir) {
			if err := os.WriteFile(d.path("clients/alice.key"), mustRead(t, d.path("clients/bob.key")), 0o600); err != nil {
				t.Fatal(err)
			}
		}, o: RenewOptions{Name: "alice"}, want: "does not match"},
		{name: "too long", o: RenewOptions{Name: "alice", Days: 5000}, want: "days"},
		{name: "neither name nor window", o: RenewOptions{}, want: "give the certificate's name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := renewDir(t)
			if tc.prep != nil {
				tc.prep(t, d)
			}
			before := treeHashes(t, d.Path)
			_, err := d.Renew(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) || tc.isErr != nil && !errors.Is(err, tc.isErr) {
				t.Fatalf("err = %v, want %q (%v)", err, tc.want, tc.isErr)
			}
			after := treeHashes(t, d.Path)
			for k, v := range after {
				if before[k] != v {
					t.Errorf("%s changed by a refused renew", k)
				}
			}
			if len(after) != len(before) {
				t.Errorf("%d files before, %d after", len(before), len(after))
			}
		})
	}
}

// TestRenewExpiringAndPrune: --expiring renews what ends within the
// window (not the replaced predecessors), and the predecessors go once they
// are revoked or expired.
func TestRenewExpiringAndPrune(t *testing.T) {
	d := renewDir(t)
	now := time.Now()
	at := func(days int) { d.Now = func() time.Time { return now.Add(time.Duration(days) * 24 * time.Hour) } }
	rep, err := d.Renew(RenewOptions{Expiring: 30 * 24 * time.Hour})
	if err != nil || countVerb(rep, "renewed") != 0 || countVerb(rep, "wrote") != 1 {
		t.Fatalf("nothing ends within 30 days, yet (or no CRL written): %v %+v", err, rep)
	}
	at(340) // the 365-day leaves end within 30 days
	if f, _ := d.Check(CheckOptions{}); !NeedsRenewal(f) {
		t.Errorf("check does not report the leaves ending in 25 days:\n%s", joinFindings(f))
	}
	if rep, err = d.Renew(RenewOptions{Expiring: 30 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if renewed := countVerb(rep, "renewed"); renewed != 4 { // server, alice, bob, dev
		t.Fatalf("renewed %d certificates, want 4:\n%+v", renewed, rep.Actions)
	}
	// The CRL written at init (30 days) expired long ago: check reports it
	// as an error (brokers refuse every client) until it is written again.
	if _, err := d.WriteCRL(0); err != nil {
		t.Fatal(err)
	}
	if f, _ := d.Check(CheckOptions{}); NeedsRenewal(f) || HasErrors(f) {
		t.Errorf("check after renewing everything:\n%s", joinFindings(f))
	}
	if rep, err = d.Renew(RenewOptions{Expiring: 30 * 24 * time.Hour}); err != nil || countVerb(rep, "renewed") != 0 {
		t.Errorf("a second run renewed again (predecessors are not due): %v %+v", err, rep.Actions)
	}
	// Revoking alice by name revokes the current certificate and its
	// still-valid predecessor, whose file goes.
	revoked, info, err := d.Revoke(RevokeOptions{Name: "alice", Reason: "keyCompromise"})
	if err != nil || len(revoked) != 2 {
		t.Fatalf("revoke alice: %v, %d revoked", err, len(revoked))
	}
	if fileExists(d.path("clients/alice.prev.crt")) || len(info.Removed) != 1 {
		t.Errorf("the revoked predecessor was kept (removed %v)", info.Removed)
	}
	// After the old certificates expire, the next CRL removes the rest.
	at(400)
	info, err = d.WriteCRL(0)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"server.prev.crt", "clients/bob.prev.crt", "clients/dev.prev.crt"} {
		if fileExists(d.path(f)) {
			t.Errorf("%s kept after it expired (removed %v)", f, info.Removed)
		}
	}
	if _, err := LoadIndex(d.Path); err != nil {
		t.Errorf("index after pruning: %v", err)
	}
}

func countVerb(rep *Report, verb string) int {
	n := 0
	for _, a := range rep.Actions {
		if a.Verb == verb {
			n++
		}
	}
	return n
}

// TestRenewExpiringGoesOnPastAFailure: the cron maintenance renews every
// certificate it can and rewrites the CRL even when one cannot be renewed
// (its key is missing), and says which and why.
func TestRenewExpiringGoesOnPastAFailure(t *testing.T) {
	d := renewDir(t)
	now := time.Now()
	d.Now = func() time.Time { return now.Add(340 * 24 * time.Hour) }
	os.Remove(d.path("clients/alice.key"))
	_, before := crlState(t, d.Path)
	rep, err := d.Renew(RenewOptions{Expiring: 30 * 24 * time.Hour})
	if !errors.Is(err, ErrNotAllRenewed) || !strings.Contains(err.Error(), "alice.key") || !strings.Contains(err.Error(), "renewed 3 of 4") {
		t.Fatalf("err = %v, want ErrNotAllRenewed naming alice.key, 3 of 4 renewed", err)
	}
	if rep == nil || countVerb(rep, "renewed") != 3 || countVerb(rep, "wrote") != 1 {
		t.Fatalf("report %+v: want 3 renewed and the CRL written", rep)
	}
	if _, after := crlState(t, d.Path); after <= before {
		t.Errorf("CRL number %d after %d: the CRL was not rewritten", after, before)
	}
	if _, err := LoadIndex(d.Path); err != nil {
		t.Errorf("index after a partial renewal: %v", err)
	}
}

// TestRenewKeepsKeyModeAndGroup: a renewed key keeps the mode (and group)
// the broker was given.
func TestRenewKeepsKeyModeAndGroup(t *testing.T) {
	d := renewDir(t)
	if err := os.Chmod(d.path(ServerKeyFile), 0o640); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Renew(RenewOptions{Name: "server", Rekey: true}); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{ServerKeyFile, prevPath(ServerKeyFile)} {
		st, err := os.Stat(d.path(f))
		if err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("%s: mode %v (%v), want 0640", f, st.Mode().Perm(), err)
		}
	}
}

func TestPrevNamesReserved(t *testing.T) {
	d := renewDir(t)
	if _, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "alice.prev"}); err == nil || !strings.Contains(err.Error(), "renew") {
		t.Errorf("issuing alice.prev: %v", err)
	}
}

func pool(c *x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(c)
	return p
}
