package fsx

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
)

// ErrNotExist is wrapped by Edit's error for a missing file it may not
// create.
var ErrNotExist = fs.ErrNotExist

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
func Edit(path string, create bool, check func(data []byte) error, fn func(data []byte) ([]byte, error)) error {
	if check != nil {
		if data, err := os.ReadFile(path); err == nil {
			if err := check(data); err != nil {
				return err
			}
		}
	}
	unlock, err := Lock(path)
	if err != nil {
		return err
	}
	defer unlock()
	mode := os.FileMode(0o600)
	uid, gid := -1, -1
	data, err := os.ReadFile(path)
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
