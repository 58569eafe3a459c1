package confgen

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestRabbitUsers: certificate login takes the pki's users and warns that
// revocation is the absence of a user; password login takes the password
// file's; a source that does not fit the mode is refused, without naming
// a flag.
func TestRabbitUsers(t *testing.T) {
	dir := t.TempDir()
	h, err := HashPassword([]byte("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	if err := os.WriteFile(passwd, []byte("carol:"+h+"\ndave:"+h+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	pkiErr := errors.New("pki: index.yaml: broken")
	for _, tc := range []struct {
		name, mode, passwd string
		certs              []string
		certsErr           error
		want               []string
		warn               string // start of the one warning; "" for none
		err                error  // errors.Is; or *OptionError
		certsCalled        bool
	}{
		{name: "mtls: the pki's users", mode: "mtls", certs: []string{"alice", "bob"}, want: []string{"alice", "bob"}, warn: "RabbitMQ does not read pki/crl.pem", certsCalled: true},
		{name: "mtls: no client yet", mode: "mtls", warn: "RabbitMQ does not read pki/crl.pem", certsCalled: true},
		{name: "mtls: the pki cannot be read", mode: "mtls", certsErr: pkiErr, err: pkiErr, certsCalled: true},
		{name: "mtls with a password file", mode: "mtls", passwd: passwd, certs: []string{"alice"}, err: ErrPasswordFileWithCertLogin},
		{name: "tls: the password file's users", mode: "tls", passwd: passwd, certs: []string{"alice"}, want: []string{"carol", "dave"}},
		{name: "tls without a password file", mode: "tls", err: ErrNeedsPasswordFile},
		{name: "tls: the password file is missing", mode: "tls", passwd: filepath.Join(dir, "nope"), err: os.ErrNotExist},
		{name: "another mode", mode: "plain", err: &OptionError{}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			called := false
			users, warnings, err := RabbitUsers(tc.mode, tc.passwd, func() ([]string, error) { called = true; return tc.certs, tc.certsErr })
			if called != tc.certsCalled {
				t.Errorf("pki read: %v, want %v", called, tc.certsCalled)
			}
			if tc.err != nil {
				var oe *OptionError
				if _, isOpt := tc.err.(*OptionError); isOpt && (!errors.As(err, &oe) || oe.Field != "Mode") || !isOpt && !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				if regexp.MustCompile(`(^|\s)--[a-z]`).MatchString(err.Error()) {
					t.Errorf("%q names a flag: cmd/mqttctl's hints do that", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(users, tc.want) {
				t.Errorf("users %q, want %q", users, tc.want)
			}
			if tc.warn == "" && len(warnings) != 0 || tc.warn != "" && (len(warnings) != 1 || !strings.HasPrefix(warnings[0], tc.warn)) {
				t.Errorf("warnings %q, want one starting %q", warnings, tc.warn)
			}
		})
	}
}
