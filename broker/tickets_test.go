package broker

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
	for _, tc := range []struct {
		name, content string
		mode          os.FileMode
		want          string
	}{
		{"damaged", "# keys\n1800000000 abcd\n", 0o600, ":2: not a ticket key line"},
		{"readable by others", "", 0o644, "chmod 600"},
	} {
		p := filepath.Join(t.TempDir(), "t")
		if err := os.WriteFile(p, []byte(tc.content), tc.mode); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, tc.mode)
		if _, err := loadTicketKeys(p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}
