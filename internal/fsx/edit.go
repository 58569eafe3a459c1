package fsx

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// ErrNotExist is wrapped by Edit's error for a missing file it may not
// create.
var ErrNotExist = fs.ErrNotExist

// MaxEditSize bounds the files Edit reads (32 MiB: some 250,000 password
// lines): a larger file is refused instead of filling memory.
const MaxEditSize = 32 << 20

// Edit is the one way mqttctl changes a file a broker reads (password
// files, ACL files): it locks path against concurrent edits (Lock), reads
// it (nil data when it does not exist and create is set), lets fn return
// the new contents and writes them atomically. A rewritten file keeps its
// mode, owner and group (so the broker's group access survives); a new one
// gets mode 0600. Nothing is written when fn returns an error or the same
// contents.
//
// check, when not nil, says whether the current contents are a file of the
// right kind at all (not a key, say); it runs once before the lock is taken,
// so that refusing a wrong file leaves not even a lock file beside it, and
// again under the lock.
//
// A symbolic link is followed and its target edited (as mosquitto_passwd
// does), so the link stays a link; a device, pipe or directory, or a file
// over MaxEditSize, is refused.
func Edit(path string, create bool, check func(data []byte) error, fn func(data []byte) ([]byte, error)) error {
	path, err := resolve(path)
	if err != nil {
		return err
	}
	// Refusals come before the lock, which leaves a lock file beside path.
	if data, err := readBounded(path); errors.Is(err, errRefused) {
		return err
	} else if err == nil && check != nil {
		if err := check(data); err != nil {
			return err
		}
	}
	unlock, err := Lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	mode := os.FileMode(0o600)
	uid, gid := -1, -1
	data, err := readBounded(path)
	switch {
	case err == nil:
		st, err := os.Stat(path)
		if err != nil {
			return err
		}
		mode = st.Mode().Perm()
		if u, g, ok := Owner(st); ok {
			uid, gid = u, g
		}
	case errors.Is(err, fs.ErrNotExist) && create:
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: %w", path, ErrNotExist)
	case errors.Is(err, errRefused):
		return err
	default:
		return fmt.Errorf("read %s: %w", path, err)
	}
	if check != nil {
		if err := check(data); err != nil {
			return err
		}
	}
	out, err := fn(data)
	if err != nil {
		return err
	}
	if data != nil && string(out) == string(data) {
		return nil
	}
	if err := WriteFile(path, out, mode, true); err != nil {
		return err
	}
	if uid >= 0 {
		// Keep the owner and group: as root this always works; as the
		// owner, the group can be kept when the user is in it.
		if err := os.Chown(path, uid, gid); err != nil && os.Geteuid() == 0 {
			return fmt.Errorf("restore owner of %s: %w", path, err)
		}
	}
	return nil
}

var errRefused = errors.New("refused")

// refused is an error of readBounded's that is the file's fault, not the
// system's: its text is the whole story.
type refused struct{ msg string }

func (e refused) Error() string        { return e.msg }
func (e refused) Is(target error) bool { return target == errRefused }

// readBounded reads a regular file of at most MaxEditSize bytes.
func readBounded(path string) ([]byte, error) { return ReadRegular(path, MaxEditSize) }

// ReadRegular reads the regular file at path (a symbolic link is followed)
// of at most max bytes. A pipe, device, socket or directory is refused
// without blocking on it (a FIFO planted where a file is expected would
// otherwise hang the reader, and /dev/zero fill its memory), and so is a
// larger file. A missing file is an error matching fs.ErrNotExist.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.IsDir() {
		return nil, refused{fmt.Sprintf("%s is a directory: give the path of the file itself", path)}
	}
	if !st.Mode().IsRegular() {
		return nil, refused{fmt.Sprintf("%s is not a regular file (%s): put the file itself there, or move this out of the way", path, st.Mode().Type())}
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, refused{fmt.Sprintf("%s is over %s, larger than any file of its kind: it is not the right file", path, SizeText(max))}
	}
	return data, nil
}

// SizeText is n bytes in words: whole MiB or KiB when it is a multiple
// of them, else bytes (never "0 MiB" for a limit under a MiB).
func SizeText(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// resolve follows symbolic links from path to the file they name, which
// need not exist yet (a link to a file still to be created).
func resolve(path string) (string, error) {
	orig := path
	for range 40 {
		fi, err := os.Lstat(path)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return path, nil
		}
		if real, err := filepath.EvalSymlinks(path); err == nil {
			return real, nil
		}
		dest, err := os.Readlink(path)
		if err != nil {
			return "", fmt.Errorf("read symbolic link %s: %w", path, err)
		}
		if !filepath.IsAbs(dest) {
			dest = filepath.Join(filepath.Dir(path), dest)
		}
		path = dest
	}
	return "", fmt.Errorf("%s: too many levels of symbolic links", orig)
}
