package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileDirectoryStates: what an adversarial run did to a pki
// directory, each refused with the file named, or handled without undoing
// a revocation, hanging, or destroying a key.
func TestHostileDirectoryStates(t *testing.T) {
	for _, tc := range []struct {
		name string
		prep func(t *testing.T, d *Dir)
		run  func(d *Dir) error
		want string // in the error; "" means it must succeed
		then func(t *testing.T, d *Dir)
	}{
		{name: "removeFromCRL", run: func(d *Dir) error {
			_, _, err := d.Revoke(RevokeOptions{Name: "bob", Reason: "removeFromCRL"})
			return err
		}, want: "un-revokes"},
		{name: "a journal that removes ca.key", prep: func(t *testing.T, d *Dir) {
			writeFile(t, d.path(JournalFile), `{"version":1,"ops":[{"path":"ca.key","remove":true}]}`)
		}, run: func(d *Dir) error { _, _, err := d.Entries(); return err }, want: "not written by mqttctl",
			then: func(t *testing.T, d *Dir) {
				if !fileExists(d.path(RootKeyFile)) {
					t.Error("ca.key deleted")
				}
			}},
		{name: "a name like a temporary file", run: func(d *Dir) error {
			_, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: ".x.tmp1"})
			return err
		}, want: "starts with '.'"},
		{name: "a FIFO as a certificate", prep: func(t *testing.T, d *Dir) {
			if err := syscall.Mkfifo(d.path("clients/x.crt"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error { _, _, err := d.Revoke(RevokeOptions{Name: "bob"}); return err }, want: "not a regular file"},
		{name: "/dev/zero as a certificate", prep: func(t *testing.T, d *Dir) {
			if err := os.Symlink("/dev/zero", d.path("clients/y.crt")); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error { _, _, err := d.Entries(); return err }, want: "not a regular file"},
		{name: "a FIFO as crl.pem", prep: func(t *testing.T, d *Dir) {
			os.Remove(d.path(CRLFile))
			if err := syscall.Mkfifo(d.path(CRLFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error { _, err := d.WriteCRL(0); return err }, want: "not a regular file"},
		{name: "a CRL number past the limit", prep: func(t *testing.T, d *Dir) {
			idx := mustRead(t, d.path(IndexFile))
			writeFile(t, d.path(IndexFile), strings.Replace(string(idx), "crl_number: 2", "crl_number: 9223372036854775807", 1))
		}, run: func(d *Dir) error { _, err := d.WriteCRL(0); return err }, want: "out of range"},
		{name: "crl.pem without the intermediate's CRL", prep: func(t *testing.T, d *Dir) {
			data := string(mustRead(t, d.path(CRLFile)))
			end := "-----END X509 CRL-----\n"
			writeFile(t, d.path(CRLFile), data[strings.Index(data, end)+len(end):]) // the root's only
		}, run: func(d *Dir) error { _, err := d.WriteCRL(0); return err }, want: "has no CRL of CN=mqttctl Intermediate CA"},
		{name: "another identity's certificate as a kept predecessor", prep: func(t *testing.T, d *Dir) {
			if err := os.Rename(d.path("clients/alice.crt"), d.path("clients/carol.prev.crt")); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error { _, err := d.Reindex(); return err }, want: "holds alice's certificate"},
		{name: "a second renew --rekey", prep: func(t *testing.T, d *Dir) {
			if _, err := d.Renew(RenewOptions{Name: "alice", Rekey: true}); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error { _, err := d.Renew(RenewOptions{Name: "alice", Rekey: true}); return err }, want: "would destroy it",
			then: func(t *testing.T, d *Dir) {
				if _, err := d.Renew(RenewOptions{Name: "alice"}); err != nil {
					t.Errorf("renew without a new key: %v", err)
				}
			}},
		{name: "export into the pki directory", run: func(d *Dir) error {
			_, err := d.Export(ExportOptions{Name: "alice", Format: FormatPEMBundle, Out: d.path("clients/x.crt")})
			return err
		}, want: "inside the pki directory"},
		{name: "keyCompromise of a renewed certificate's predecessor", prep: func(t *testing.T, d *Dir) {
			if _, err := d.Renew(RenewOptions{Name: "alice"}); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error {
			idx, err := LoadIndex(d.Path)
			if err != nil {
				return err
			}
			_, _, err = d.Revoke(RevokeOptions{Serial: idx.find("clients/alice.prev.crt").Serial, Reason: "keyCompromise"})
			return err
		}, then: func(t *testing.T, d *Dir) {
			idx, _ := LoadIndex(d.Path)
			if e := idx.find("clients/alice.crt"); e == nil || e.Status != "revoked" {
				t.Errorf("alice's current certificate, with the same compromised key, is %+v", e)
			}
		}},
		{name: "a compromised key signed again", prep: func(t *testing.T, d *Dir) {
			if _, _, err := d.Revoke(RevokeOptions{Name: "alice", Reason: "keyCompromise"}); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error {
			k, err := ReadKey(d.path("clients/alice.key"), nil)
			if err != nil {
				return err
			}
			der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "alice2"}}, k)
			if err != nil {
				return err
			}
			csr, _ := x509.ParseCertificateRequest(der)
			_, _, err = d.SignCSR(csr, SignOptions{Profile: ProfileClient, Out: d.path("clients/alice2.crt")})
			return err
		}, want: "revoked on"},
		{name: "crl.pem a link to the broker's CRL", prep: func(t *testing.T, d *Dir) {
			broker := filepath.Join(filepath.Dir(d.Path), "broker.crl")
			if err := os.Rename(d.path(CRLFile), broker); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(broker, d.path(CRLFile)); err != nil {
				t.Fatal(err)
			}
		}, run: func(d *Dir) error { _, _, err := d.Revoke(RevokeOptions{Name: "alice"}); return err },
			then: func(t *testing.T, d *Dir) {
				if fi, err := os.Lstat(d.path(CRLFile)); err != nil || fi.Mode()&os.ModeSymlink == 0 {
					t.Fatal("crl.pem is no longer a link")
				}
				if revoked, n := crlState(t, d.Path); n != 3 || len(revoked) != 2 {
					t.Errorf("the broker's CRL is number %d with %d revoked, want 3 and 2", n, len(revoked))
				}
			}},
		{name: "ca.crt lost, ca.key kept", prep: func(t *testing.T, d *Dir) { os.Remove(d.path(RootCertFile)) },
			run: func(d *Dir) error { _, err := d.WriteCRL(0); return err }, want: "restore ca.crt from a backup",
			then: func(t *testing.T, d *Dir) {
				if _, err := d.Init(InitOptions{}); err == nil || errors.Is(err, ErrNoCA) {
					t.Errorf("init over a CA key: %v", err)
				}
			}},
		{name: "a stray copy does not stop the CRL", prep: func(t *testing.T, d *Dir) {
			writeFile(t, d.path("clients/copy.crt"), string(mustRead(t, d.path("clients/alice.crt"))))
		}, run: func(d *Dir) error { _, err := d.WriteCRL(0); return err }, want: "wrote",
			then: func(t *testing.T, d *Dir) {
				if _, n := crlState(t, d.Path); n != 3 {
					t.Errorf("CRL number %d, want 3", n)
				}
			}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "pki")
			mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice", "bob", "mallory"}, Intermediate: true})
			d := &Dir{Path: dir}
			if _, _, err := d.Revoke(RevokeOptions{Name: "mallory", Reason: "keyCompromise"}); err != nil {
				t.Fatal(err)
			}
			if tc.prep != nil {
				tc.prep(t, d)
			}
			done := make(chan error, 1)
			go func() { done <- tc.run(d) }()
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the command hangs")
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if st, _ := os.Lstat(d.path(CRLFile)); st.Mode().IsRegular() {
				if revoked, _ := crlState(t, dir); len(revoked) == 0 && !errors.Is(err, ErrCRLDamaged) {
					t.Error("mallory's revocation is gone from crl.pem")
				}
			}
			if tc.then != nil {
				tc.then(t, d)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestSignRelativeOutOutside: a certificate signed to a relative path
// outside the pki directory is recorded where it is, so that renew and
// check find it from any working directory.
func TestSignRelativeOutOutside(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	d := &Dir{Path: dir}
	_, csrPath, err := NewCSR(CSROptions{Name: "dev", OutDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	csr, err := ReadCSR(csrPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if _, _, err := d.SignCSR(csr, SignOptions{Profile: ProfileClient, Out: "dev.crt"}); err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if _, err := d.Renew(RenewOptions{Name: "dev"}); err != nil {
		t.Fatalf("renew from another directory: %v", err)
	}
}
