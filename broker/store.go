package broker

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/hooks/storage/bolt"
	"github.com/mochi-mqtt/server/v2/packets"
	"go.etcd.io/bbolt"
)

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
	engine *engineStore
	jr     *journal
	files  []*os.File // the database files, opened for fsync
	stop   chan struct{}
	done   chan struct{}
}

// SyncInterval is how often the persistence files are fsynced.
const SyncInterval = time.Second

// noSync: writes reach the OS at commit; fsync happens in syncLoop.
func noSync() *bbolt.Options {
	return &bbolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true}
}

func openStore(b *Broker, path string) (*store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("persistence_location: %w", err)
	}
	jr, err := openJournal(path + ".journal")
	if err != nil {
		return nil, err
	}
	return &store{b: b, path: path, jr: jr, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// attach adds the engine's storage hook and the journal; it runs before the
// engine reads its store at start.
func (s *store) attach() error {
	s.engine = &engineStore{new(bolt.Hook)}
	if err := s.b.srv.AddHook(s.engine, &bolt.Options{Path: s.path, Options: noSync()}); err != nil {
		return fmt.Errorf("open %s: %w (is another broker using this persistence_location?)", s.path, err)
	}
	f, err := os.Open(s.path)
	if err != nil {
		return fmt.Errorf("open %s for syncing: %w", s.path, err)
	}
	s.files = append(s.files, f, s.jr.f)
	go s.syncLoop()
	return s.b.srv.AddHook(s, nil)
}

// engineStore is the engine's bolt hook with a fix: it stores inflight
// messages without their packet id (the engine then refuses to resend them
// after a restart: "missing packet id"), though the id is part of the key.
type engineStore struct{ *bolt.Hook }

func (e *engineStore) StoredInflightMessages() ([]storage.Message, error) {
	v, err := e.Hook.StoredInflightMessages()
	for i := range v {
		if v[i].PacketID != 0 {
			continue
		}
		if j := strings.LastIndexByte(v[i].ID, ':'); j >= 0 {
			if n, err := strconv.ParseUint(v[i].ID[j+1:], 10, 16); err == nil {
				v[i].PacketID = uint16(n)
			}
		}
	}
	return v, err
}

// ownPuback reports whether pk is the engine's own PUBACK to a QoS 1
// publisher (built with a creation time; a client's PUBACK read from the
// wire has none).
func ownPuback(pk packets.Packet) bool {
	return pk.FixedHeader.Type == packets.Puback && pk.Created != 0
}

// OnQosPublish does not store the engine's own PUBACK to a QoS 1 publisher.
// The engine deletes it right after writing it, so storing it costs two
// transactions per message; worse, it shares its key (client, packet id)
// with a QoS 1 message queued for that same client, which it would
// overwrite and then delete.
func (e *engineStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, resends int) {
	if ownPuback(pk) {
		return
	}
	e.Hook.OnQosPublish(cl, pk, sent, resends)
}

// OnQosComplete skips the deletion matching a skipped OnQosPublish.
func (e *engineStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if ownPuback(pk) {
		return
	}
	e.Hook.OnQosComplete(cl, pk)
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

// OnPublished clears the journal entry: the message is queued (and stored)
// for every subscriber.
func (s *store) OnPublished(cl *mqtt.Client, pk packets.Packet) {
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline {
		return
	}
	if err := s.jr.del(walKey(cl, pk)); err != nil {
		s.b.log.Error("journal write failed", "error", err)
	}
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
	if s.files == nil {
		s.jr.f.Close() // never attached
	}
	return nil
}
