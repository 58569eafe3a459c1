package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBootstrapEnrolsOnce: finding 2 of the adversarial pass. A bootstrap
// certificate enrols its name once: not again after the client
// certificate it got is revoked (keyCompromise), nor with an index rebuilt
// from the files; a new bootstrap certificate (pki issue bootstrap
// --force) does. pki renew --expiring keeps bootstrap certificates as they
// are, and pki renew of one refuses.
func TestBootstrapEnrolsOnce(t *testing.T) {
	d, dir := tokenDir(t)
	// Each step a minute later (as a factory and a device would be).
	now := time.Now()
	d.Now = func() time.Time { now = now.Add(time.Minute); return now }
	if _, err := d.Issue(IssueOptions{Profile: ProfileBootstrap, Name: "dev-1", Days: 20}); err != nil {
		t.Fatal(err)
	}
	boot := readCert(t, filepath.Join(dir, "bootstrap", "dev-1.crt"))[0]
	e, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), Peer: []*x509.Certificate{boot}})
	if err != nil {
		t.Fatal(err)
	}
	idx, _ := LoadIndex(dir)
	if got := idx.find("bootstrap/dev-1.crt").Enrolled; got != FormatSerial(e.Cert) {
		t.Fatalf("the bootstrap entry records enrolled=%q, want %s", got, FormatSerial(e.Cert))
	}
	if _, _, err := d.Revoke(RevokeOptions{Name: "clients/dev-1.crt", Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	again := func(what string) {
		t.Helper()
		_, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), Peer: []*x509.Certificate{boot}})
		if !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), "enrols its name once") {
			t.Fatalf("%s: the used bootstrap certificate enrolled again: %v", what, err)
		}
	}
	again("after the client certificate was revoked")
	os.Remove(filepath.Join(dir, IndexFile))
	again("with an index rebuilt from the files")

	// renew --expiring within the bootstrap's window keeps it.
	before := idx.find("bootstrap/dev-1.crt").Serial
	rep, err := d.Renew(RenewOptions{Expiring: 30 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	idx, _ = LoadIndex(dir)
	if b := idx.find("bootstrap/dev-1.crt"); b.Serial != before || b.ReplacedBy != "" {
		t.Fatalf("renew --expiring renewed the bootstrap certificate: %+v", b)
	}
	kept := false
	for _, a := range rep.Actions {
		kept = kept || a.Verb == "kept" && strings.Contains(a.Detail, "a bootstrap certificate is not renewed")
	}
	if !kept {
		t.Errorf("the report does not say the bootstrap certificate was kept: %+v", rep.Actions)
	}
	if _, err := d.Renew(RenewOptions{Name: "bootstrap/dev-1.crt"}); err == nil || !strings.Contains(err.Error(), "pki issue bootstrap dev-1") {
		t.Fatalf("pki renew of a bootstrap certificate: %v", err)
	}

	// A new bootstrap certificate enrols.
	if _, err := d.Issue(IssueOptions{Profile: ProfileBootstrap, Name: "dev-1", Days: 20, Force: true}); err != nil {
		t.Fatal(err)
	}
	boot2 := readCert(t, filepath.Join(dir, "bootstrap", "dev-1.crt"))[0]
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "dev-1", nil), Peer: []*x509.Certificate{boot2}}); err != nil {
		t.Fatalf("a new bootstrap certificate: %v", err)
	}
}

// TestNameOfAnEnrolledDevice: finding 3 of the adversarial pass. After a
// bootstrap enrolment the name has two certificates (bootstrap/NAME.crt,
// clients/NAME.crt): pki renew NAME (what pki check suggests) and pki
// export NAME take the client one; pki revoke NAME revokes both.
func TestNameOfAnEnrolledDevice(t *testing.T) {
	d, dir := tokenDir(t)
	if _, err := d.Issue(IssueOptions{Profile: ProfileBootstrap, Name: "sensor-18", Days: 20}); err != nil {
		t.Fatal(err)
	}
	boot := readCert(t, filepath.Join(dir, "bootstrap", "sensor-18.crt"))[0]
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "sensor-18", nil), Peer: []*x509.Certificate{boot}}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Renew(RenewOptions{Name: "sensor-18"}); err != nil {
		t.Fatalf("pki renew sensor-18: %v", err)
	}
	idx, _ := LoadIndex(dir)
	if e := idx.find("clients/sensor-18.prev.crt"); e == nil || e.ReplacedBy == "" {
		t.Fatalf("the client certificate was not renewed: %+v", idx.Certificates)
	}
	if _, err := d.Export(ExportOptions{Name: "sensor-18", Format: FormatPEMBundle, Out: filepath.Join(t.TempDir(), "s.pem")}); err == nil || errors.Is(err, ErrAmbiguous) {
		// The client's key is on the device: export refuses, but not as
		// ambiguous.
		t.Fatalf("pki export sensor-18: %v", err)
	}
	if _, _, err := d.Revoke(RevokeOptions{Name: "sensor-18", Reason: "keyCompromise"}); err != nil {
		t.Fatalf("pki revoke sensor-18: %v", err)
	}
	idx, _ = LoadIndex(dir)
	for _, e := range idx.Certificates {
		if e.Name == "sensor-18" && e.Status != "revoked" {
			t.Errorf("%s (serial %s) is still valid after pki revoke sensor-18", e.Cert, e.Serial)
		}
	}
	if _, err := d.Enroll(EnrollRequest{CSR: testCSR(t, "sensor-18", nil), Peer: []*x509.Certificate{boot}}); !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("the revoked bootstrap certificate: %v", err)
	}
}

// TestBootstrapMarkOnlyOnBootstrap: finding 7. No path issues the
// bootstrap OU on another profile (the issuer refuses it), and a client
// certificate cannot be made with it from a CSR.
func TestBootstrapMarkOnlyOnBootstrap(t *testing.T) {
	d, dir := tokenDir(t)
	s, err := d.begin()
	if err != nil {
		t.Fatal(err)
	}
	iss, err := s.issuer()
	s.end()
	if err != nil {
		t.Fatal(err)
	}
	csr := testCSR(t, "dev-2", nil)
	for _, p := range []Profile{ProfileClient, ProfileServer, ProfileBridge} {
		_, err := iss.Sign(Template{Profile: p, Subject: pkix.Name{CommonName: "dev-2", OrganizationalUnit: []string{"mqtt BOOTSTRAP"}}, PublicKey: csr.PublicKey, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)})
		if !errors.Is(err, ErrBootstrapMark) {
			t.Errorf("%s with the bootstrap OU: %v", p, err)
		}
	}
	if _, _, err := d.SignCSR(testCSRSubject(t, pkix.Name{CommonName: "dev-2", OrganizationalUnit: []string{BootstrapOU}}), SignOptions{Profile: ProfileClient, Out: filepath.Join(dir, "clients", "dev-2.crt")}); !errors.Is(err, ErrBootstrapMark) {
		t.Fatalf("SignCSR: %v", err)
	}
}

func testCSRSubject(t *testing.T, subj pkix.Name) *x509.CertificateRequest {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificateRequest(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
