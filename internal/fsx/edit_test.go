package fsx

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEditFollowsSymlinks: editing through a symbolic link changes its
// target and leaves the link a link (mosquitto_passwd does the same); the
// lock is the target's, so an edit through the link and one of the file
// itself exclude each other.
func TestEditFollowsSymlinks(t *testing.T) {
	add := func(b []byte) ([]byte, error) { return append(b, "b\n"...), nil }
	for _, tc := range []struct {
		name   string
		link   string // link text, relative to the link's directory
		create bool
		target string // the file that must hold the edit, relative to dir
		before string // its contents before, "" when it does not exist
	}{
		{name: "relative link", link: "real/passwd", target: "real/passwd", before: "a\n"},
		{name: "absolute link", link: "ABS/real/passwd", target: "real/passwd", before: "a\n"},
		{name: "link to a link", link: "chain", target: "real/passwd", before: "a\n"},
		{name: "dangling link with create", link: "real/new", create: true, target: "real/new"},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			os.Mkdir(filepath.Join(dir, "real"), 0o700)
			os.WriteFile(filepath.Join(dir, "real", "passwd"), []byte("a\n"), 0o640)
			os.Chmod(filepath.Join(dir, "real", "passwd"), 0o640)
			os.Symlink("real/passwd", filepath.Join(dir, "chain"))
			link := filepath.Join(dir, "link")
			if err := os.Symlink(strings.Replace(tc.link, "ABS", dir, 1), link); err != nil {
				t.Fatal(err)
			}
			if err := Edit(link, tc.create, nil, add); err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
				t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
			}
			got, err := os.ReadFile(filepath.Join(dir, tc.target))
			if want := tc.before + "b\n"; err != nil || string(got) != want {
				t.Errorf("target holds %q (%v), want %q", got, err, want)
			}
			if st, _ := os.Stat(filepath.Join(dir, tc.target)); tc.before != "" && st.Mode().Perm() != 0o640 {
				t.Errorf("target mode %04o, want 0640 kept", st.Mode().Perm())
			}
			if _, err := os.Stat(filepath.Join(dir, ".link.lock")); err == nil {
				t.Error("locked the link's name, not the target's")
			}
		})
	}
}

// TestEditRefusesDevicesAndHugeFiles: a device (/dev/zero never ends), a
// directory or a file over MaxEditSize is refused with its name, before
// the lock and without reading it whole.
func TestEditRefusesDevicesAndHugeFiles(t *testing.T) {
	dir := t.TempDir()
	huge := filepath.Join(dir, "huge")
	f, err := os.Create(huge)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(MaxEditSize + 1) // sparse: no disk used
	f.Close()
	zeroLink := filepath.Join(dir, "zero")
	os.Symlink("/dev/zero", zeroLink)
	for _, tc := range []struct{ path, want string }{
		{huge, "huge is over 32 MiB"},
		{"/dev/zero", "/dev/zero is not a regular file"},
		{zeroLink, "/dev/zero is not a regular file"},
		{dir, "is a directory"},
	} {
		called := false
		err := Edit(tc.path, true, nil, func(b []byte) ([]byte, error) { called = true; return b, nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) || called {
			t.Errorf("Edit(%s) = %v (fn called %v), want %q", tc.path, err, called, tc.want)
		}
		if !errors.Is(err, errRefused) {
			t.Errorf("Edit(%s): %v is not a refusal", tc.path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, ".huge.lock")); err == nil {
		t.Error("a refused edit left a lock file")
	}
}

// TestReadRegularSaysTheLimit: a file over a limit under a MiB is refused
// naming the limit in KiB or bytes, never "over 0 MiB" (finding 18b: a
// 64 KiB token file said "big.tok is over 0 MiB").
func TestReadRegularSaysTheLimit(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.tok")
	os.WriteFile(p, make([]byte, 70<<10), 0o600)
	for max, want := range map[int64]string{64 << 10: "is over 64 KiB", 1000: "is over 1000 bytes", 4 << 20: "", 32 << 10: "is over 32 KiB"} {
		_, err := ReadRegular(p, max)
		if want == "" {
			if err != nil {
				t.Errorf("limit %d: %v", max, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("limit %d: %v, want %q", max, err, want)
		}
	}
	if got := SizeText(4 << 20); got != "4 MiB" {
		t.Errorf("SizeText(4 MiB) = %q", got)
	}
}
