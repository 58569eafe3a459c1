package broker

import (
	"bytes"
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"github.com/mochi-mqtt/server/v2/packets"
	"github.com/mochi-mqtt/server/v2/system"
	"go.etcd.io/bbolt"
)

// boltStore is the engine's storage hook with group commit. It keeps the
// bucket, keys and encoding of the engine's own bolt hook (a persistence
// file written before stays readable) but never writes in the caller's
// goroutine: every change is queued to one writer, which applies all that
// is waiting in one transaction (a key changed twice is written once; a
// message queued and acknowledged within the same batch is never written).
// Transactions reach the operating system at commit; store.syncLoop fsyncs.
//
// What is acknowledged but not yet committed is safe in the journal: the
// writer clears a journal entry (clearJournal) only after the batch that
// holds the message's queued copies is committed, so a kill -9 at any
// point republishes it at start (at least once).
type boltStore struct {
	mqtt.HookBase
	db     *bbolt.DB
	log    *slog.Logger
	ops    chan storeOp
	done   chan struct{}
	jr     *journal
	closed bool
	// dropReserved: retained messages under the broker's own namespace
	// ($mqttctl/) are deleted at load instead of restored. Set when a
	// listener answers enrolment requests there: an answer is never a
	// retained publish, so one left from before the directive was turned
	// on (when the ACL file decided) would only be a planted "answer".
	dropReserved bool
}

// storeOp is one queued change: a put (val != nil), a delete, a journal
// entry to clear after the commit, or a flush request.
type storeOp struct {
	key     string
	val     []byte
	journal string
	flushed chan struct{}
}

const (
	boltBucket   = "mochi" // the engine's bolt hook's bucket
	storeQueue   = 8192    // queued changes before callers wait
	maxBatchSize = 4096
)

func openBoltStore(path string, jr *journal, log *slog.Logger) (*boltStore, error) {
	db, err := bbolt.Open(path, 0o600, noSync())
	if err != nil {
		return nil, err
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists([]byte(boltBucket))
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	s := &boltStore{db: db, log: log, ops: make(chan storeOp, storeQueue), done: make(chan struct{}), jr: jr}
	go s.writer()
	return s, nil
}

func (s *boltStore) ID() string { return "mqttctl-store" }

func (s *boltStore) Provides(b byte) bool {
	return bytes.Contains([]byte{
		mqtt.OnSessionEstablished, mqtt.OnDisconnect, mqtt.OnSubscribed, mqtt.OnUnsubscribed,
		mqtt.OnRetainMessage, mqtt.OnWillSent, mqtt.OnQosPublish, mqtt.OnQosComplete, mqtt.OnQosDropped,
		mqtt.OnSysInfoTick, mqtt.OnClientExpired, mqtt.OnRetainedExpired,
		mqtt.StoredClients, mqtt.StoredInflightMessages, mqtt.StoredRetainedMessages,
		mqtt.StoredSubscriptions, mqtt.StoredSysInfo,
	}, []byte{b})
}

// writer applies queued changes in batches until the queue is closed.
func (s *boltStore) writer() {
	defer close(s.done)
	batch := make([]storeOp, 0, maxBatchSize)
	for op := range s.ops {
		batch = append(batch[:0], op)
	fill:
		for len(batch) < maxBatchSize {
			select {
			case op, ok := <-s.ops:
				if !ok {
					break fill
				}
				batch = append(batch, op)
			default:
				break fill
			}
		}
		s.commit(batch)
	}
}

func (s *boltStore) commit(batch []storeOp) {
	last := make(map[string]int, len(batch))
	for i, op := range batch {
		if op.key != "" {
			last[op.key] = i
		}
	}
	if len(last) > 0 {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte(boltBucket))
			for i, op := range batch {
				if op.key == "" || last[op.key] != i {
					continue
				}
				var err error
				if op.val != nil {
					err = b.Put([]byte(op.key), op.val)
				} else {
					err = b.Delete([]byte(op.key))
				}
				if err != nil {
					return fmt.Errorf("%s: %w", op.key, err)
				}
			}
			return nil
		})
		if err != nil {
			// The journal keeps what this batch held for acknowledged
			// publishes: leave their entries for the next start.
			s.log.Error("persistence write failed; unfinished publishes stay journalled", "error", err)
			s.flushDone(batch)
			return
		}
	}
	var clear []string
	for _, op := range batch {
		if op.journal != "" {
			clear = append(clear, op.journal)
		}
	}
	if len(clear) > 0 {
		if err := s.jr.delMany(clear); err != nil {
			s.log.Error("journal write failed", "error", err)
		}
	}
	s.flushDone(batch)
}

