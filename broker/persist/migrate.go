package persist

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
)

// The layout of mochi-mqtt v2's bolt hook, which `serve` used before its
// own engine: one bucket "mochi", keys CL_<client>, SUB_<client>:<filter>,
// RET_<topic>, IFM_<client>:<packet id>, SYS_..., each the JSON of a
// struct of mochi's hooks/storage package. Only the fields read here are
// mirrored (mochi itself is not imported).
var bucketMochi = []byte("mochi")

type mochiUserProperty struct {
	Key string `json:"k"`
	Val string `json:"v"`
}

type mochiClient struct {
	ID              string `json:"id"`
	Username        []byte `json:"username"`
	ProtocolVersion byte   `json:"protocolVersion"`
	Clean           bool   `json:"clean"`
	Properties      struct {
		SessionExpiryInterval uint32 `json:"sessionExpiryInterval"`
	} `json:"properties"`
}

type mochiSubscription struct {
	Client            string `json:"client"`
	Filter            string `json:"filter"`
	Identifier        int    `json:"identifier"`
	RetainHandling    byte   `json:"retain_handling"`
	Qos               byte   `json:"qos"`
	RetainAsPublished bool   `json:"retain_as_pub"`
	NoLocal           bool   `json:"no_local"`
}

type mochiMessage struct {
	Properties struct {
		CorrelationData       []byte              `json:"correlationData"`
		User                  []mochiUserProperty `json:"user"`
		ContentType           string              `json:"contentType"`
		ResponseTopic         string              `json:"responseTopic"`
		MessageExpiryInterval uint32              `json:"messageExpiry"`
		PayloadFormat         byte                `json:"payloadFormat"`
		PayloadFormatFlag     bool                `json:"payloadFormatFlag"`
	} `json:"properties"`
	Payload     []byte `json:"payload"`
	Client      string `json:"client"`
	Origin      string `json:"origin"`
	TopicName   string `json:"topic_name"`
	FixedHeader struct {
		Type   byte `json:"type"`
		Qos    byte `json:"qos"`
		Retain bool `json:"retain"`
	} `json:"fixedheader"`
	Created  int64  `json:"created"` // Unix seconds
	PacketID uint16 `json:"packet_id"`
}

func (mm *mochiMessage) message() *engine.Message {
	m := &engine.Message{Topic: mm.TopicName, Payload: mm.Payload, QoS: mm.FixedHeader.Qos, Retain: mm.FixedHeader.Retain,
		From: mm.Origin, Created: time.Unix(mm.Created, 0)}
	if m.Payload == nil {
		m.Payload = []byte{}
	}
	p := mm.Properties
	if p.PayloadFormatFlag || p.MessageExpiryInterval > 0 || p.ContentType != "" || p.ResponseTopic != "" || p.CorrelationData != nil || len(p.User) > 0 {
		mp := &engine.MessageProps{PayloadFormat: p.PayloadFormat, HasPayloadFormat: p.PayloadFormatFlag, MessageExpiry: p.MessageExpiryInterval,
			ContentType: p.ContentType, ResponseTopic: p.ResponseTopic, CorrelationData: p.CorrelationData}
		for _, u := range p.User {
			mp.User = append(mp.User, engine.UserProperty{Key: u.Key, Value: u.Val})
		}
		m.Props = mp
	}
	return m
}

