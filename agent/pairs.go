package agent

import (
	"crypto"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// The pairs of a device live in directories of their own, and the names an
// application reads are symbolic links through one pointer:
//
//	NAME.pairs/SERIAL/NAME.crt, NAME.key  one directory per certificate (the key 0600)
//	NAME.pairs/next/                      the pair of a run in progress: its key is
//	                                      written before the request is sent, its
//	                                      certificate as soon as the server answers
//	NAME.current  -> NAME.pairs/SERIAL    the pointer switched by a renewal
//	NAME.previous -> NAME.pairs/SERIAL    the pair the last renewal replaced
//	NAME.crt -> NAME.current/NAME.crt     what applications read (never rewritten)
//	NAME.key -> NAME.current/NAME.key
//	NAME.prev.crt, NAME.prev.key          the same through NAME.previous
//
// A renewal switches NAME.current in one rename, so that NAME.crt and
// NAME.key name the old pair or the new one, never one of each, at every
// step a kill -9 can stop it at.

const nextDir = "next"

var serialDir = regexp.MustCompile(`^[0-9A-F]+$`)

func (o *Options) pairsDir(name string) string { return o.path(name + ".pairs") }
func (o *Options) nextPair(name string) pair {
	d := filepath.Join(o.pairsDir(name), nextDir)
	return pair{filepath.Join(d, name+".crt"), filepath.Join(d, name+".key")}
}
func (o *Options) pointer(name, which string) string { return o.path(name + "." + which) }
func (o *Options) execMarker(name string) string     { return o.path("." + name + ".exec-pending") }

// target reads the pointer NAME.which: the serial directory it names, ""
// when there is none.
func (o *Options) target(name, which string) (string, error) {
	p := o.pointer(name, which)
	t, err := os.Readlink(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("%s is not the symbolic link the agent writes (%v): move it away", p, err)
	}
	dir, base := filepath.Split(t)
	if filepath.Clean(dir) != name+".pairs" || !serialDir.MatchString(base) {
		return "", fmt.Errorf("%s points to %q, not to a pair in %s.pairs/: it was not written by the agent; move it away", p, t, name)
	}
	return base, nil
}

// step calls the crash hook (a test's kill -9 before a change of the disk).
func (o *Options) step(s string) error {
	if o.Crash != nil && o.Crash(s) {
		return fsx.ErrCrashed
	}
	return nil
}

// link makes path a symbolic link to target in one rename.
func (o *Options) link(path, target string) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".link")
	os.Remove(tmp)
	if err := os.Symlink(target, tmp); err != nil {
		return err
	}
	if err := o.step("point " + path); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	syncDir(filepath.Dir(path))
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// writeFiles writes files (name -> data) into dir atomically, each synced.
func (o *Options) writeFiles(dir string, files ...fileData) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	t := fsx.Txn{Crash: o.Crash}
	for _, f := range files {
		if err := t.Add(filepath.Join(dir, f.name), f.data, f.perm, true); err != nil {
			t.Abort()
			return err
		}
	}
	return t.Commit()
}

// writeDirect writes the answer of the server into dir: no temporary file
// that a stopped run's cleanup would remove, each file synced once written
// (a file cut short by a crash does not parse, and is not installed).
func (o *Options) writeDirect(dir string, files ...fileData) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, fd := range files {
		p := filepath.Join(dir, fd.name)
		if err := o.step("write " + p); err != nil {
			return err
		}
		f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, fd.perm)
		if err != nil {
			return err
		}
		_, err = f.Write(fd.data)
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("write %s: %w", p, err)
		}
	}
	syncDir(dir)
	return nil
}

type fileData struct {
	name string
	data []byte
	perm os.FileMode
}

