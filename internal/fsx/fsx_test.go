package fsx

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteFileModesAndNoClobber(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "k")
	if err := WriteFile(p, []byte("one"), 0o600, false); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %04o", st.Mode().Perm())
	}
	if err := WriteFile(p, []byte("two"), 0o600, false); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second write without overwrite: %v", err)
	}
	if b, _ := os.ReadFile(p); string(b) != "one" {
		t.Fatalf("content %q after refused write", b)
	}
	if err := WriteFile(p, []byte("two"), 0o644, true); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p); string(b) != "two" {
		t.Fatalf("content %q after overwrite", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("temporary files left: %v", entries)
	}
}

func TestTxnRollsBack(t *testing.T) {
	dir := t.TempDir()
	var tx Txn
	for _, n := range []string{"a", "b", "c"} {
		if err := tx.Add(filepath.Join(dir, n), []byte(n), 0o644, false); err != nil {
			t.Fatal(err)
		}
	}
	// Someone creates c between staging and commit.
	if err := os.WriteFile(filepath.Join(dir, "c"), []byte("theirs"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Commit = %v, want ErrExist", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "c" {
		t.Fatalf("after rollback the directory holds %v, want only c", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "c")); string(b) != "theirs" {
		t.Fatal("rollback touched the other writer's file")
	}
}

func TestEditKeepsModeAndRefusesWithoutTrace(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "f")
	if err := os.WriteFile(path, []byte("a\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o640)
	if err := Edit(path, false, nil, func(b []byte) ([]byte, error) { return append(b, "b\n"...), nil }); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(path)
	data, _ := os.ReadFile(path)
	if st.Mode().Perm() != 0o640 || string(data) != "a\nb\n" {
		t.Fatalf("after Edit: mode %04o, %q", st.Mode().Perm(), data)
	}
	refuse := func([]byte) error { return errors.New("wrong kind of file") }
	if err := Edit(path, false, refuse, func(b []byte) ([]byte, error) { return nil, nil }); err == nil {
		t.Fatal("check did not refuse")
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "f" && e.Name() != ".f.lock" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	other := filepath.Join(dir, "g")
	os.WriteFile(other, []byte("x"), 0o600)
	Edit(other, false, refuse, func(b []byte) ([]byte, error) { return b, nil })
	if _, err := os.Stat(filepath.Join(dir, ".g.lock")); err == nil {
		t.Error("a refused edit left a lock file")
	}
	if err := Edit(filepath.Join(dir, "missing"), false, nil, func(b []byte) ([]byte, error) { return b, nil }); !errors.Is(err, ErrNotExist) {
		t.Errorf("missing file without create: %v", err)
	}
}

// TestTxnAddLikeAndRemove: a replacement keeps the old file's mode; a
// staged removal happens only on Commit, never on Abort.
func TestTxnAddLikeAndRemove(t *testing.T) {
	dir := t.TempDir()
	key, gone := filepath.Join(dir, "k"), filepath.Join(dir, "gone")
	for _, p := range []string{key, gone} {
		if err := os.WriteFile(p, []byte("old"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	var aborted Txn
	aborted.Remove(gone)
	if err := aborted.AddLike(key, []byte("new"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	aborted.Abort()
	if _, err := os.Stat(gone); err != nil {
		t.Fatal("Abort removed a file")
	}
	var tx Txn
	tx.Remove(gone)
	tx.Remove(filepath.Join(dir, "never-was"))
	if err := tx.AddLike(key, []byte("new"), key, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(gone); err == nil {
		t.Error("Commit kept a removed file")
	}
	st, err := os.Stat(key)
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("replaced file mode %v (%v), want 0640", st.Mode().Perm(), err)
	}
}