func (s *boltStore) flushDone(batch []storeOp) {
	for _, op := range batch {
		if op.flushed != nil {
			close(op.flushed)
		}
	}
}

func (s *boltStore) put(key string, v storage.Serializable) {
	data, err := v.MarshalBinary()
	if err != nil {
		s.log.Error("encode for persistence", "key", key, "error", err)
		return
	}
	s.ops <- storeOp{key: key, val: data}
}

func (s *boltStore) del(key string) { s.ops <- storeOp{key: key} }

// clearJournal clears a journal entry once everything queued before it is
// committed.
func (s *boltStore) clearJournal(key string) { s.ops <- storeOp{journal: key} }

// flush waits until everything queued so far is committed.
func (s *boltStore) flush() {
	ch := make(chan struct{})
	s.ops <- storeOp{flushed: ch}
	<-ch
}

// Stop commits what is queued and closes the database (the engine calls it
// when it closes).
func (s *boltStore) Stop() error {
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.ops)
	<-s.done
	return s.db.Close()
}

func clientKey(cl *mqtt.Client) string { return storage.ClientKey + "_" + cl.ID }

func subscriptionKey(cl *mqtt.Client, filter string) string {
	return storage.SubscriptionKey + "_" + cl.ID + ":" + filter
}

func retainedKey(topic string) string { return storage.RetainedKey + "_" + topic }

func inflightKey(cl *mqtt.Client, pk packets.Packet) string {
	return storage.InflightKey + "_" + cl.ID + ":" + pk.FormatID()
}

func (s *boltStore) OnSessionEstablished(cl *mqtt.Client, _ packets.Packet) { s.updateClient(cl) }

func (s *boltStore) OnWillSent(cl *mqtt.Client, _ packets.Packet) { s.updateClient(cl) }

func (s *boltStore) updateClient(cl *mqtt.Client) {
	if cl.Net.Inline {
		return // in-process clients (bridges) are made anew at start
	}
	props := cl.Properties.Props.Copy(false)
	s.put(clientKey(cl), &storage.Client{
		ID: cl.ID, T: storage.ClientKey, Remote: cl.Net.Remote, Listener: cl.Net.Listener,
		Username: cl.Properties.Username, Clean: cl.Properties.Clean, ProtocolVersion: cl.Properties.ProtocolVersion,
		Properties: storage.ClientProperties{
			SessionExpiryInterval: props.SessionExpiryInterval, AuthenticationMethod: props.AuthenticationMethod,
			AuthenticationData: props.AuthenticationData, RequestProblemInfo: props.RequestProblemInfo,
			RequestResponseInfo: props.RequestResponseInfo, ReceiveMaximum: props.ReceiveMaximum,
			TopicAliasMaximum: props.TopicAliasMaximum, User: props.User, MaximumPacketSize: props.MaximumPacketSize,
		},
		Will: storage.ClientWill(cl.Properties.Will),
	})
}

func (s *boltStore) OnDisconnect(cl *mqtt.Client, _ error, expire bool) {
	if expire && cl.StopCause() != packets.ErrSessionTakenOver {
		s.del(clientKey(cl))
	}
}

func (s *boltStore) OnSubscribed(cl *mqtt.Client, pk packets.Packet, reasonCodes []byte) {
	if cl.Net.Inline {
		return // in-process subscriptions (bridges) are made anew at start
	}
	for i, f := range pk.Filters {
		s.put(subscriptionKey(cl, f.Filter), &storage.Subscription{
			ID: subscriptionKey(cl, f.Filter), T: storage.SubscriptionKey, Client: cl.ID, Qos: reasonCodes[i],
			Filter: f.Filter, Identifier: f.Identifier, NoLocal: f.NoLocal, RetainHandling: f.RetainHandling,
			RetainAsPublished: f.RetainAsPublished,
		})
	}
}

func (s *boltStore) OnUnsubscribed(cl *mqtt.Client, pk packets.Packet) {
	for _, f := range pk.Filters {
		s.del(subscriptionKey(cl, f.Filter))
	}
}

func messageProps(pk packets.Packet) storage.MessageProperties {
	p := pk.Properties.Copy(false)
	return storage.MessageProperties{
		PayloadFormat: p.PayloadFormat, MessageExpiryInterval: p.MessageExpiryInterval, ContentType: p.ContentType,
		ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData, SubscriptionIdentifier: p.SubscriptionIdentifier,
		TopicAlias: p.TopicAlias, User: p.User,
	}
}

func (s *boltStore) OnRetainMessage(cl *mqtt.Client, pk packets.Packet, r int64) {
	if r == -1 {
		s.del(retainedKey(pk.TopicName))
		return
	}
	s.put(retainedKey(pk.TopicName), &storage.Message{
		ID: retainedKey(pk.TopicName), T: storage.RetainedKey, FixedHeader: pk.FixedHeader, TopicName: pk.TopicName,
		Payload: pk.Payload, Created: pk.Created, Client: cl.ID, Origin: pk.Origin, Properties: messageProps(pk),
	})
}