// stageKey writes the key of the next pair before the request is sent:
// reused when an earlier run left one (its request may have been answered
// already), else a new one; without rekey, a copy of the current key.
func (o *Options) stageKey(name string, rekey bool, cur *held) (crypto.Signer, error) {
	next := o.nextPair(name)
	if !rekey {
		// The key stays: it is copied beside the certificate once issued.
		return cur.key, nil
	}
	if kb, err := fsx.ReadRegular(next.key, maxFile); err == nil {
		if k, err := ParseKey(kb); err == nil {
			o.Log.Info("reusing the key an earlier run staged", "file", next.key)
			return k, nil
		}
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	pemKey, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	return k, o.writeFiles(filepath.Dir(next.key), fileData{name + ".key", pemKey, 0o600})
}

// migrate turns plain NAME.crt and NAME.key (put there by hand, or by an
// older agent) into the layout of links, the pair unchanged at every step.
func (o *Options) migrate(name string) error {
	for _, which := range []struct{ suffix, ptr string }{{"", "current"}, {".prev", "previous"}} {
		p := o.pairOf(name, which.suffix)
		cst, cerr := os.Lstat(p.crt)
		kst, kerr := os.Lstat(p.key)
		if cerr != nil || (cst.Mode()&fs.ModeSymlink != 0 && (kerr != nil || kst.Mode()&fs.ModeSymlink != 0)) {
			continue // no pair, or links (a missing key is reported by loadPair)
		}
		h, err := loadPair(p)
		if err != nil {
			if which.suffix == "" {
				return err
			}
			continue // a broken previous pair is left as it is
		}
		sd := serial(h.cert)
		if err := o.writeFiles(filepath.Join(o.pairsDir(name), sd), fileData{name + ".crt", h.crtPEM, 0o644}, fileData{name + ".key", h.keyPEM, 0o600}); err != nil {
			return err
		}
		if err := o.link(o.pointer(name, which.ptr), filepath.Join(name+".pairs", sd)); err != nil {
			return err
		}
		// Each link names the same bytes as the file it replaces.
		if err := o.link(p.crt, filepath.Join(name+"."+which.ptr, name+".crt")); err != nil {
			return err
		}
		if err := o.link(p.key, filepath.Join(name+"."+which.ptr, name+".key")); err != nil {
			return err
		}
		o.Log.Info("moved the pair into the agent's layout (the names stay)", "certificate", p.crt, "serial", sd)
	}
	return nil
}

// ensureLinks makes the links NAME.prev.crt and .key, and (with current)
// NAME.crt and NAME.key, that are missing where their pointer exists.
func (o *Options) ensureLinks(name string, current bool) error {
	for _, which := range []struct{ suffix, ptr string }{{"", "current"}, {".prev", "previous"}} {
		if _, err := os.Lstat(o.pointer(name, which.ptr)); err != nil || (which.suffix == "" && !current) {
			continue
		}
		p := o.pairOf(name, which.suffix)
		for _, f := range []struct{ path, file string }{{p.key, name + ".key"}, {p.crt, name + ".crt"}} {
			if _, err := os.Lstat(f.path); err == nil {
				continue
			}
			if err := o.link(f.path, filepath.Join(name+"."+which.ptr, f.file)); err != nil {
				return err
			}
		}
	}
	return nil
}

// activate installs the next pair (written and checked): it becomes
// NAME.pairs/SERIAL, the current pair becomes the previous one, and the
// pointer NAME.current is switched in one rename. outcome is recorded for
// --exec until it has run.
func (o *Options) activate(name, src, sd string, outcome Outcome) error {
	pd := o.pairsDir(name)
	if src != sd {
		if err := o.step("rename " + filepath.Join(pd, src)); err != nil {
			return err
		}
		if err := os.Rename(filepath.Join(pd, src), filepath.Join(pd, sd)); err != nil {
			return fmt.Errorf("install the new pair: %w", err)
		}
		syncDir(pd)
	}
	if err := o.writeFiles(o.Dir, fileData{filepath.Base(o.execMarker(name)), []byte(outcome.String() + "\n"), 0o600}); err != nil {
		return err
	}
	cur, err := o.target(name, "current")
	if err != nil {
		return err
	}
	if cur != "" && cur != sd {
		if err := o.link(o.pointer(name, "previous"), filepath.Join(name+".pairs", cur)); err != nil {
			return err
		}
	}
	if err := o.link(o.pointer(name, "current"), filepath.Join(name+".pairs", sd)); err != nil {
		return err
	}
	if err := o.ensureLinks(name, true); err != nil {
		return err
	}
	return o.collect(name)
}

// collect removes the pair directories no pointer names (the next pair
// excepted).
func (o *Options) collect(name string) error {
	cur, err := o.target(name, "current")
	if err != nil {
		return err
	}
	prev, err := o.target(name, "previous")
	if err != nil {
		return err
	}
	entries, _ := os.ReadDir(o.pairsDir(name))
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() || !serialDir.MatchString(n) || n == cur || n == prev {
			continue
		}
		p := filepath.Join(o.pairsDir(name), n)
		if err := o.step("remove " + p); err != nil {
			return err
		}
		os.RemoveAll(p)
	}
	fsx.CleanTemps(o.pairsDir(name), filepath.Join(o.pairsDir(name), nextDir))
	return nil
}

// cleanLinks removes the temporary links a stopped run left.
func (o *Options) cleanLinks(name string) {
	for _, n := range []string{name + ".current", name + ".previous", name + ".crt", name + ".key", name + ".prev.crt", name + ".prev.key"} {
		p := o.path("." + n + ".link")
		if st, err := os.Lstat(p); err == nil && st.Mode()&fs.ModeSymlink != 0 {
			os.Remove(p)
		}
	}
}

// isStaged reports whether a directory holds a pair of name the agent
// staged (used by status).
func isStaged(o *Options, name string) bool {
	_, err := os.Lstat(o.nextPair(name).crt)
	if err == nil {
		return true
	}
	_, err = os.Lstat(o.execMarker(name))
	return err == nil
}

func parseOutcome(s string) Outcome {
	if strings.TrimSpace(s) == Enrolled.String() {
		return Enrolled
	}
	return Renewed
}
