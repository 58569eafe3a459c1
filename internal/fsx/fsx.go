// Package fsx writes files so that a failure never leaves a half-written file
// behind: every write goes to a temporary file in the target's directory, is
// synced, and is then renamed (or hard-linked, when the target must not be
// replaced) into place.
package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
)

// ErrExists is returned (wrapped) when a file that must not be replaced
// already exists.
var ErrExists = fs.ErrExist

// WriteFile writes data to path atomically with the given permissions. When
// overwrite is false and path exists, it fails with an error wrapping
// fs.ErrExist and leaves the existing file untouched.
func WriteFile(path string, data []byte, perm os.FileMode, overwrite bool) error {
	var t Txn
	if err := t.Add(path, data, perm, overwrite); err != nil {
		return err
	}
	return t.Commit()
}

type staged struct {
	tmp, path string
	overwrite bool
	remove    bool // delete path on Commit (tmp unused)
}

// Txn stages several files and puts them in place together on Commit. If any
// step fails, the files it created are removed again, so the directory is left
// as it was (files replaced with overwrite=true cannot be restored once
// renamed; Commit places those last).
//
// With Journal set, Commit is crash-safe as well: it records every step in a
// redo journal before the first rename, and Recover completes an
// interrupted Commit after a crash, so that either none or all of the files
// are in place, whatever step a kill -9 or a power cut stopped it at.
type Txn struct {
	files []staged
	// Journal is the path of the redo journal (see Recover); "" commits
	// without one.
	Journal string
	// Crash, a test hook, is called before each step that changes the disk
	// (a temporary file written, the journal, each rename, link and removal,
	// the directory syncs). When it returns true the process is taken to
	// have died right there: the Txn stops, changes nothing more, and leaves
	// its temporary files and journal behind, as a kill -9 would.
	Crash func(step string) bool
	// SyncOnce (with Journal) makes a change of thousands of files durable
	// in one pass instead of one sync per file and per directory: Add
	// does not sync each temporary file; Commit syncs the file systems
	// they are on once before the journal names them, and once after the
	// renames (syncAll).
	SyncOnce bool
	dead     bool
	// outside lists the staged targets outside the journal's directory,
	// recorded in the prepare file before their temporary files exist
	// (outsideSet indexes it).
	outside    []string
	outsideSet map[string]bool
}

// ErrCrashed is returned by a Txn whose Crash hook simulated a crash.
var ErrCrashed = errors.New("simulated crash")

// crashed calls the Crash hook for step.
func (t *Txn) crashed(step string) bool {
	if t.dead {
		return true
	}
	if t.Crash != nil && t.Crash(step) {
		t.dead = true
	}
	return t.dead
}

// Add writes data to a temporary file next to path, synced to disk and with
// mode perm. Nothing is visible at path until Commit.
func (t *Txn) Add(path string, data []byte, perm os.FileMode, overwrite bool) error {
	return t.add(path, data, perm, overwrite, -1, -1)
}

// AddLike stages data for path, replacing it if it exists, with the mode,
// owner and group of the file like (when like exists; else mode perm and
// the caller's ownership). A renewed key keeps the group access the broker
// was given to the old one, from the moment it is in place.
func (t *Txn) AddLike(path string, data []byte, like string, perm os.FileMode) error {
	uid, gid := -1, -1
	if st, err := os.Stat(like); err == nil {
		perm = st.Mode().Perm()
		if u, g, ok := Owner(st); ok {
			uid, gid = u, g
		}
	}
	return t.add(path, data, perm, true, uid, gid)
}

// Remove stages the removal of path, done on Commit after every file was
// put in place. A missing file is not an error.
func (t *Txn) Remove(path string) {
	t.files = append(t.files, staged{path: path, remove: true})
}

func (t *Txn) add(path string, data []byte, perm os.FileMode, overwrite bool, uid, gid int) error {
	if t.crashed("stage " + path) {
		return ErrCrashed
	}
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	if err := t.prepare(path); err != nil {
		return err
	}
	st, err := t.writeTemp(path, data, perm, overwrite, uid, gid)
	if err != nil {
		return err
	}
	t.files = append(t.files, st)
	return nil
}

// File is one file for AddMany.
type File struct {
	Path string
	Data []byte
	Perm os.FileMode
}