// migrateMochi converts a mochi bucket into this package's layout and
// deletes it, in the caller's transaction: a crash before the commit
// leaves the old layout as it was, to be converted at the next Open.
//
// A session is kept when mochi would have kept it (MQTT 5 with a session
// expiry, or 3.1.1 without clean session, which never expires), with its
// subscriptions and its in-flight QoS 1/2 messages (mochi's queue), in
// the order mochi sent them (created, then packet id); PUBREC/PUBREL
// states are not messages and are dropped. Retained messages keep their
// properties and creation time (mochi's, in seconds). An entry that does
// not decode is logged and dropped; so are mochi's $SYS counters.
func (s *Store) migrateMochi(tx *bbolt.Tx) error {
	old := tx.Bucket(bucketMochi)
	if old == nil {
		return nil
	}
	type queuedMsg struct {
		created int64
		id      uint16
		m       *engine.Message
	}
	sessions := map[string]engine.SessionRecord{}
	subs := map[string][]topic.Subscription{}
	queued := map[string][]queuedMsg{}
	var retained []*engine.Message
	var dropped int
	bad := func(k []byte, err error) {
		dropped++
		s.log.Warn("old persistence entry not converted", "key", truncate(string(k)), "error", err)
	}
	err := old.ForEach(func(k, v []byte) error {
		key := string(k)
		switch {
		case strings.HasPrefix(key, "CL_"):
			var c mochiClient
			if err := json.Unmarshal(v, &c); err != nil {
				bad(k, err)
				return nil
			}
			var expiry uint32
			switch {
			case c.ProtocolVersion == 5:
				expiry = c.Properties.SessionExpiryInterval
			case !c.Clean:
				expiry = 0xFFFFFFFF
			}
			if expiry == 0 || c.ID == "" {
				return nil // mochi expires it at its load too
			}
			sessions[c.ID] = engine.SessionRecord{ClientID: c.ID, Username: string(c.Username), Version: c.ProtocolVersion, Expiry: expiry}
		case strings.HasPrefix(key, "SUB_"):
			var sub mochiSubscription
			if err := json.Unmarshal(v, &sub); err != nil || sub.Client == "" || sub.Filter == "" || sub.Qos > 2 {
				bad(k, fmt.Errorf("bad subscription: %v", err))
				return nil
			}
			subs[sub.Client] = append(subs[sub.Client], topic.Subscription{Client: sub.Client, Filter: sub.Filter, QoS: sub.Qos,
				NoLocal: sub.NoLocal, RetainAsPublished: sub.RetainAsPublished, RetainHandling: sub.RetainHandling, ID: uint32(sub.Identifier)})
		case strings.HasPrefix(key, "RET_"):
			var mm mochiMessage
			if err := json.Unmarshal(v, &mm); err != nil || mm.TopicName == "" || mm.FixedHeader.Qos > 2 {
				bad(k, fmt.Errorf("bad retained message: %v", err))
				return nil
			}
			retained = append(retained, mm.message())
		case strings.HasPrefix(key, "IFM_"):
			var mm mochiMessage
			if err := json.Unmarshal(v, &mm); err != nil || mm.Client == "" || mm.FixedHeader.Qos > 2 {
				bad(k, fmt.Errorf("bad queued message: %v", err))
				return nil
			}
			if mm.FixedHeader.Type != 3 || mm.TopicName == "" { // not a PUBLISH: an ack state
				return nil
			}
			if mm.PacketID == 0 { // mochi's own hook left it out; it is the key's last part
				if i := strings.LastIndexByte(key, ':'); i >= 0 {
					if n, err := strconv.ParseUint(key[i+1:], 10, 16); err == nil {
						mm.PacketID = uint16(n)
					}
				}
			}
			queued[mm.Client] = append(queued[mm.Client], queuedMsg{mm.Created, mm.PacketID, mm.message()})
		}
		return nil
	})
	if err != nil {
		return err
	}
	var buf []byte
	for id, r := range sessions {
		if len(appendQueuedKey(nil, id, 0)) > maxKey {
			bad([]byte("CL_"+id), fmt.Errorf("client id longer than %d bytes", maxKey-10))
			continue
		}
		if err := tx.Bucket(bucketSessions).Put([]byte(id), appendSession(nil, r)); err != nil {
			return fmt.Errorf("convert session %s: %w", id, err)
		}
		for i := range subs[id] {
			buf = appendSubKey(buf[:0], id, subs[id][i].Filter)
			if err := tx.Bucket(bucketSubs).Put(buf, appendSub(nil, &subs[id][i])); err != nil {
				return fmt.Errorf("convert subscription %s %s: %w", id, subs[id][i].Filter, err)
			}
		}
		q := queued[id]
		sort.SliceStable(q, func(i, j int) bool {
			if q[i].created != q[j].created {
				return q[i].created < q[j].created
			}
			return q[i].id < q[j].id
		})
		for i, m := range q {
			buf = appendQueuedKey(buf[:0], id, uint64(i+1))
			// mochi kept the message as it was to be sent: its QoS is the
			// delivery's.
			if err := tx.Bucket(bucketQueued).Put(buf, appendQueued(nil, engine.Queued{M: m.m, QoS: m.m.QoS, Retain: m.m.Retain})); err != nil {
				return fmt.Errorf("convert queued message of %s: %w", id, err)
			}
		}
	}
	for _, m := range retained {
		if len(m.Topic) > maxKey {
			bad([]byte("RET_"+m.Topic), fmt.Errorf("topic longer than %d bytes", maxKey))
			continue
		}
		if err := tx.Bucket(bucketRetained).Put([]byte(m.Topic), appendMessage(nil, m)); err != nil {
			return fmt.Errorf("convert retained message %s: %w", truncate(m.Topic), err)
		}
	}
	if err := tx.DeleteBucket(bucketMochi); err != nil {
		return err
	}
	s.log.Info("persistence converted from the previous broker's layout", "file", s.path, "sessions", len(sessions), "retained", len(retained), "dropped", dropped)
	return nil
}