// ownPuback reports whether pk is the engine's own PUBACK to a QoS 1
// publisher (built with a creation time; a client's PUBACK read from the
// wire has none).
func ownPuback(pk packets.Packet) bool {
	return pk.FixedHeader.Type == packets.Puback && pk.Created != 0
}

// OnQosPublish stores a message in flight to cl. Not the engine's own
// PUBACK to a QoS 1 publisher: the engine deletes it right after writing
// it, and it shares its key (client, packet id) with a QoS 1 message
// queued for that same client, which it would overwrite and then delete.
func (s *boltStore) OnQosPublish(cl *mqtt.Client, pk packets.Packet, sent int64, _ int) {
	if ownPuback(pk) {
		return
	}
	s.put(inflightKey(cl, pk), &storage.Message{
		ID: inflightKey(cl, pk), T: storage.InflightKey, Client: cl.ID, Origin: pk.Origin, PacketID: pk.PacketID,
		FixedHeader: pk.FixedHeader, TopicName: pk.TopicName, Payload: pk.Payload, Sent: sent, Created: pk.Created,
		Properties: messageProps(pk),
	})
}

func (s *boltStore) OnQosComplete(cl *mqtt.Client, pk packets.Packet) {
	if !ownPuback(pk) {
		s.del(inflightKey(cl, pk))
	}
}

func (s *boltStore) OnQosDropped(cl *mqtt.Client, pk packets.Packet) { s.OnQosComplete(cl, pk) }

func (s *boltStore) OnSysInfoTick(sys *system.Info) {
	s.put(storage.SysInfoKey, &storage.SystemInfo{ID: storage.SysInfoKey, T: storage.SysInfoKey, Info: *sys})
}

func (s *boltStore) OnRetainedExpired(filter string) { s.del(retainedKey(filter)) }

func (s *boltStore) OnClientExpired(cl *mqtt.Client) { s.del(clientKey(cl)) }

// iter calls visit for the value of every key with the prefix.
func (s *boltStore) iter(prefix string, visit func([]byte) error) error {
	return s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket([]byte(boltBucket)).Cursor()
		for k, v := c.Seek([]byte(prefix)); k != nil && bytes.HasPrefix(k, []byte(prefix)); k, v = c.Next() {
			if err := visit(v); err != nil {
				return err
			}
		}
		return nil
	})
}

func stored[T any, P interface {
	*T
	UnmarshalBinary([]byte) error
}](s *boltStore, prefix string) ([]T, error) {
	v := []T{}
	err := s.iter(prefix, func(data []byte) error {
		var obj T
		if err := P(&obj).UnmarshalBinary(data); err != nil {
			return fmt.Errorf("persistence entry under %s: %w", prefix, err)
		}
		v = append(v, obj)
		return nil
	})
	return v, err
}

func (s *boltStore) StoredClients() ([]storage.Client, error) {
	return stored[storage.Client](s, storage.ClientKey)
}

func (s *boltStore) StoredSubscriptions() ([]storage.Subscription, error) {
	return stored[storage.Subscription](s, storage.SubscriptionKey)
}

func (s *boltStore) StoredRetainedMessages() ([]storage.Message, error) {
	v, err := stored[storage.Message](s, storage.RetainedKey)
	if !s.dropReserved {
		return v, err
	}
	kept := v[:0]
	for _, m := range v {
		if strings.HasPrefix(m.TopicName, reserved) {
			s.log.Warn("retained message under the broker's own namespace deleted at start: enrolment answers are never retained", "topic", m.TopicName)
			s.del(m.ID)
			continue
		}
		kept = append(kept, m)
	}
	return kept, err
}

// StoredInflightMessages also fills in the packet id of messages that the
// engine's own bolt hook stored without it (the id is the key's last part):
// the engine refuses to resend a message without one.
func (s *boltStore) StoredInflightMessages() ([]storage.Message, error) {
	v, err := stored[storage.Message](s, storage.InflightKey)
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

func (s *boltStore) StoredSysInfo() (storage.SystemInfo, error) {
	var v storage.SystemInfo
	err := s.db.View(func(tx *bbolt.Tx) error {
		data := tx.Bucket([]byte(boltBucket)).Get([]byte(storage.SysInfoKey))
		if data == nil {
			return nil
		}
		return v.UnmarshalBinary(data)
	})
	if err != nil {
		return v, fmt.Errorf("persistence system info: %w", err)
	}
	return v, nil
}
