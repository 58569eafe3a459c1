package pki

import (
	"slices"
	"testing"
	"time"
)

// TestCertLoginUsers: only clients that can still log in by certificate
// become users of a broker that reads no CRL.
func TestCertLoginUsers(t *testing.T) {
	now := time.Now()
	client := func(cn string) Entry {
		return Entry{Name: cn, Profile: ProfileClient, CN: cn, Status: "valid", NotBefore: now.Add(-time.Hour), NotAfter: now.Add(time.Hour)}
	}
	with := func(e Entry, f func(*Entry)) Entry { f(&e); return e }
	for _, tc := range []struct {
		name    string
		entries []Entry
		want    []string
	}{
		{"none", nil, nil},
		{"valid clients, in index order", []Entry{client("bob"), client("alice")}, []string{"bob", "alice"}},
		{"revoked", []Entry{client("alice"), with(client("mallory"), func(e *Entry) { e.Status = "revoked" })}, []string{"alice"}},
		{"replaced, with its successor", []Entry{with(client("alice"), func(e *Entry) { e.ReplacedBy = "0a" }), client("alice")}, []string{"alice"}},
		{"replaced, successor revoked", []Entry{with(client("alice"), func(e *Entry) { e.ReplacedBy = "0a" }), with(client("alice"), func(e *Entry) { e.Status = "revoked" })}, nil},
		{"expired keeps its user", []Entry{with(client("old"), func(e *Entry) { e.NotAfter = now.Add(-time.Minute) })}, []string{"old"}},
		{"two certificates, one identity", []Entry{client("alice"), with(client("alice"), func(e *Entry) { e.Name = "alice-2" })}, []string{"alice"}},
		{"no CN", []Entry{with(client("x"), func(e *Entry) { e.CN = "" })}, nil},
		{"not a client", []Entry{
			with(client("broker1"), func(e *Entry) { e.Profile = ProfileServer }),
			with(client("site1"), func(e *Entry) { e.Profile = ProfileBridge }),
			with(client("dev1"), func(e *Entry) { e.Profile = ProfileBootstrap }),
		}, nil},
	} {
		if got := CertLoginUsers(tc.entries); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}
