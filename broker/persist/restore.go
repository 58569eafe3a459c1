package persist

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sort"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
)

// Restore puts the stored state into srv before it serves: every retained
// message (but those drop says to drop, and expired ones: both deleted),
// and every session with its subscriptions and its queued messages in the
// order they were queued (expired ones deleted). The engine numbers a
// restored session's queued messages 1..n (RestoreSession), so Restore
// first renumbers the stored ones 1..n, in the same transaction as the
// clean-up: its later DeleteQueued calls then name the right entries. An
// entry that does not decode, or belongs to no session, is logged and
// deleted: it is never loaded, and never stops the broker. drop may be nil.
//
// Then publishes journalled by the broker before its own engine (the
// file PATH.journal, left by a kill -9) are published again and the
// journal removed once they are committed.
func (s *Store) Restore(srv *engine.Server, drop func(topic string) bool) error {
	return guard(s.path, func() error { return s.restore(srv, drop) })
}

func (s *Store) restore(srv *engine.Server, drop func(topic string) bool) error {
	type sess struct {
		rec    engine.SessionRecord
		subs   []topic.Subscription
		queued []engine.Queued
		in     []uint16 // received QoS 2 ids not yet released
	}
	var retained []*engine.Message
	sessions := map[string]*sess{}
	now := time.Now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var del [][]byte
		flush := func(b *bbolt.Bucket) error {
			for _, k := range del {
				if err := b.Delete(k); err != nil {
					return err
				}
			}
			del = del[:0]
			return nil
		}
		gone := func(k []byte) { del = append(del, append([]byte(nil), k...)) }

		b := tx.Bucket(bucketRetained)
		if err := b.ForEach(func(k, v []byte) error {
			m, err := decodeMessage(v)
			switch {
			case err != nil:
				s.log.Warn("stored retained message does not decode: deleted", "topic", truncate(string(k)), "error", err)
			case m.Topic != string(k):
				s.log.Warn("stored retained message under another topic's key: deleted", "topic", truncate(string(k)))
			case m.Expired(now):
			case drop != nil && drop(m.Topic):
				s.log.Warn("stored retained message dropped at start", "topic", truncate(m.Topic))
			default:
				retained = append(retained, m)
				return nil
			}
			gone(k)
			return nil
		}); err != nil {
			return err
		}
		if err := flush(b); err != nil {
			return err
		}

		b = tx.Bucket(bucketSessions)
		if err := b.ForEach(func(k, v []byte) error {
			r, err := decodeSession(string(k), v)
			if err == nil && r.Expiry == 0 {
				err = errors.New("not a persistent session")
			}
			if err != nil {
				s.log.Warn("stored session does not decode: deleted with its subscriptions and messages", "client", truncate(string(k)), "error", err)
				gone(k)
				return nil
			}
			if r.Expiry != 0xFFFFFFFF && !r.Disconnected.IsZero() && now.Sub(r.Disconnected) >= time.Duration(r.Expiry)*time.Second {
				s.log.Info("stored session expired while the broker was stopped: deleted with its subscriptions and messages", "client", truncate(string(k)))
				gone(k)
				return nil
			}
			sessions[r.ClientID] = &sess{rec: r}
			return nil
		}); err != nil {
			return err
		}
		if err := flush(b); err != nil {
			return err
		}

		b = tx.Bucket(bucketSubs)
		if err := b.ForEach(func(k, v []byte) error {
			client, filter, err := splitClientKey(k)
			ss := sessions[client]
			var sub topic.Subscription
			if err == nil {
				sub, err = decodeSub(client, string(filter), v)
			}
			if err == nil && ss == nil {
				err = errors.New("no such session")
			}
			if err != nil {
				s.log.Warn("stored subscription does not decode: deleted", "key", truncate(string(k)), "error", err)
				gone(k)
				return nil
			}
			ss.subs = append(ss.subs, sub)
			return nil
		}); err != nil {
			return err
		}
		if err := flush(b); err != nil {
			return err
		}

		// Received QoS 2 ids: kept for the sessions restored, deleted for
		// the others.
		b = tx.Bucket(bucketIncoming)
		if b != nil {
			if err := b.ForEach(func(k, _ []byte) error {
				client, id, err := splitClientKey(k)
				ss := sessions[client]
				if err != nil || len(id) != 2 || ss == nil {
					gone(k)
					return nil
				}
				ss.in = append(ss.in, binary.BigEndian.Uint16(id))
				return nil
			}); err != nil {
				return err
			}
			if err := flush(b); err != nil {
				return err
			}
		}

		// Queued messages: keys are client then seq (big endian), so each
		// session's come in the order they were queued. All are deleted
		// and the kept ones put back as 1..n.
		b = tx.Bucket(bucketQueued)
		if err := b.ForEach(func(k, v []byte) error {
			gone(k)
			client, seq, err := splitClientKey(k)
			ss := sessions[client]
			var q engine.Queued
			if err == nil && len(seq) != 8 {
				err = errors.New("bad key")
			}
			if err == nil {
				q, err = decodeQueued(v)
			}
			if err == nil && ss == nil {
				err = errors.New("no such session")
			}
			if err != nil {
				s.log.Warn("stored queued message does not decode: deleted", "key", truncate(string(k)), "error", err)
				return nil
			}
			if !q.M.Expired(now) {
				ss.queued = append(ss.queued, q)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := flush(b); err != nil {
			return err
		}
		var key []byte
		for id, ss := range sessions {
			for i, q := range ss.queued {
				key = appendQueuedKey(key[:0], id, uint64(i+1))
				if err := b.Put(key, appendQueued(nil, q)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("restore from %s: %w", s.path, err)
	}
	for _, m := range retained {
		srv.RestoreRetained(m)
	}
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		ss := sessions[id]
		srv.RestoreSession(ss.rec, ss.subs, ss.queued)
		srv.RestoreIncoming(id, ss.in)
	}
	return s.replayJournal(srv)
}

// walEntry is a publish journalled by the broker before its own engine
// (broker/journal.go): acknowledged, maybe not yet stored.
type walEntry struct {
	Topic   string `json:"t"`
	Payload []byte `json:"p"`
	Qos     byte   `json:"q"`
	Retain  bool   `json:"r"`
}

// replayJournal publishes what the old journal (PATH.journal) held: the
// old broker acknowledged a QoS 1/2 publish before it stored the copies
// for its subscribers, and republished them at its next start. The file
// is removed once the copies are committed (a crash before republishes
// them again: at least once, as before).
func (s *Store) replayJournal(srv *engine.Server) error {
	path := s.path + ".journal"
	f, err := OpenOwn(path, os.O_RDONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	entries := readJournal(bufio.NewReader(f))
	f.Close()
	for _, v := range entries {
		var e walEntry
		if err := json.Unmarshal(v, &e); err != nil || e.Topic == "" || e.Qos > 2 {
			s.log.Warn("journalled publish does not decode: dropped", "error", err)
			continue
		}
		srv.Publish(&engine.Message{Topic: e.Topic, Payload: e.Payload, QoS: e.Qos, Retain: e.Retain})
	}
	s.flush()
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove the old journal %s: %w", path, err)
	}
	if len(entries) > 0 {
		s.log.Info("republished messages acknowledged before an unclean stop of the previous broker", "count", len(entries))
	}
	return nil
}

// readJournal returns the pending entries of an old journal in the order
// they were first written: records of op (1 put, 2 delete), key length
// (2 bytes), value length (4 bytes), key, value; a record cut short by a
// crash ends it.
func readJournal(r *bufio.Reader) [][]byte {
	var order []string
	live := map[string][]byte{}
	for {
		var hdr [7]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			break
		}
		kl, vl := int(binary.BigEndian.Uint16(hdr[1:3])), int(binary.BigEndian.Uint32(hdr[3:7]))
		if vl > 512<<20 {
			break
		}
		b := make([]byte, kl+vl)
		if _, err := io.ReadFull(r, b); err != nil {
			break
		}
		k := string(b[:kl])
		switch hdr[0] {
		case 1:
			if _, ok := live[k]; !ok {
				order = append(order, k)
			}
			live[k] = b[kl:]
		case 2:
			delete(live, k)
		}
	}
	var out [][]byte
	for _, k := range order {
		if v, ok := live[k]; ok {
			out = append(out, v)
			delete(live, k)
		}
	}
	return out
}
