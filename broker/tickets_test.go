package broker

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

func TestTicketKeys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db.tickets")
	tk, err := loadTicketKeys(path)
	if err != nil || len(tk.keys) != 0 {
		t.Fatalf("a missing file: %v, %d keys", err, len(tk.keys))
	}
	now := time.Unix(1_800_000_000, 0)
	for _, step := range []struct {
		at      time.Duration
		changed bool
		keys    int
	}{
		{0, true, 1},                    // first key
		{time.Hour, false, 1},           // not due
		{25 * time.Hour, true, 2},       // rotated
		{9 * 24 * time.Hour, true, 2},   // a new one; the first is past 8 days
		{9*24*time.Hour + 1, false, 2},  // not due
		{10 * 24 * time.Hour, true, 2},  // rotated again, the 25 h one dropped
		{30 * 24 * time.Hour, true, 1},  // a long stop: only a fresh key
		{30*24*time.Hour + 5, false, 1}, // stable
	} {
		changed, err := tk.rotate(now.Add(step.at))
		if err != nil || changed != step.changed || len(tk.keys) != step.keys {
			t.Fatalf("at +%v: changed=%v keys=%d (%v), want %v %d", step.at, changed, len(tk.keys), err, step.changed, step.keys)
		}
		again, err := loadTicketKeys(path)
		if err != nil || len(again.keys) != step.keys || again.keys[0].key != tk.keys[0].key {
			t.Fatalf("at +%v: the file does not hold the keys: %v", step.at, err)
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %04o", st.Mode().Perm())
	}
	// A key file serve did not write is ignored (with the reason) and
	// replaced by new keys: the data directory may be writable by another
	// account, and keys it chose would let it forge tickets.
	chosen := "1800000000 " + strings.Repeat("ab", 32) + "\n"
	for _, tc := range []struct {
		name    string
		plant   func(p string) error
		want    string
		replace bool // rotate replaces it with a file of serve's own
	}{
		{"damaged", func(p string) error { return os.WriteFile(p, []byte("# keys\n1800000000 abcd\n"), 0o600) }, ":2: not a ticket key line", true},
		{"readable by others", func(p string) error { return writeMode(p, chosen, 0o644) }, "mode 0644", true},
		{"readable by the group", func(p string) error { return writeMode(p, chosen, 0o640) }, "mode 0640", true},
		{"owned by another account", func(p string) error {
			if err := writeMode(p, chosen, 0o600); err != nil {
				return err
			}
			if os.Geteuid() == 0 {
				return os.Chown(p, 65534, 65534)
			}
			t.Cleanup(SetEUIDForTest(os.Geteuid() + 1))
			return nil
		}, "owned by uid", true},
		{"a symbolic link", func(p string) error {
			own := p + ".own"
			if err := writeMode(own, chosen, 0o600); err != nil {
				return err
			}
			return os.Symlink(own, p)
		}, "symbolic link", true},
		{"a FIFO", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "not a regular file", true},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o700) }, "not a regular file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "t")
			if err := tc.plant(p); err != nil {
				t.Fatal(err)
			}
			tk, ignored := loadTicketKeys(p)
			if ignored == nil || !strings.Contains(ignored.Error(), tc.want) || len(tk.keys) != 0 {
				t.Fatalf("%v, %d keys; want it ignored with %q", ignored, len(tk.keys), tc.want)
			}
			changed, err := tk.rotate(now)
			if !tc.replace {
				if err == nil {
					t.Fatalf("rotate wrote over a directory")
				}
				return
			}
			if err != nil || !changed || len(tk.keys) != 1 {
				t.Fatalf("rotate: %v, %v, %d keys", changed, err, len(tk.keys))
			}
			st, err := os.Lstat(p)
			if err != nil || !st.Mode().IsRegular() || st.Mode().Perm() != 0o600 {
				t.Fatalf("the new key file: %v %v", st.Mode(), err)
			}
			if uid, _, _ := fsx.Owner(st); uid != os.Geteuid() {
				t.Fatalf("the new key file is owned by uid %d", uid)
			}
			if data, _ := os.ReadFile(p); strings.Contains(string(data), strings.Repeat("ab", 32)) {
				t.Fatalf("the chosen key survived:\n%s", data)
			}
		})
	}
}

func writeMode(p, content string, mode os.FileMode) error {
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		return err
	}
	return os.Chmod(p, mode)
}