// AddMany adds every file as Add does (never replacing an existing one),
// writing them on several goroutines: a change of thousands of small files
// spends its time in the system calls that create them. The files are
// staged in the given order. Give the change SyncOnce too.
func (t *Txn) AddMany(files []File) error {
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.Path
	}
	if err := t.Prepare(paths...); err != nil {
		return err
	}
	// The crash steps in order; a crash at file k leaves the temporary
	// files of those before it, as a process killed there would.
	n := len(files)
	for i, f := range files {
		if t.crashed("stage " + f.Path) {
			n = i
			break
		}
	}
	out := make([]staged, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	var next atomic.Int64
	for range min(n, 2*runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				out[i], errs[i] = t.writeTemp(files[i].Path, files[i].Data, files[i].Perm, false, -1, -1)
			}
		}()
	}
	wg.Wait()
	var first error
	for i := range out {
		if errs[i] == nil {
			t.files = append(t.files, out[i])
		} else if first == nil {
			first = errs[i]
		}
	}
	if first == nil && n < len(files) {
		first = ErrCrashed
	}
	return first
}

// writeTemp writes data to a new temporary file beside path (synced unless
// SyncOnce), with mode perm and, when uid >= 0, that owner.
func (t *Txn) writeTemp(path string, data []byte, perm os.FileMode, overwrite bool, uid, gid int) (staged, error) {
	dir := filepath.Dir(path)
	if !overwrite {
		if _, err := os.Lstat(path); err == nil {
			return staged{}, fmt.Errorf("%s: %w", path, ErrExists)
		}
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return staged{}, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	tmp := f.Name()
	fail := func(err error) (staged, error) {
		f.Close()
		os.Remove(tmp)
		return staged{}, fmt.Errorf("write %s: %w", path, err)
	}
	// CreateTemp makes the file 0600; set the final mode before any data lands.
	if err := f.Chmod(perm); err != nil {
		return fail(err)
	}
	if uid >= 0 {
		// As root this always works; as the owner, the group is kept when
		// the user is in it. Otherwise the file keeps the caller's group.
		if err := f.Chown(uid, gid); err != nil && os.Geteuid() == 0 {
			return fail(err)
		}
	}
	if _, err := f.Write(data); err != nil {
		return fail(err)
	}
	if !t.SyncOnce || t.Journal == "" {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return staged{}, fmt.Errorf("write %s: %w", path, err)
	}
	return staged{tmp: tmp, path: path, overwrite: overwrite}, nil
}

// Abort removes every staged temporary file (none after a simulated crash:
// a dead process cleans nothing up).
func (t *Txn) Abort() {
	if t.dead {
		return
	}
	for _, s := range t.files {
		if !s.remove {
			os.Remove(s.tmp)
		}
	}
	t.files = nil
	if len(t.outside) > 0 && !t.journaled() {
		os.Remove(t.prepareFile())
		t.outside = nil
	}
}

// Commit puts every staged file in place: first the ones that must not
// replace an existing file (hard link, which fails if the target exists),
// then the replacements (rename). On failure the files created so far are
// removed and the error is returned.
func (t *Txn) Commit() error {
	defer t.Abort()
	if t.Journal != "" {
		return t.commitJournaled()
	}
	var created []string
	rollback := func(err error) error {
		for _, p := range created {
			os.Remove(p)
		}
		return err
	}
	for _, s := range t.files {
		if s.overwrite || s.remove {
			continue
		}
		if t.crashed("link " + s.path) {
			return ErrCrashed
		}
		if err := os.Link(s.tmp, s.path); err != nil {
			if errors.Is(err, fs.ErrExist) {
				return rollback(fmt.Errorf("%s: %w", s.path, ErrExists))
			}
			return rollback(fmt.Errorf("place %s: %w", s.path, err))
		}
		created = append(created, s.path)
	}
	for _, s := range t.files {
		if !s.overwrite || s.remove {
			continue
		}
		if t.crashed("rename " + s.path) {
			return ErrCrashed
		}
		if err := os.Rename(s.tmp, s.path); err != nil {
			return rollback(fmt.Errorf("place %s: %w", s.path, err))
		}
	}
	var removeErr error
	for _, s := range t.files {
		if s.remove {
			if t.crashed("remove " + s.path) {
				return ErrCrashed
			}
			if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) && removeErr == nil {
				removeErr = fmt.Errorf("remove %s: %w", s.path, err)
			}
		}
	}
	dirs := map[string]bool{}
	for _, s := range t.files {
		dirs[filepath.Dir(s.path)] = true
	}
	for d := range dirs {
		syncDir(d)
	}
	return removeErr
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// MkdirPrivate creates dir (and parents) with mode 0700 if it does not exist.
// An existing directory keeps its mode.
func MkdirPrivate(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create directory %s: %w", dir, err)
	}
	return nil
}

// Files returns the target paths staged so far (written or removed).
func (t *Txn) Files() []string {
	out := make([]string, len(t.files))
	for i, s := range t.files {
		out[i] = s.path
	}
	return out
}
