package persist

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/errs"
)

// ErrInUse: another process holds the database's lock (two brokers with
// the same persistence_location).
var ErrInUse = errors.New("persistence database in use by another broker")

// Buckets of the layout (see the package doc).
var (
	bucketMeta     = []byte("meta")
	bucketSessions = []byte("sessions")
	bucketSubs     = []byte("subscriptions")
	bucketRetained = []byte("retained")
	bucketQueued   = []byte("queued")
	// bucketIncoming: client then packet id (2 bytes, big endian) of a
	// received QoS 2 message not yet released; no value.
	bucketIncoming = []byte("incoming")
	keyFormat      = []byte("format")
)

// formatV1 is the layout this package writes (meta/format).
const formatV1 = 1

const (
	// maxPending is how many changes wait for the writer before callers
	// wait for it to take them (memory bound under a disk slower than the
	// load).
	maxPending = 1 << 16
	// maxKey is bbolt's key size limit: a longer topic or client id is not
	// stored (logged), rather than failing its whole batch.
	maxKey = bbolt.MaxKeySize
)

// Store is the engine's persistence in a bbolt database: the engine's
// persistence calls hand their change to one writer goroutine, which
// commits all that waits in one transaction (group commit); Durable waits
// for the transaction that holds what was handed before it.
type Store struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger

	mu        sync.Mutex
	cond      *sync.Cond // broadcast when a batch is taken and when it is committed
	pending   []op
	handed    uint64 // changes handed to the store so far
	committed uint64 // changes the writer is done with (committed, or logged as failed)
	closed    bool
	wake      chan struct{} // cap 1: there is work for the writer
	done      chan struct{} // the writer returned

	syncMu   sync.Mutex // Sync against Close (not mu: an fsync must not hold up callers)
	dbClosed bool

	// holdCommit, when set (tests), runs in the writer before each commit.
	holdCommit func()
	commits    int // transactions the writer ran (its own; tests read it after Close)
	// The writer's own, kept between batches: the last change to each key
	// in the batch, and where a message's encoding is in the batch's buffer
	// (a message queued for many sessions is encoded once).
	last    map[opKey]int
	encoded map[*engine.Message][2]int
}

type opKind uint8

const (
	opSaveSession opKind = iota + 1
	opDeleteSession
	opSaveSub
	opDeleteSub
	opSaveRetained
	opDeleteRetained
	opSaveQueued
	opDeleteQueued
	opSaveIncoming
	opDeleteIncoming
)

// op is one change: client and name (filter or topic) and seq say which
// key, sess, sub and msg the value.
type op struct {
	kind   opKind
	client string
	name   string
	seq    uint64
	sess   engine.SessionRecord
	sub    topic.Subscription
	msg    *engine.Message
	q      engine.Queued // opSaveQueued: the delivery (q.M is msg)
}

// Open opens the database at path (creating it and its directory),
// through OpenOwn: ErrForeignState for a file this broker did not write,
// ErrInUse when another process holds it for a second. A database in the
// layout of mochi-mqtt's bolt hook (the broker before its own engine) is
// converted (migrateMochi).
func Open(path string, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("persistence_location: %w", err)
	}
	// NoSync: a commit reaches the operating system (a killed broker
	// loses nothing); Sync, every second, reaches the disk. Syncing every
	// commit would cap QoS 1 at the disk's flushes per second.
	if err := checkFile(path, log); err != nil {
		return nil, err
	}
	if err := walk(path); err != nil {
		return nil, err
	}
	var db *bbolt.DB
	err := guard(path, func() (err error) {
		db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: true, NoFreelistSync: true, OpenFile: OpenOwn})
		return err
	})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return nil, errs.Wrap(err, fmt.Sprintf("open %s: another broker holds it locked (two brokers cannot share one persistence_location; give each its own directory)", path), ErrInUse)
		case errors.Is(err, ErrForeignState):
			return nil, err // it names the file and the fix
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch), errors.Is(err, bolterrors.ErrChecksum):
			return nil, fmt.Errorf("open %s: %w: not a database this broker can read; move it away (the broker then starts with an empty store)", path, err)
		case errors.Is(err, ErrDamaged):
			return nil, err
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	s := &Store{db: db, path: path, log: log, wake: make(chan struct{}, 1), done: make(chan struct{}),
		last: map[opKey]int{}, encoded: map[*engine.Message][2]int{}}
	s.cond = sync.NewCond(&s.mu)
	if err := s.prepare(); err != nil {
		db.Close()
		return nil, err
	}
	go s.writer()
	return s, nil
}

