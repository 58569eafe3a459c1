package fsx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// The redo journal of a Txn with Journal set. Commit writes every staged
// file to a synced temporary file first (Add), then records the whole
// change, atomically, in the journal: from that moment the change is
// decided. It then renames each temporary file into place, removes what is
// to be removed, syncs the directories and deletes the journal. A crash
// before the journal is in place leaves only temporary files (CleanTemps
// removes them): nothing changed. A crash after it leaves the journal, and
// Recover finishes the renames and removals: everything changed. No crash
// leaves a part of the change in place.

// journalVersion is the only journal format Recover reads.
const journalVersion = 1

// MaxJournal bounds the journal and the prepare file (64 MiB: a batch of
// 10,000 devices with seven files each and long paths is under 20 MiB).
// Commit and Prepare refuse a change they could not record within it, so
// that Recover never meets a journal it will not read.
const MaxJournal = 64 << 20

type journal struct {
	Version int         `json:"version"`
	Ops     []journalOp `json:"ops"`
}

// journalOp is one step: rename Tmp to Path, or remove Path. Paths inside
// the journal's directory are relative to it, so that a moved directory
// still recovers.
type journalOp struct {
	Tmp    string `json:"tmp,omitempty"`
	Path   string `json:"path"`
	Remove bool   `json:"remove,omitempty"`
}

// A temporary file outside the journal's directory (a certificate signed
// to a path elsewhere) would be left behind by a crash before the journal
// names it, and nothing would find it: before it is made, its target is
// recorded in the prepare file (JOURNAL.prepare), and Recover removes the
// temporary files of the targets listed there.

// prepareFile is the path of the prepare file.
func (t *Txn) prepareFile() string { return t.Journal + ".prepare" }

// journaled reports whether the journal of t is in place.
func (t *Txn) journaled() bool {
	_, err := os.Lstat(t.Journal)
	return t.Journal != "" && err == nil
}

// prepare records path in the prepare file when it lies outside the
// journal's directory.
func (t *Txn) prepare(path string) error { return t.Prepare(path) }

// Prepare records in the prepare file, in one write, every path that lies
// outside the journal's directory and is not recorded yet. Add does it for
// each file; a caller that adds thousands of files outside calls it first
// with all of them, so that the prepare file is written once, not once per
// file.
func (t *Txn) Prepare(paths ...string) error {
	if t.Journal == "" {
		return nil
	}
	base, err := filepath.Abs(filepath.Dir(t.Journal))
	if err != nil {
		return fmt.Errorf("journal %s: %w", t.Journal, err)
	}
	if t.outsideSet == nil {
		t.outsideSet = map[string]bool{}
	}
	var added []string
	seen := map[string]bool{}
	for _, path := range paths {
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		if rel := relTo(base, abs); !filepath.IsAbs(rel) || t.outsideSet[abs] || seen[abs] {
			continue
		}
		seen[abs] = true
		added = append(added, abs)
	}
	if len(added) == 0 {
		return nil
	}
	data, _ := json.Marshal(append(t.outside, added...))
	if len(data) > MaxJournal {
		return fmt.Errorf("%d files outside %s are too many for one change (over %d MiB of paths): make it in smaller parts", len(t.outside)+len(added), base, MaxJournal>>20)
	}
	t.outside = append(t.outside, added...)
	for _, a := range added {
		t.outsideSet[a] = true
	}
	if t.crashed("prepare " + added[0]) {
		return ErrCrashed
	}
	return WriteFile(t.prepareFile(), data, 0o600, true)
}

// cleanPrepared removes the temporary files of the targets the prepare
// file next to journalPath lists, and the prepare file.
func cleanPrepared(journalPath string) []string {
	p := journalPath + ".prepare"
	data, err := ReadRegular(p, MaxJournal)
	if err != nil {
		return nil
	}
	var targets []string
	json.Unmarshal(data, &targets)
	// Each directory is read once (a batch lists thousands of targets in
	// a few directories each).
	byDir := map[string]map[string]bool{}
	var dirs []string
	for _, target := range targets {
		d := filepath.Dir(target)
		if byDir[d] == nil {
			byDir[d] = map[string]bool{}
			dirs = append(dirs, d)
		}
		byDir[d][filepath.Base(target)] = true
	}
	var removed []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			n := e.Name()
			i := strings.LastIndex(n, ".tmp")
			if i <= 1 || n[0] != '.' || !byDir[d][n[1:i]] || !e.Type().IsRegular() {
				continue
			}
			if rest := n[i+len(".tmp"):]; rest != "" && strings.Trim(rest, "0123456789") == "" {
				if os.Remove(filepath.Join(d, n)) == nil {
					removed = append(removed, filepath.Join(d, n))
				}
			}
		}
	}
	os.Remove(p)
	return removed
}

