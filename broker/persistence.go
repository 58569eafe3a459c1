package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mqttctl/mqttctl/broker/persist"
	"github.com/mqttctl/mqttctl/internal/errs"
)

// ErrPersistenceInUse: another broker holds the lock on the persistence
// database (two brokers with the same persistence_location). The command
// that ran says how to give each broker its own directory.
var ErrPersistenceInUse = errors.New("persistence database in use by another broker")

// ErrPersistenceNotWritable: the persistence_location directory is not
// writable by the account serve runs as (the default /var/lib/mosquitto/
// belongs to the mosquitto account; a user who is not root cannot write
// there).
var ErrPersistenceNotWritable = errors.New("persistence_location not writable")

// SyncInterval is how often the persistence files are fsynced. Every
// change reaches the operating system before a QoS 1/2 publish it holds is
// acknowledged (engine.Durability), so a killed broker (SIGTERM, kill -9,
// a crash) loses nothing it acknowledged; a power loss can cost at most
// this last second. (Syncing every write would cap QoS 1 at a few hundred
// messages a second.)
const SyncInterval = time.Second

// preparePersistence checks the persistence directory before any socket
// is opened: it is created, and must be writable.
func preparePersistence(b *Broker, path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("persistence_location: %w", err)
	}
	if err := syscall.Access(dir, 0o2|0o1); err != nil { // W_OK|X_OK
		return errs.Wrap(err, fmt.Sprintf("persistence_location %s is not writable by uid %d (the broker keeps its database there)", dir+"/", os.Geteuid()), ErrPersistenceNotWritable)
	}
	if st, err := os.Stat(dir); err == nil && st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
		b.log.Warn("persistence_location is writable by other accounts and not sticky: they can replace the broker's database and TLS ticket keys (which it then refuses or replaces)",
			"dir", dir, "mode", fmt.Sprintf("%04o", st.Mode().Perm()), "fix", "chmod +t "+dir)
	}
	return nil
}

// openStore opens the database, puts its state into the engine, and
// starts the fsync loop. Retained messages under the broker's own
// namespace ($mqttctl/) are deleted instead of restored where a listener
// answers enrolment requests there: an answer is never a retained
// publish, so one left from before the directive was turned on (when the
// ACL file decided) would only be a planted "answer".
func (b *Broker) openStore() error {
	st, err := openPersist(b)
	if err != nil {
		return err
	}
	var drop func(string) bool
	if b.enrol != nil {
		drop = func(t string) bool {
			if !strings.HasPrefix(t, reserved) {
				return false
			}
			b.log.Warn("retained message under the broker's own $mqttctl/ namespace deleted at start: answers are never retained, so it could only mislead a device",
				"topic", t)
			return true
		}
	}
	if err := st.Restore(b.srv, drop); err != nil {
		st.Close()
		return fmt.Errorf("restore %s: %w", b.storePath, err)
	}
	b.store = st
	b.stopSync, b.syncDone = make(chan struct{}), make(chan struct{})
	go b.syncLoop()
	return nil
}

// syncLoop fsyncs the database every SyncInterval.
func (b *Broker) syncLoop() {
	defer close(b.syncDone)
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if err := b.store.Sync(); err != nil {
				b.log.Error("fsync persistence file", "file", b.storePath, "error", err)
			}
		case <-b.stopSync:
			return
		}
	}
}

// closeStore runs after the engine stopped: the last changes are written
// and synced.
func (b *Broker) closeStore() error {
	if b.store == nil {
		return nil
	}
	close(b.stopSync)
	<-b.syncDone
	return b.store.Close()
}

// openPersist opens the persistence database (broker/persist).
func openPersist(b *Broker) (stateStore, error) {
	st, err := persist.Open(b.storePath, b.log)
	switch {
	case err == nil:
		return st, nil
	case errors.Is(err, persist.ErrInUse):
		return nil, errs.Wrap(err, fmt.Sprintf("open %s: another broker holds it locked (two brokers cannot share one persistence_location; give each its own directory)", b.storePath), ErrPersistenceInUse)
	case errors.Is(err, persist.ErrForeignState):
		return nil, err // it names the file and the fix
	}
	return nil, fmt.Errorf("open %s: %w", b.storePath, err)
}
