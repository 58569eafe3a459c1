package broker

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.etcd.io/bbolt"
)

// TestPersistenceRefusesForeignState: the persistence directory may be
// writable by another account (mqttctl up: root:mosquitto 0770). A database
// or journal that serve did not write would inject retained messages,
// sessions or publishes, and a symbolic link planted there would make serve
// (root) write through it: each is refused with the fix, and what a link
// points to is left untouched.
func TestPersistenceRefusesForeignState(t *testing.T) {
	foreign := func(t *testing.T, p string) {
		if os.Geteuid() == 0 {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Cleanup(SetEUIDForTest(os.Geteuid() + 1))
	}
	boltFile := func(t *testing.T, p string) {
		db, err := bbolt.Open(p, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	journalFile := func(t *testing.T, p string) {
		// A queued publish the other account wants republished.
		if err := os.WriteFile(p, appendRecord(nil, opPut, "adm4\x001", []byte(`{"t":"cmd/all"}`)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, p string) {
		if err := os.WriteFile(p+".victim", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p+".victim", p); err != nil {
			t.Fatal(err)
		}
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, db string)
		want  string
	}{
		{"database owned by another account", func(t *testing.T, db string) { boltFile(t, db); foreign(t, db) }, "owned by uid"},
		{"database writable by the group", func(t *testing.T, db string) { boltFile(t, db); os.Chmod(db, 0o660) }, "mode 0660"},
		{"database a symbolic link", link, "symbolic link"},
		{"journal owned by another account", func(t *testing.T, db string) { journalFile(t, db+".journal"); foreign(t, db+".journal") }, "owned by uid"},
		{"journal readable by others", func(t *testing.T, db string) { journalFile(t, db+".journal"); os.Chmod(db+".journal", 0o604) }, "mode 0604"},
		{"journal a symbolic link", func(t *testing.T, db string) { link(t, db+".journal") }, "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "store.db")
			tc.plant(t, db)
			jr, err := openJournal(db + ".journal")
			if err == nil {
				defer jr.f.Close()
				var st *boltStore
				if st, err = openBoltStore(db, jr, log); err == nil {
					st.Stop()
				}
			}
			if !errors.Is(err, ErrForeignState) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "chown") {
				t.Fatalf("%v; want it refused (%q) with the fix", err, tc.want)
			}
			for _, victim := range []string{db + ".victim", db + ".journal.victim"} {
				if st, err := os.Stat(victim); err == nil && st.Size() != 0 {
					t.Fatalf("%s was written through a symbolic link (%d bytes)", victim, st.Size())
				}
			}
		})
	}

	// Compaction writes a new journal beside the old one: whatever another
	// account left at that name is removed, never written through.
	dir := t.TempDir()
	j, err := openJournal(filepath.Join(dir, "j"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	link(t, filepath.Join(dir, "j.new"))
	j.live["alice\x001"] = []byte("x")
	if err := j.compact(); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(dir, "j.new.victim")); err != nil || st.Size() != 0 {
		t.Fatalf("compaction wrote through a planted symbolic link: %v", err)
	}
}