// commitJournaled is Commit with a redo journal (see above).
func (t *Txn) commitJournaled() error {
	if t.dead {
		return ErrCrashed
	}
	// A file that must not be replaced is refused before anything is
	// decided; the caller holds the lock of the directory.
	for _, s := range t.files {
		if !s.overwrite && !s.remove {
			if _, err := os.Lstat(s.path); err == nil {
				return fmt.Errorf("%s: %w", s.path, ErrExists)
			}
		}
	}
	base, err := filepath.Abs(filepath.Dir(t.Journal))
	if err != nil {
		return fmt.Errorf("journal %s: %w", t.Journal, err)
	}
	j := journal{Version: journalVersion}
	// New files first, then replacements, then removals: a reader that does
	// not recover sees the files that are referred to before what refers
	// to them (the index is staged last).
	for _, pass := range []func(staged) bool{
		func(s staged) bool { return !s.overwrite && !s.remove },
		func(s staged) bool { return s.overwrite && !s.remove },
		func(s staged) bool { return s.remove },
	} {
		for _, s := range t.files {
			if pass(s) {
				op := journalOp{Path: relTo(base, s.path), Remove: s.remove}
				if !s.remove {
					op.Tmp = relTo(base, s.tmp)
				}
				j.Ops = append(j.Ops, op)
			}
		}
	}
	data, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("encode journal %s: %w", t.Journal, err)
	}
	if len(data) > MaxJournal {
		return fmt.Errorf("the change of %d files is too large for one journal (over %d MiB): make it in smaller parts", len(j.Ops), MaxJournal>>20)
	}
	// The temporary files (and their names) must be durable before the
	// journal that names them.
	if t.SyncOnce {
		if t.crashed("sync all " + base) {
			return ErrCrashed
		}
		var tmps []string
		for _, s := range t.files {
			if !s.remove {
				tmps = append(tmps, s.tmp)
			}
		}
		if err := syncAll(tmps, opDirs(base, j.Ops)); err != nil {
			return err
		}
	} else {
		for _, d := range opDirs(base, j.Ops) {
			if t.crashed("sync " + d) {
				return ErrCrashed
			}
			syncDir(d)
		}
	}
	var jt Txn
	jt.Crash = t.Crash
	if err := jt.Add(t.Journal, data, 0o600, false); err != nil {
		t.dead = jt.dead
		if errors.Is(err, ErrExists) {
			return fmt.Errorf("%s exists: an interrupted change is pending; recover it first", t.Journal)
		}
		return err
	}
	if t.crashed("place journal " + t.Journal) {
		jt.dead = true
		return ErrCrashed
	}
	if err := os.Link(jt.files[0].tmp, t.Journal); err != nil {
		jt.Abort()
		return fmt.Errorf("place journal %s: %w", t.Journal, err)
	}
	os.Remove(jt.files[0].tmp)
	// From here the change is decided: the temporary files are the
	// journal's, never removed by Abort.
	t.files = nil
	if t.crashed("sync " + base) {
		return ErrCrashed
	}
	syncDir(base)
	if _, err := replay(t.Journal, j.Ops, t.crashed, t.SyncOnce); err != nil {
		if errors.Is(err, ErrCrashed) {
			return err
		}
		return fmt.Errorf("%w (the change is recorded in %s and is completed by the next command that recovers it)", err, t.Journal)
	}
	return nil
}

// replay does the journal's steps that are not done yet, syncs the
// directories and removes the journal. Each step can be repeated: a rename
// whose temporary file is gone was done, and removing a missing file is
// not an error. With once, the directories are synced in one pass
// (syncAll). It returns the targets that are lost: neither the temporary
// file nor the target is there (removed by someone else after the
// journal was placed, e.g. a bundle directory outside deleted).
func replay(journalPath string, ops []journalOp, crashed func(string) bool, once bool) (lost []string, err error) {
	base, err := filepath.Abs(filepath.Dir(journalPath))
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", journalPath, err)
	}
	for _, op := range ops {
		path := absIn(base, op.Path)
		if op.Remove {
			if crashed("remove " + path) {
				return nil, ErrCrashed
			}
			if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("remove %s: %w", path, err)
			}
			continue
		}
		tmp := absIn(base, op.Tmp)
		if _, err := os.Lstat(tmp); errors.Is(err, fs.ErrNotExist) {
			if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
				lost = append(lost, path)
			}
			continue
		}
		if crashed("rename " + path) {
			return nil, ErrCrashed
		}
		if err := os.Rename(tmp, path); err != nil {
			return nil, fmt.Errorf("place %s: %w", path, err)
		}
		// Renaming a file onto a hard link of itself does nothing.
		os.Remove(tmp)
	}
	if once {
		if crashed("sync all " + base) {
			return nil, ErrCrashed
		}
		if err := syncAll(nil, opDirs(base, ops)); err != nil {
			return nil, err
		}
	} else {
		for _, d := range opDirs(base, ops) {
			if crashed("sync " + d) {
				return nil, ErrCrashed
			}
			syncDir(d)
		}
	}
	if crashed("remove journal " + journalPath) {
		return nil, ErrCrashed
	}
	if err := os.Remove(journalPath); err != nil {
		return nil, fmt.Errorf("remove journal %s: %w", journalPath, err)
	}
	os.Remove(journalPath + ".prepare")
	syncDir(base)
	return lost, nil
}

