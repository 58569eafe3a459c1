package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClaimProvisions: a claim certificate provisions a device with the
// device's token, or alone for a name under its prefix; every issue is
// recorded in the index with how it was authorised; a used token, a name
// outside the prefix, a name that has a certificate, a non-claim
// certificate and a revoked claim are refused; the devices it provisioned
// stay valid after the claim is revoked.
func TestClaimProvisions(t *testing.T) {
	d, dir := tokenDir(t)
	if _, err := d.Issue(IssueOptions{Profile: ProfileClaim, Name: "factory-1", ClaimPrefix: "line1-", Days: 30}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Issue(IssueOptions{Profile: ProfileClaim, Name: "factory-2", Days: 30}); err != nil {
		t.Fatal(err)
	}
	claim := readCert(t, filepath.Join(dir, ClaimDir, "factory-1.crt"))[0]
	claim2 := readCert(t, filepath.Join(dir, ClaimDir, "factory-2.crt"))[0]
	if !IsClaim(claim) || ClaimPrefix(claim) != "line1-" || ClaimPrefix(claim2) != "" || IsBootstrap(claim) {
		t.Fatalf("claim mark %v, prefix %q / %q", IsClaim(claim), ClaimPrefix(claim), ClaimPrefix(claim2))
	}
	if claim.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
		t.Fatal("a claim certificate has digitalSignature: mosquitto would accept it")
	}
	toks, err := d.CreateTokens(TokenOptions{Names: []string{"dev-7"}})
	if err != nil {
		t.Fatal(err)
	}
	peer := []*x509.Certificate{claim}
	tokReq := func(name, secret string) EnrollRequest {
		return EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, name, nil), TokenName: name, Token: secret}
	}
	got, err := d.Enroll(tokReq("dev-7", toks[0].Secret))
	if err != nil || got.How != AuthClaimToken || got.AuthSerial != FormatSerial(claim) {
		t.Fatalf("by token: %+v %v", got, err)
	}
	if _, err := d.Enroll(tokReq("dev-7", toks[0].Secret)); !errors.Is(err, ErrEnrollAuth) {
		t.Fatalf("a token used twice: %v", err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	got, err = d.Enroll(EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, "line1-0042", key)})
	if err != nil || got.How != AuthClaimPrefix || got.Name != "line1-0042" || got.Repeat {
		t.Fatalf("by prefix: %+v %v", got, err)
	}
	// The answer was lost: the same key gets the same certificate.
	again, err := d.Enroll(EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, "line1-0042", key)})
	if err != nil || !again.Repeat || FormatSerial(again.Cert) != FormatSerial(got.Cert) {
		t.Fatalf("the same request again: %+v %v", again, err)
	}
	idx, _ := LoadIndex(dir)
	for _, n := range []string{"dev-7", "line1-0042"} {
		if e := idx.find("clients/" + n + ".crt"); e == nil || e.Profile != ProfileClient || e.Status != "valid" {
			t.Fatalf("%s is not recorded as a client certificate: %+v", n, e)
		}
	}
	if e := idx.find("claim/factory-1.crt"); e == nil || e.Profile != ProfileClaim {
		t.Fatalf("the claim is not in the index: %+v", e)
	}
	for _, c := range []struct {
		what string
		r    EnrollRequest
		kind error
		says string
	}{
		{"a name outside the prefix", EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, "line2-1", nil)}, ErrEnrollPolicy, "does not start with"},
		{"the prefix alone", EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, "line1-", nil)}, ErrEnrollPolicy, "does not start with"},
		{"a name that has a certificate", EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, "line1-0042", nil)}, ErrEnrollPolicy, "already has a certificate"},
		{"a claim without a prefix", EnrollRequest{Claim: true, Peer: []*x509.Certificate{claim2}, CSR: testCSR(t, "line1-7", nil)}, ErrEnrollAuth, "only with a one-time token"},
		{"a client certificate as a claim", EnrollRequest{Claim: true, Peer: []*x509.Certificate{got.Cert}, CSR: testCSR(t, "line1-8", nil)}, ErrEnrollAuth, "not a claim certificate"},
		{"a claim that re-enrols", EnrollRequest{Reenroll: true, Peer: peer, CSR: testCSR(t, "factory-1", nil)}, ErrEnrollAuth, "claim"},
		{"a claim at simpleenroll", EnrollRequest{Peer: peer, CSR: testCSR(t, "factory-1", nil)}, ErrEnrollAuth, "not a bootstrap one"},
	} {
		if _, err := d.Enroll(c.r); !errors.Is(err, c.kind) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v (want %v saying %q)", c.what, err, c.kind, c.says)
		}
	}
	if _, _, err := d.Revoke(RevokeOptions{Name: "factory-1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Enroll(EnrollRequest{Claim: true, Peer: peer, CSR: testCSR(t, "line1-0043", nil)}); !errors.Is(err, ErrEnrollAuth) || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("a revoked claim: %v", err)
	}
	idx, _ = LoadIndex(dir)
	if e := idx.find("clients/line1-0042.crt"); e.Status != "valid" {
		t.Fatalf("revoking the claim revoked a device it provisioned: %+v", e)
	}
	// A rebuilt index knows the claim by its mark, and its prefix by the
	// certificate.
	os.Remove(filepath.Join(dir, IndexFile))
	idx, _ = LoadIndex(dir)
	if e := idx.find("claim/factory-2.crt"); e == nil || e.Profile != ProfileClaim {
		t.Fatalf("a rebuilt index: %+v", e)
	}
}

// TestClaimIssueRefuses: a prefix only on a claim, and one a name can
// start with; the claim OU on no other profile; a claim not signed from a
// request.
func TestClaimIssueRefuses(t *testing.T) {
	d, _ := tokenDir(t)
	for _, o := range []IssueOptions{
		{Profile: ProfileClient, Name: "c1", ClaimPrefix: "ab"},
		{Profile: ProfileClaim, Name: "c2", ClaimPrefix: "a"},
		{Profile: ProfileClaim, Name: "c3", ClaimPrefix: "-x"},
	} {
		if _, err := d.Issue(o); err == nil {
			t.Errorf("%+v was issued", o)
		}
	}
	if _, _, err := d.SignCSR(testCSR(t, "c5", nil), SignOptions{Profile: ProfileClaim, Out: filepath.Join(t.TempDir(), "c5.crt")}); err == nil {
		t.Error("a claim was signed from a request")
	}
}
