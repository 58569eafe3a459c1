package confgen

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// emqxHash is EMQX 5's pbkdf2 password hash as its documentation gives it:
// hex(PBKDF2(mac_fun, password, salt, iterations, dk_length)), the salt
// taken as the text stored beside the user.
func emqxHash(t *testing.T, password, salt string, iterations int) string {
	t.Helper()
	k, err := pbkdf2.Key(sha512.New, password, []byte(salt), iterations, 64)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(k)
}

func TestEMQXUsersVerifyAsEMQXWould(t *testing.T) {
	passwords := map[string]string{"alice": "correct horse", "bob": "s3cret", "carol": "ünïcode pw"}
	var lines []string
	for _, u := range []string{"alice", "bob", "carol"} {
		h, err := HashPassword([]byte(passwords[u]), 0)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, u+":"+h)
	}
	other, _ := HashPassword([]byte("x"), 1000)
	binarySalt := "$7$101$" + base64.StdEncoding.EncodeToString([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}) + "$" + base64.StdEncoding.EncodeToString(make([]byte, 64))
	lines = append(lines,
		"dave:"+other, // another iteration count
		"erin:$6$"+base64.StdEncoding.EncodeToString([]byte("saltsalt12ab"))+"$"+base64.StdEncoding.EncodeToString(make([]byte, 64)), // $6$
		"frank:"+binarySalt, // mosquitto_passwd-style salt
		"gina:$7$garbage",   // damaged
		"# a comment")
	pf := ParsePasswordFile([]byte(strings.Join(lines, "\n") + "\n"))
	users, iterations, problems := EMQXUsers(pf, "passwd")
	if iterations != DefaultIterations {
		t.Errorf("iterations %d, want %d", iterations, DefaultIterations)
	}
	if len(users) != 3 {
		t.Fatalf("%d users converted, want alice, bob, carol: %+v", len(users), users)
	}
	for _, u := range users {
		if want := emqxHash(t, passwords[u.UserID], u.Salt, iterations); u.PasswordHash != want {
			t.Errorf("%s: EMQX would compute %s, users.json has %s", u.UserID, want, u.PasswordHash)
		}
		if emqxHash(t, "wrong", u.Salt, iterations) == u.PasswordHash {
			t.Errorf("%s: a wrong password verifies", u.UserID)
		}
	}
	got := ""
	for _, p := range problems {
		got += p.String() + "\n"
	}
	for _, want := range []string{"passwd:4: error: user dave not converted: 1000 iterations", "passwd:5: error: user erin not converted: a $6$",
		"passwd:6: error: user frank not converted: its salt is not printable", "passwd:7: error: user gina not converted"} {
		if !strings.Contains(got, want) {
			t.Errorf("problems lack %q:\n%s", want, got)
		}
	}
	// The JSON has EMQX's field names.
	data, _ := json.Marshal(users[0])
	for _, f := range []string{`"user_id"`, `"password_hash"`, `"salt"`, `"is_superuser"`} {
		if !strings.Contains(string(data), f) {
			t.Errorf("users.json lacks %s: %s", f, data)
		}
	}
}

// TestGenerateEMQXClosed (issue 17): no MQTT listener the source lacks
// (EMQX's default tcp, ws and wss are off), the ACL carried with deny when
// nothing matches, mtls refused (EMQX cannot check pki/crl.pem), and values
// EMQX's syntax cannot carry refused.
func TestGenerateEMQXClosed(t *testing.T) {
	dir := t.TempDir()
	h, err := HashPassword([]byte("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	passwd := filepath.Join(dir, "passwd")
	os.WriteFile(passwd, []byte("alice:"+h+"\n"), 0o600)
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("user alice\ntopic readwrite x/#\n"), 0o600)
	o := EMQXOptions{PKIDir: filepath.Join(dir, "pki"), Mode: "tls", PasswordFile: passwd, ACLFile: acl, ACLPath: filepath.Join(dir, "out", "acl.conf")}
	files, _, err := GenerateEMQX(o)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(files["emqx.conf"])
	for _, want := range []string{"listeners.tcp.default.enable = false\n", "listeners.ws.default.enable = false\n", "listeners.wss.default.enable = false\n",
		`dashboard.listeners.http.bind = "127.0.0.1:18083"`, "no_match = deny\n", `{ type = file, enable = true, path = "` + filepath.Join(dir, "out", "acl.conf") + `" }`,
		`bind = "0.0.0.0:8883"`} {
		if !strings.Contains(conf, want) {
			t.Errorf("emqx.conf lacks %q:\n%s", want, conf)
		}
	}
	if !strings.HasSuffix(string(files["acl.conf"]), "{deny, all}.\n") {
		t.Errorf("acl.conf:\n%s", files["acl.conf"])
	}
	// A %u pattern is expanded for every user of the password file,
	// including one without a user block (bob).
	os.WriteFile(passwd, []byte("alice:"+h+"\nbob:"+h+"\n"), 0o600)
	os.WriteFile(acl, []byte("user alice\ntopic readwrite x/#\npattern readwrite devices/%u/#\n"), 0o600)
	if files, _, err = GenerateEMQX(o); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`{allow, {user, "alice"}, all, ["devices/alice/#"]}.`, `{allow, {user, "bob"}, all, ["devices/bob/#"]}.`} {
		if !strings.Contains(string(files["acl.conf"]), want) {
			t.Errorf("acl.conf lacks %s:\n%s", want, files["acl.conf"])
		}
	}
	for _, tc := range []struct {
		edit func(*EMQXOptions)
		want string
	}{
		{func(o *EMQXOptions) { o.Mode = "mtls" }, "mtls: EMQX 5.8 checks revocation only against a CRL it downloads"},
		{func(o *EMQXOptions) { o.PKIDir = filepath.Join(dir, "p\"ki\n") }, "control character"},
		{func(o *EMQXOptions) { o.PKIDir = filepath.Join(dir, "${HOME}") }, `holds "${"`},
		{func(o *EMQXOptions) { os.WriteFile(acl, []byte("pattern readwrite d/%c/#\n"), 0o600) }, "acl:1: pattern readwrite d/%c/#"},
	} {
		o2 := o
		tc.edit(&o2)
		if _, _, err := GenerateEMQX(o2); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v, want %q", err, tc.want)
		}
	}
}
