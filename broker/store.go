package broker

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

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

// store makes persistence durable. The engine's bolt hook keeps sessions,
// subscriptions, retained messages and queued QoS 1/2 messages. Every write
// reaches the operating system before the engine goes on, so a killed broker
// (SIGTERM, kill -9, a crash) loses nothing it acknowledged; the files are
// fsynced once a second (SyncInterval) and at shutdown, so a power loss can
// cost at most that last second. (Syncing every write would cap QoS 1 at a
// few hundred messages a second.) The engine acknowledges a QoS 1 publish before it queues the
// message for subscribers, though, so a crash between the two would lose an
// acknowledged message. The store therefore journals every QoS > 0 publish
// before the acknowledgement and clears it once the message is queued; at
// start, journalled publishes are published again (at least once).
type store struct {
	mqtt.HookBase
	b      *Broker
	path   string
	engine *boltStore
	jr     *journal
	files  []*os.File // the database files, opened for fsync
	stop   chan struct{}
	done   chan struct{}
}

// SyncInterval is how often the persistence files are fsynced.
const SyncInterval = time.Second

// noSync: writes reach the OS at commit; fsync happens in syncLoop. The
// database is opened through openOwnState: never one serve did not write.
func noSync() *bbolt.Options {
	return &bbolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true, OpenFile: openOwnState}
}

// ErrForeignState: a persistence file (the database or its journal) that
// serve did not write. The persistence directory may be writable by another
// account (mqttctl up makes it root:mosquitto 0770 so that mosquitto can run
// the same config); a database or journal planted there would inject
// retained messages, sessions, subscriptions or publishes.
var ErrForeignState = errors.New("persistence file not written by this broker")

// openOwnState opens a persistence file without following a symbolic link
// and refuses it unless it is serve's own (ownFile): a regular file owned by
// serve's effective uid, no group or other permission. It is checked on the
// descriptor it returns, so a file swapped in meanwhile is caught too. A
// file it creates is serve's own.
func openOwnState(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, perm)
	if errors.Is(err, syscall.ELOOP) {
		err = errors.New("a symbolic link")
	} else if err == nil {
		if err = ownFile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, errs.Wrap(err, fmt.Sprintf("%s: %v; the broker keeps sessions, retained messages and queued publishes there and does not load what another account could have written: if this broker wrote it, chown %d %s && chmod 600 %s; otherwise move it away (the broker then starts with an empty store)",
			name, err, geteuid(), name, name), ErrForeignState)
	}
	return f, nil
}

func openStore(b *Broker, path string) (*store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("persistence_location: %w", err)
	}
	if err := syscall.Access(filepath.Dir(path), 0o2|0o1); err != nil { // W_OK|X_OK
		return nil, errs.Wrap(err, fmt.Sprintf("persistence_location %s is not writable by uid %d (the broker keeps its database there)", filepath.Dir(path)+"/", geteuid()), ErrPersistenceNotWritable)
	}
	if st, err := os.Stat(filepath.Dir(path)); err == nil && st.Mode().Perm()&0o022 != 0 && st.Mode()&os.ModeSticky == 0 {
		b.log.Warn("persistence_location is writable by other accounts and not sticky: they can replace the broker's database, journal and TLS ticket keys (which it then refuses or replaces)",
			"dir", filepath.Dir(path), "mode", fmt.Sprintf("%04o", st.Mode().Perm()), "fix", "chmod +t "+filepath.Dir(path))
	}
	jr, err := openJournal(path + ".journal")
	if err != nil {
		return nil, err
	}
	return &store{b: b, path: path, jr: jr, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// attach adds the storage hook and the journal; it runs before the engine
// reads its store at start.
func (s *store) attach() error {
	st, err := openBoltStore(s.path, s.jr, s.b.log)
	if err != nil {
		if errors.Is(err, bolterrors.ErrTimeout) {
			return errs.Wrap(err, fmt.Sprintf("open %s: another broker holds it locked (two brokers cannot share one persistence_location; give each its own directory)", s.path), ErrPersistenceInUse)
		}
		if errors.Is(err, ErrForeignState) {
			return err // it names the file and the fix
		}
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	st.dropReserved = s.b.enrol != nil
	s.engine = st
	if err := s.b.srv.AddHook(st, nil); err != nil {
		return err
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open %s for syncing: %w", s.path, err)
	}
	s.files = append(s.files, f)
	go s.syncLoop()
	return s.b.srv.AddHook(s, nil)
}

func (s *store) ID() string { return "mqttctl-journal" }

func (s *store) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnPublished }

func walKey(cl *mqtt.Client, pk packets.Packet) string {
	return cl.ID + "\x00" + strconv.Itoa(int(pk.PacketID))
}

// OnPublish journals a QoS > 0 publish before it is acknowledged.
func (s *store) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline {
		return pk, nil
	}
	v, err := json.Marshal(walEntry{Topic: pk.TopicName, Payload: pk.Payload, Qos: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain})
	if err == nil {
		err = s.jr.put(walKey(cl, pk), v)
	}
	if err != nil {
		s.b.log.Error("journal write failed", "error", err)
	}
	return pk, nil
}

// OnPublished has the journal entry cleared once the message's queued
// copies, one per subscriber, are committed (boltStore).
func (s *store) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline {
		return
	}
	s.engine.clearJournal(walKey(cl, pk))
}

// replay publishes what the journal held from before an unclean stop.
func (s *store) replay() error {
	pending := s.jr.recovered
	s.jr.recovered = nil
	for _, v := range pending {
		var e walEntry
		if json.Unmarshal(v, &e) != nil {
			continue
		}
		if err := s.b.srv.Publish(e.Topic, e.Payload, e.Retain, e.Qos); err != nil {
			return err
		}
	}
	if len(pending) > 0 {
		s.b.log.Info("republished messages acknowledged before an unclean stop", "count", len(pending))
	}
	return s.jr.reset()
}

// syncLoop fsyncs the database files every SyncInterval (fsync on any
// descriptor of a file flushes all its written pages).
func (s *store) syncLoop() {
	defer close(s.done)
	t := time.NewTicker(SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.sync()
		case <-s.stop:
			return
		}
	}
}

func (s *store) sync() {
	for _, f := range s.files {
		if err := f.Sync(); err != nil {
			s.b.log.Error("fsync persistence file", "file", f.Name(), "error", err)
		}
	}
	if err := s.jr.sync(); err != nil {
		s.b.log.Error("fsync journal", "error", err)
	}
}

// close runs after the engine (and its bolt hook) stopped.
func (s *store) close() error {
	if s.files != nil {
		close(s.stop)
		<-s.done
	}
	s.sync()
	for _, f := range s.files {
		f.Close()
	}
	return s.jr.close()
}
