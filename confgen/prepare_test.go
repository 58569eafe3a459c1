package confgen

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestPrepareBroker: a config with errors is refused before anything
// changes; as root, a valid one gets its persistence directory (0770) and
// the broker's group on the files it names.
func TestPrepareBroker(t *testing.T) {
	for _, tc := range []struct {
		name    string
		conf    string // %s is the test's directory
		wantErr string
	}{
		{"valid, persistence", "listener 1883\nallow_anonymous true\npersistence true\npersistence_location %s/data/\npassword_file %s/passwd\n", ""},
		{"valid, no persistence", "listener 1883\nallow_anonymous true\n", ""},
		{"certfile without keyfile", "listener 8883\ncertfile %s/server.crt\n", "the config has errors"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "passwd"), nil, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := Parse([]byte(strings.ReplaceAll(tc.conf, "%s", dir)), "mosquitto.conf")
			if err != nil {
				t.Fatal(err)
			}
			err = c.PrepareBroker("mosquitto", dir)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
					t.Error("a refused config made its persistence directory")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(filepath.Join(dir, "data"))
			switch {
			case os.Geteuid() != 0 || !strings.Contains(tc.conf, "persistence_location"):
				if err == nil {
					t.Error("made a persistence directory it was not asked for (or not as root)")
				}
			case err != nil:
				t.Fatal(err)
			case st.Mode().Perm() != 0o770:
				t.Errorf("persistence directory mode %v, want 0770", st.Mode().Perm())
			default:
				g, err := user.LookupGroup("mosquitto")
				if err != nil {
					t.Fatal(err)
				}
				pw, _ := os.Stat(filepath.Join(dir, "passwd"))
				if gid := fmt.Sprint(pw.Sys().(*syscall.Stat_t).Gid); gid != g.Gid || pw.Mode().Perm() != 0o640 {
					t.Errorf("passwd: group %s mode %v, want group mosquitto (%s) and 0640", gid, pw.Mode().Perm(), g.Gid)
				}
			}
		})
	}
}
