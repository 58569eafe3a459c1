package persist

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// ErrForeignState: a state file (the database, the old journal, the TLS
// ticket keys) that this broker did not write. The persistence directory
// may be writable by another account (mqttctl up makes it root:mosquitto
// 0770 so that mosquitto can run the same config); a database planted there
// would inject retained messages, sessions, subscriptions or queued
// publishes, and a symbolic link would make the broker (root) write
// through it.
var ErrForeignState = errors.New("persistence file not written by this broker")

// geteuid is os.Geteuid (a test plays another account with it).
var geteuid = os.Geteuid

// OpenOwn opens a state file without following a symbolic link (or
// blocking on a FIFO) and refuses it unless it is the broker's own
// (OwnFile). It is checked on the descriptor it returns, so a file swapped
// in meanwhile is caught too; a file it creates is the broker's own. A
// missing file is fs.ErrNotExist; a refusal is ErrForeignState with an
// error naming the file and the fix. Its signature is bbolt's
// Options.OpenFile.
func OpenOwn(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if errors.Is(err, syscall.ELOOP) {
		err = errors.New("a symbolic link")
	} else if err == nil {
		if err = OwnFile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, errs.Wrap(err, fmt.Sprintf("%s: %v; the broker keeps its state there (sessions, retained messages, queued publishes, TLS ticket keys) and does not load what another account could have written: if this broker wrote it, chown %d %s && chmod 600 %s; otherwise move it away (the broker then starts without it)",
			name, err, geteuid(), name, name), ErrForeignState)
	}
	return f, nil
}

// OwnFile checks that the open file f is the broker's own: a regular file
// owned by the broker's effective uid that neither group nor others may
// read or write.
func OwnFile(f *os.File) error {
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%s)", st.Mode().Type())
	}
	if uid, _, ok := fsx.Owner(st); ok && uid != geteuid() {
		return fmt.Errorf("owned by uid %d, not by uid %d that runs the broker: another account wrote it", uid, geteuid())
	}
	if st.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("mode %04o lets others read or change it", st.Mode().Perm())
	}
	return nil
}

// SetEUIDForTest makes OwnFile and OpenOwn take uid as the broker's
// effective uid, for tests that play another account without root (the
// broker's tests too, hence exported); call the returned func to restore.
// Not safe while files are being opened.
func SetEUIDForTest(uid int) (restore func()) {
	old := geteuid
	geteuid = func() int { return uid }
	return func() { geteuid = old }
}