// prepare converts a mochi database and makes the buckets, in one
// transaction.
func (s *Store) prepare() error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			if v := m.Get(keyFormat); len(v) != 1 || v[0] != formatV1 {
				return fmt.Errorf("format %x, this broker reads format %d: written by another version of mqttctl; run that version, or move the file away (the broker then starts with an empty store)", v, formatV1)
			}
		}
		for _, b := range [][]byte{bucketMeta, bucketSessions, bucketSubs, bucketRetained, bucketQueued, bucketIncoming} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keyFormat, []byte{formatV1}); err != nil {
			return err
		}
		return s.migrateMochi(tx)
	})
	if err != nil {
		return fmt.Errorf("open %s: %w", s.path, err)
	}
	return nil
}

// hand queues one change for the writer; it waits only while maxPending
// changes are already waiting.
func (s *Store) hand(o op) {
	s.mu.Lock()
	for len(s.pending) >= maxPending && !s.closed {
		s.cond.Wait()
	}
	if s.closed {
		s.mu.Unlock()
		s.log.Error("persistence change after the store was closed, not stored", "client", o.client, "name", o.name)
		return
	}
	s.pending = append(s.pending, o)
	s.handed++
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// SaveSession stores a persistent session (engine.Hooks).
func (s *Store) SaveSession(r engine.SessionRecord) {
	s.hand(op{kind: opSaveSession, client: r.ClientID, sess: r})
}

// DeleteSession removes a session with its subscriptions and queued
// messages (engine.Hooks).
func (s *Store) DeleteSession(clientID string) { s.hand(op{kind: opDeleteSession, client: clientID}) }

// SaveSubscription stores a persistent session's subscription (engine.Hooks).
func (s *Store) SaveSubscription(clientID string, sub topic.Subscription) {
	s.hand(op{kind: opSaveSub, client: clientID, name: sub.Filter, sub: sub})
}

// DeleteSubscription removes one (engine.Hooks).
func (s *Store) DeleteSubscription(clientID, filter string) {
	s.hand(op{kind: opDeleteSub, client: clientID, name: filter})
}

// SaveRetained stores m as its topic's retained message (engine.Hooks).
// m is immutable once published: the writer encodes it later.
func (s *Store) SaveRetained(m *engine.Message) {
	s.hand(op{kind: opSaveRetained, name: m.Topic, msg: m})
}

// DeleteRetained removes topic's retained message (engine.Hooks).
func (s *Store) DeleteRetained(topic string) { s.hand(op{kind: opDeleteRetained, name: topic}) }

// SaveQueued stores a message owed to a persistent session under its
// sequence number (engine.Hooks).
func (s *Store) SaveQueued(clientID string, seq uint64, q engine.Queued) {
	s.hand(op{kind: opSaveQueued, client: clientID, seq: seq, msg: q.M, q: q})
}

// SaveIncoming stores the packet id of a received QoS 2 message not yet
// released (engine.IncomingStore); DeleteIncoming removes it at PUBREL.
func (s *Store) SaveIncoming(clientID string, id uint16) {
	s.hand(op{kind: opSaveIncoming, client: clientID, seq: uint64(id)})
}

func (s *Store) DeleteIncoming(clientID string, id uint16) {
	s.hand(op{kind: opDeleteIncoming, client: clientID, seq: uint64(id)})
}

// DeleteQueued removes it once acknowledged or dropped (engine.Hooks).
func (s *Store) DeleteQueued(clientID string, seq uint64) {
	s.hand(op{kind: opDeleteQueued, client: clientID, seq: seq})
}

// Durable returns once every change handed to the store before the call
// is committed (engine.Durability): the engine calls it before it
// acknowledges a QoS 1/2 publish, so an acknowledged message survives a
// kill -9. Callers that arrive while a batch commits share the next one.
// A batch that fails to commit is logged and does not hold callers.
func (s *Store) Durable(*engine.Client) {
	s.mu.Lock()
	want := s.handed
	for s.committed < want && !s.closed {
		s.cond.Wait()
	}
	s.mu.Unlock()
}

// flush is Durable for the store's own use.
func (s *Store) flush() { s.Durable(nil) }

// writer commits what is pending, a batch at a time, until Close.
func (s *Store) writer() {
	defer close(s.done)
	var spare []op
	var buf []byte
	for {
		s.mu.Lock()
		for len(s.pending) == 0 && !s.closed {
			s.mu.Unlock()
			<-s.wake
			s.mu.Lock()
		}
		if len(s.pending) == 0 { // closed and all done
			s.mu.Unlock()
			return
		}
		if len(s.pending) < 4 && !s.closed {
			// Let publishers that are about to hand a change do so first,
			// so that they share this commit.
			s.mu.Unlock()
			runtime.Gosched()
			s.mu.Lock()
		}
		batch, upto := s.pending, s.handed
		s.pending = spare[:0]
		s.cond.Broadcast() // room for callers waiting in hand
		s.mu.Unlock()

		buf = s.commit(batch, buf[:0])

		s.mu.Lock()
		s.committed = upto
		s.cond.Broadcast()
		s.mu.Unlock()
		clear(batch)
		spare = batch
		if cap(spare) > 4096 { // a burst's arrays are not kept while idle
			spare = nil
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
	}
}

// opKey identifies a stored key, to find changes a later one in the same
// batch supersedes.
type opKey struct {
	b      byte // 's'ession, 'u'ubscription, 'r'etained, 'q'ueued
	client string
	name   string
	seq    uint64
}

func (o *op) key() (opKey, bool) {
	switch o.kind {
	case opSaveSession:
		return opKey{b: 's', client: o.client}, true
	case opSaveSub, opDeleteSub:
		return opKey{b: 'u', client: o.client, name: o.name}, true
	case opSaveRetained, opDeleteRetained:
		return opKey{b: 'r', name: o.name}, true
	case opSaveQueued, opDeleteQueued:
		return opKey{b: 'q', client: o.client, seq: o.seq}, true
	case opSaveIncoming, opDeleteIncoming:
		return opKey{b: 'i', client: o.client, seq: o.seq}, true
	}
	return opKey{}, false // DeleteSession: a range, applied in order
}

// commit applies batch in one transaction, in order, skipping a change
// that a later one to the same key replaces (a message queued and
// acknowledged within the batch is never written). buf holds the keys and
// values until the commit (bbolt needs them until then).
func (s *Store) commit(batch []op, buf []byte) []byte {
	if s.holdCommit != nil {
		s.holdCommit()
	}
	s.commits++
	if len(s.last) > 4096 { // clear costs the map's size: do not keep a burst's
		s.last, s.encoded = map[opKey]int{}, map[*engine.Message][2]int{}
	}
	last, encoded := s.last, s.encoded
	clear(last)
	clear(encoded)
	for i := range batch {
		if k, ok := batch[i].key(); ok {
			last[k] = i
		}
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var buckets [4]*bbolt.Bucket // opened when first used (each open allocates)
		bucket := func(i int, name []byte) *bbolt.Bucket {
			if buckets[i] == nil {
				buckets[i] = tx.Bucket(name)
			}
			return buckets[i]
		}
		for i := range batch {
			o := &batch[i]
			if k, ok := o.key(); ok && last[k] != i {
				continue
			}
			var b *bbolt.Bucket
			var del bool
			start := len(buf)
			switch o.kind {
			case opDeleteSession:
				if err := deleteSession(tx, o.client); err != nil {
					return err
				}
				continue
			case opSaveSession:
				b, buf = bucket(0, bucketSessions), append(buf, o.client...)
			case opSaveSub, opDeleteSub:
				b, buf, del = bucket(1, bucketSubs), appendSubKey(buf, o.client, o.name), o.kind == opDeleteSub
			case opSaveRetained, opDeleteRetained:
				b, buf, del = bucket(2, bucketRetained), append(buf, o.name...), o.kind == opDeleteRetained
			case opSaveQueued, opDeleteQueued:
				b, buf, del = bucket(3, bucketQueued), appendQueuedKey(buf, o.client, o.seq), o.kind == opDeleteQueued
			case opSaveIncoming, opDeleteIncoming:
				b, buf, del = tx.Bucket(bucketIncoming), appendIncomingKey(buf, o.client, uint16(o.seq)), o.kind == opDeleteIncoming
			}
			key := buf[start:len(buf):len(buf)]
			if len(key) == 0 || len(key) > maxKey {
				s.log.Error("persistence key too long or empty, not stored", "client", o.client, "name", truncate(o.name), "bytes", len(key))
				continue
			}
			if del {
				if err := b.Delete(key); err != nil {
					return err
				}
				continue
			}
			vstart := len(buf)
			switch o.kind {
			case opSaveSession:
				buf = appendSession(buf, o.sess)
			case opSaveSub:
				buf = appendSub(buf, &o.sub)
			case opSaveIncoming:
				buf = append(buf, valueV1) // the key is the record
			default:
				if o.kind == opSaveQueued {
					buf = appendQueuedHead(buf, o.q)
				}
				if at, ok := encoded[o.msg]; ok {
					buf = append(buf, buf[at[0]:at[1]]...)
				} else {
					mstart := len(buf)
					buf = appendMessage(buf, o.msg)
					encoded[o.msg] = [2]int{mstart, len(buf)}
				}
			}
			if err := b.Put(key, buf[vstart:len(buf):len(buf)]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		s.log.Error("persistence write failed: this batch of changes is not stored", "changes", len(batch), "error", err)
	}
	return buf
}

// deleteSession removes client's session, subscriptions and queued
// messages (in the caller's transaction).
func deleteSession(tx *bbolt.Tx, client string) error {
	if err := tx.Bucket(bucketSessions).Delete([]byte(client)); err != nil {
		return err
	}
	prefix := appendClientPrefix(nil, client)
	for _, b := range []*bbolt.Bucket{tx.Bucket(bucketSubs), tx.Bucket(bucketQueued), tx.Bucket(bucketIncoming)} {
		if err := deletePrefix(b, prefix); err != nil {
			return err
		}
	}
	return nil
}

// deletePrefix deletes every key of b that starts with prefix.
func deletePrefix(b *bbolt.Bucket, prefix []byte) error {
	c := b.Cursor()
	// Seek again after each delete: a cursor's Next after Delete may skip a key.
	for k, _ := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, _ = c.Seek(prefix) {
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

func hasPrefix(k, prefix []byte) bool {
	return len(k) >= len(prefix) && string(k[:len(prefix)]) == string(prefix)
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Sync flushes the database to disk (fdatasync). Commits reach the
// operating system without it; the broker calls it every second and at
// close, so a power loss costs at most the last second.
func (s *Store) Sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	if s.dbClosed {
		return nil // Close synced
	}
	if err := s.db.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", s.path, err)
	}
	return nil
}

// Close commits what is pending, syncs and closes the database. Changes
// handed after Close are logged and dropped.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.cond.Broadcast()
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
	<-s.done
	err := s.Sync()
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.dbClosed = true
	if cerr := s.db.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", s.path, cerr)
	}
	return err
}
