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
