package brokertest

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// FixtureOptions says what a Fixture holds.
type FixtureOptions struct {
	Hosts   []string // the broker certificate's names
	Clients []string // client certificates from the CA
	// Expired and Future name client certificates that ended two days ago
	// and start in two days ("" for none).
	Expired, Future string
	OtherClients    []string          // client certificates from another CA
	Passwords       map[string]string // password-file users and passwords
	ACL             string            // the ACL file's text
}

// Fixture is a test deployment: a pki directory, a second CA ("Other CA")
// whose certificates the broker must refuse, a password file and an ACL,
// in a directory the mosquitto user can enter.
type Fixture struct {
	Dir, PKI, Other string
	Passwd, ACL     string
}

// NewFixture builds a Fixture; any error fails the test.
func NewFixture(t testing.TB, o FixtureOptions) *Fixture {
	t.Helper()
	dir := testutil.ReachableDir(t)
	f := &Fixture{Dir: dir, PKI: filepath.Join(dir, "pki"), Other: filepath.Join(dir, "other"),
		Passwd: filepath.Join(dir, "passwd"), ACL: filepath.Join(dir, "acl")}
	d := &pki.Dir{Path: f.PKI}
	if _, err := d.Init(pki.InitOptions{Hosts: o.Hosts, Clients: o.Clients}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	for _, c := range []struct {
		name     string
		from, to time.Duration
	}{{o.Expired, -72 * time.Hour, -48 * time.Hour}, {o.Future, 48 * time.Hour, 96 * time.Hour}} {
		if c.name == "" {
			continue
		}
		if _, err := d.Issue(pki.IssueOptions{Profile: pki.ProfileClient, Name: c.name, NotBefore: now.Add(c.from), NotAfter: now.Add(c.to)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := (&pki.Dir{Path: f.Other}).Init(pki.InitOptions{CAName: "Other CA", Hosts: o.Hosts, Clients: o.OtherClients}); err != nil {
		t.Fatal(err)
	}
	err := confgen.EditPasswordFile(f.Passwd, true, func(pf *confgen.PasswordFile) error {
		for u, pw := range o.Passwords {
			h, err := confgen.HashPassword([]byte(pw), 0)
			if err != nil {
				return err
			}
			pf.Set(u, h)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.ACL, []byte(o.ACL), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}
