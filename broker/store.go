package broker

import (
	"encoding/binary"
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
// subscriptions, retained messages and queued QoS 1/2 messages, each write
// synced. The engine acknowledges a QoS 1 publish before it queues the
// message for subscribers, though, so a crash between the two would lose an
// acknowledged message. The store therefore journals every QoS > 0 publish
// before the acknowledgement and clears it once the message is queued; at
// start, journalled publishes are published again (at least once).
type store struct {
	mqtt.HookBase
	b      *Broker
	path   string
	engine *engineStore
	wal    *bbolt.DB
}

var walBucket = []byte("publishes")

type walEntry struct {
	Topic   string `json:"t"`
	Payload []byte `json:"p"`
	Qos     byte   `json:"q"`
	Retain  bool   `json:"r"`
}

func openStore(b *Broker, path string) (*store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("persistence_location: %w", err)
	}
	wal, err := bbolt.Open(path+".journal", 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s.journal: %w (is another broker using this persistence_location?)", path, err)
	}
	if err := wal.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(walBucket)
		return err
	}); err != nil {
		wal.Close()
		return nil, err
	}
	return &store{b: b, path: path, wal: wal}, nil
}

// attach adds the engine's storage hook and the journal; it runs before the
// engine reads its store at start.
func (s *store) attach() error {
	s.engine = &engineStore{new(bolt.Hook)}
	if err := s.b.srv.AddHook(s.engine, &bolt.Options{Path: s.path, Options: &bbolt.Options{Timeout: time.Second}}); err != nil {
		return fmt.Errorf("open %s: %w (is another broker using this persistence_location?)", s.path, err)
	}
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

func (s *store) ID() string { return "mqttctl-journal" }

func (s *store) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnPublished }

func walKey(cl *mqtt.Client, pk packets.Packet) []byte {
	k := make([]byte, 0, len(cl.ID)+3)
	k = append(k, cl.ID...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint16(k, pk.PacketID)
}

// OnPublish journals a QoS > 0 publish before it is acknowledged.
func (s *store) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Qos == 0 || cl.Net.Inline {
		return pk, nil
	}
	v, err := json.Marshal(walEntry{Topic: pk.TopicName, Payload: pk.Payload, Qos: pk.FixedHeader.Qos, Retain: pk.FixedHeader.Retain})
	if err != nil {
		return pk, nil
	}
	err = s.wal.Update(func(tx *bbolt.Tx) error { return tx.Bucket(walBucket).Put(walKey(cl, pk), v) })
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
	_ = s.wal.Update(func(tx *bbolt.Tx) error { return tx.Bucket(walBucket).Delete(walKey(cl, pk)) })
}

// replay publishes what the journal holds from before a crash.
func (s *store) replay() error {
	var entries []walEntry
	err := s.wal.Update(func(tx *bbolt.Tx) error {
		bk := tx.Bucket(walBucket)
		if err := bk.ForEach(func(_, v []byte) error {
			var e walEntry
			if json.Unmarshal(v, &e) == nil {
				entries = append(entries, e)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket(walBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucket(walBucket)
		return err
	})
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := s.b.srv.Publish(e.Topic, e.Payload, e.Retain, e.Qos); err != nil {
			return err
		}
	}
	if len(entries) > 0 {
		s.b.log.Info("republished messages acknowledged before an unclean stop", "count", len(entries))
	}
	return nil
}

func (s *store) close() error {
	return s.wal.Close()
}
