package confgen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckMosquittoFiles: an ACL or password-file line mosquitto cannot
// parse is an error at FILE:LINE behind the option that names the file
// (mosquitto refuses to start on it, and 2.1 quits on SIGHUP).
func TestCheckMosquittoFiles(t *testing.T) {
	const goodHash = "$7$101$y6lBUgZh7NRK1qm7$WUwcq6NrCg/ZR6PpKGwAYNnhc7qNiqqRVRohfXhldPlm9JbE4d7M3ZbFDS4Xa0Zmyq6lLU47KhgOTePrXkI7SA=="
	for _, tc := range []struct {
		name, acl, passwd string
		want              []string // "" : no error
	}{
		{"good", "user alice\ntopic read a/#\n", "alice:" + goodHash + "\n", nil},
		{"bad ACL line", "user alice\nbogus line\n", "alice:" + goodHash + "\n", []string{"mosquitto.conf:1: error: acl_file", "acl:2: unknown keyword \"bogus\""}},
		{"bad access", "topic READ x\n", "", []string{"acl:1: invalid access type"}},
		{"bad hash", "", "alice:" + goodHash + "\nbob:$7$nope\n", []string{"mosquitto.conf:2: error: password_file", "passwd:2: user \"bob\": unusable hash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "acl"), []byte(tc.acl), 0o600)
			os.WriteFile(filepath.Join(dir, "passwd"), []byte(tc.passwd), 0o600)
			conf := "acl_file " + filepath.Join(dir, "acl") + "\npassword_file " + filepath.Join(dir, "passwd") + "\nlistener 1883 127.0.0.1\n"
			os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600)
			c, err := Load(filepath.Join(dir, "mosquitto.conf"))
			if err != nil {
				t.Fatal(err)
			}
			_, ds := c.CheckMosquitto()
			var errs []string
			for _, d := range ds {
				if !d.Warning {
					errs = append(errs, d.String())
				}
			}
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("errors on a good config: %v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("want one error, got %q", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("%q does not say %q", errs[0], w)
				}
			}
		})
	}
}