// Recover completes the change recorded in the journal at path, if there
// is one, and returns the files it placed or removed (none when there was
// no journal). Call it under the lock that the committing Txn held, before
// reading the files it changes. crash is the Txn.Crash test hook (nil in
// use).
func Recover(path string, canRemove func(rel string) bool, crash func(step string) bool) ([]string, error) {
	done, _, err := RecoverLost(path, canRemove, crash)
	return done, err
}

// RecoverLost is Recover that also returns the files of the change that
// are lost: their temporary files were removed (with the directory that
// held them) after the change was decided, so that neither they nor the
// files they were to become exist. done lists every file of the change,
// the lost ones too.
func RecoverLost(path string, canRemove func(rel string) bool, crash func(step string) bool) (done, lost []string, err error) {
	data, err := ReadRegular(path, MaxJournal)
	if errors.Is(err, fs.ErrNotExist) {
		cleanPrepared(path)
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read journal: %w", err)
	}
	var j journal
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, nil, fmt.Errorf("%s is not a journal this mqttctl reads (%v): %s", path, err, journalFix(path))
	}
	if j.Version != journalVersion {
		return nil, nil, fmt.Errorf("%s has version %d; this mqttctl reads version %d (a newer mqttctl wrote it): %s", path, j.Version, journalVersion, journalFix(path))
	}
	// Only what Commit writes is done: a rename of a temporary file made
	// beside its target for it, and removals inside the journal's
	// directory that canRemove allows. A forged journal can move or delete
	// nothing else.
	base, _ := filepath.Abs(filepath.Dir(path))
	for _, op := range j.Ops {
		target := absIn(base, op.Path)
		ok := op.Path != ""
		if op.Remove {
			ok = ok && op.Tmp == "" && filepath.IsLocal(filepath.FromSlash(op.Path)) && canRemove != nil && canRemove(op.Path)
		} else {
			tmp := absIn(base, op.Tmp)
			ok = ok && filepath.Dir(tmp) == filepath.Dir(target) && strings.HasPrefix(filepath.Base(tmp), "."+filepath.Base(target)+".tmp")
		}
		if !ok {
			what := "rename " + op.Tmp + " to " + op.Path
			if op.Remove {
				what = "remove " + op.Path
			}
			return nil, nil, fmt.Errorf("%s has a step mqttctl does not write (%s), so it was not written by mqttctl: %s", path, what, journalFix(path))
		}
	}
	if crash == nil {
		crash = func(string) bool { return false }
	}
	lost, err = replay(path, j.Ops, crash, false)
	if err != nil {
		return nil, nil, err
	}
	done = make([]string, 0, len(j.Ops))
	for _, op := range j.Ops {
		done = append(done, absIn(base, op.Path))
	}
	return done, lost, nil
}

// CleanTemps removes the temporary files a Txn left in dirs when it was
// stopped before its journal was in place (they belong to no change). Call
// it under the lock, when Recover found no journal. It returns what it
// removed.
func CleanTemps(dirs ...string) []string {
	var out []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if n := e.Name(); e.Type().IsRegular() && tempName.MatchString(n) {
				if os.Remove(filepath.Join(d, n)) == nil {
					out = append(out, filepath.Join(d, n))
				}
			}
		}
	}
	return out
}

// journalFix is what to do about a journal Recover cannot use.
func journalFix(path string) string {
	return fmt.Sprintf("look at it (cat %s); if nothing of the change it names matters, move it away (mv %s %s.bad) and check the directory; else restore the directory from a backup", path, path, path)
}

// tempName is the name os.CreateTemp gives Add's temporary files:
// ".NAME.tmp" and digits.
var tempName = regexp.MustCompile(`^\..+\.tmp[0-9]+$`)

// opDirs lists the directories the steps change, sorted.
func opDirs(base string, ops []journalOp) []string {
	var dirs []string
	seen := map[string]bool{}
	for _, op := range ops {
		if d := filepath.Dir(absIn(base, op.Path)); !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	slices.Sort(dirs)
	return dirs
}

// relTo is path relative to base when it is inside base, else path.
func relTo(base, path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		path = abs
	}
	if rel, err := filepath.Rel(base, path); err == nil && filepath.IsLocal(rel) {
		return filepath.ToSlash(rel)
	}
	return path
}

func absIn(base, path string) string {
	if filepath.IsAbs(path) {
		return path
	}
	return filepath.Join(base, filepath.FromSlash(path))
}
