package persist

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
)

// Values are binary, each starting with its format version (valueV1): a
// queued message is written once per subscriber and message, so its
// encoding is on the hot path (no reflection, no base64 of the payload as
// JSON would do, one append into the batch's buffer), and a newer mqttctl
// can change a format by its version byte.
const valueV1 = 1

var (
	errTruncated = errors.New("truncated")
	errVersion   = errors.New("unknown format version")
)

// Keys. The client id is length-prefixed (2 bytes) so that one client's
// keys are a prefix no other client's keys share (ids may contain any
// byte but NUL, and may be prefixes of each other).
func appendClientPrefix(b []byte, client string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(client)))
	return append(b, client...)
}

func appendQueuedKey(b []byte, client string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(appendClientPrefix(b, client), seq)
}

func appendIncomingKey(b []byte, client string, id uint16) []byte {
	return binary.BigEndian.AppendUint16(appendClientPrefix(b, client), id)
}

func appendSubKey(b []byte, client, filter string) []byte {
	return append(appendClientPrefix(b, client), filter...)
}

// splitClientKey returns the client id of a queued or subscription key and
// the rest (the seq, or the filter).
func splitClientKey(k []byte) (client string, rest []byte, err error) {
	if len(k) < 2 {
		return "", nil, errTruncated
	}
	n := int(binary.BigEndian.Uint16(k))
	if len(k) < 2+n {
		return "", nil, errTruncated
	}
	return string(k[2 : 2+n]), k[2+n:], nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// Session: version, protocol level, expiry (4 bytes), username.
// Session: version (sessionV2), MQTT level, expiry interval (4 bytes),
// when its last connection ended (Unix nanoseconds, 8 bytes; 0: it was
// connected), username. valueV1 lacks the time.
func appendSession(b []byte, r engine.SessionRecord) []byte {
	b = append(b, sessionV2, r.Version)
	b = binary.BigEndian.AppendUint32(b, r.Expiry)
	var at int64
	if !r.Disconnected.IsZero() {
		at = r.Disconnected.UnixNano()
	}
	b = binary.BigEndian.AppendUint64(b, uint64(at))
	return append(b, r.Username...)
}

const sessionV2 = 2

func decodeSession(client string, v []byte) (engine.SessionRecord, error) {
	if len(v) > 0 && v[0] != valueV1 && v[0] != sessionV2 {
		return engine.SessionRecord{}, errVersion
	}
	if len(v) < 6 || v[0] == sessionV2 && len(v) < 14 {
		return engine.SessionRecord{}, errTruncated
	}
	r := engine.SessionRecord{ClientID: client, Version: v[1], Expiry: binary.BigEndian.Uint32(v[2:6])}
	rest := v[6:]
	if v[0] == sessionV2 {
		if at := int64(binary.BigEndian.Uint64(rest)); at != 0 {
			r.Disconnected = time.Unix(0, at)
		}
		rest = rest[8:]
	}
	r.Username = string(rest)
	return r, nil
}

// Subscription: version, QoS, flags (no local, retain as published),
// retain handling, subscription identifier (uvarint). Client and filter
// are the key.
func appendSub(b []byte, s *topic.Subscription) []byte {
	var fl byte
	if s.NoLocal {
		fl |= 1
	}
	if s.RetainAsPublished {
		fl |= 2
	}
	b = append(b, valueV1, s.QoS, fl, s.RetainHandling)
	return binary.AppendUvarint(b, uint64(s.ID))
}

func decodeSub(client, filter string, v []byte) (topic.Subscription, error) {
	if len(v) > 0 && v[0] != valueV1 {
		return topic.Subscription{}, errVersion
	}
	if len(v) < 5 {
		return topic.Subscription{}, errTruncated
	}
	id, n := binary.Uvarint(v[4:])
	if n <= 0 || id > 0xFFFFFFF || v[1] > 2 || v[3] > 2 {
		return topic.Subscription{}, errors.New("bad subscription")
	}
	return topic.Subscription{Client: client, Filter: filter, QoS: v[1], NoLocal: v[2]&1 != 0,
		RetainAsPublished: v[2]&2 != 0, RetainHandling: v[3], ID: uint32(id)}, nil
}

// Message flags.
const (
	mRetain = 1 << 2 // bits 0-1: QoS
	mProps  = 1 << 3
	mCreate = 1 << 4 // Created is set

	pFormat = 1 << 0 // HasPayloadFormat
	pCorr   = 1 << 1 // CorrelationData not nil
)

// Queued message: the delivery (its QoS, and its retain flag as 4, in
// one byte; the subscription identifier, uvarint), then the message.
func appendQueued(b []byte, q engine.Queued) []byte {
	return appendMessage(appendQueuedHead(b, q), q.M)
}

func appendQueuedHead(b []byte, q engine.Queued) []byte {
	fl := q.QoS & 3
	if q.Retain {
		fl |= 4
	}
	return binary.AppendUvarint(append(b, fl), uint64(q.SubID))
}

func decodeQueued(v []byte) (engine.Queued, error) {
	if len(v) < 2 || v[0] > 7 || v[0]&3 == 0 || v[0]&3 == 3 {
		return engine.Queued{}, errors.New("bad queued delivery")
	}
	id, n := binary.Uvarint(v[1:])
	if n <= 0 || id > 268435455 {
		return engine.Queued{}, errors.New("bad subscription identifier")
	}
	m, err := decodeMessage(v[1+n:])
	if err != nil {
		return engine.Queued{}, err
	}
	return engine.Queued{M: m, QoS: v[0] & 3, Retain: v[0]&4 != 0, SubID: uint32(id)}, nil
}

// Message: version, flags, created (Unix nanoseconds, varint), topic,
// from, payload, then the MQTT 5 properties when there are any: their
// flags, payload format, message expiry (uvarint), content type, response
// topic, correlation data, user properties (count, then key and value).
func appendMessage(b []byte, m *engine.Message) []byte {
	fl := m.QoS & 3
	if m.Retain {
		fl |= mRetain
	}
	if m.Props != nil {
		fl |= mProps
	}
	if !m.Created.IsZero() {
		fl |= mCreate
	}
	b = append(b, valueV1, fl)
	if !m.Created.IsZero() {
		b = binary.AppendVarint(b, m.Created.UnixNano())
	}
	b = appendString(b, m.Topic)
	b = appendString(b, m.From)
	b = appendBytes(b, m.Payload)
	if p := m.Props; p != nil {
		var pf byte
		if p.HasPayloadFormat {
			pf |= pFormat
		}
		if p.CorrelationData != nil {
			pf |= pCorr
		}
		b = append(b, pf, p.PayloadFormat)
		b = binary.AppendUvarint(b, uint64(p.MessageExpiry))
		b = appendString(b, p.ContentType)
		b = appendString(b, p.ResponseTopic)
		b = appendBytes(b, p.CorrelationData)
		b = binary.AppendUvarint(b, uint64(len(p.User)))
		for _, u := range p.User {
			b = appendString(appendString(b, u.Key), u.Value)
		}
	}
	return b
}

// reader decodes a value; the first error sticks.
type reader struct {
	b   []byte
	err error
}

func (r *reader) byte() byte {
	if r.err != nil || len(r.b) == 0 {
		r.err = errTruncated
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.err = errTruncated
		return 0
	}
	r.b = r.b[n:]
	return v
}

// bytes returns a copy (the value belongs to bbolt's memory map).
func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil {
		return nil
	}
	if n > uint64(len(r.b)) {
		r.err = errTruncated
		return nil
	}
	v := make([]byte, n)
	copy(v, r.b)
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string {
	n := r.uvarint()
	if r.err != nil {
		return ""
	}
	if n > uint64(len(r.b)) {
		r.err = errTruncated
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func decodeMessage(v []byte) (*engine.Message, error) {
	r := reader{b: v}
	if ver := r.byte(); r.err == nil && ver != valueV1 {
		return nil, errVersion
	}
	fl := r.byte()
	m := &engine.Message{QoS: fl & 3, Retain: fl&mRetain != 0}
	if fl&mCreate != 0 {
		m.Created = time.Unix(0, r.varint())
	}
	m.Topic = r.string()
	m.From = r.string()
	m.Payload = r.bytes()
	if fl&mProps != 0 {
		p := &engine.MessageProps{}
		pf := r.byte()
		p.HasPayloadFormat = pf&pFormat != 0
		p.PayloadFormat = r.byte()
		exp := r.uvarint()
		if exp > 0xFFFFFFFF {
			return nil, errors.New("bad message expiry")
		}
		p.MessageExpiry = uint32(exp)
		p.ContentType = r.string()
		p.ResponseTopic = r.string()
		p.CorrelationData = r.bytes()
		if pf&pCorr == 0 {
			p.CorrelationData = nil
		}
		n := r.uvarint()
		if n > uint64(len(r.b)) { // each takes at least 2 bytes
			return nil, errTruncated
		}
		for range n {
			p.User = append(p.User, engine.UserProperty{Key: r.string(), Value: r.string()})
		}
		m.Props = p
	}
	if r.err != nil {
		return nil, r.err
	}
	if m.QoS > 2 || m.Topic == "" {
		return nil, fmt.Errorf("bad message (QoS %d, topic %q)", m.QoS, m.Topic)
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d bytes after the message", len(r.b))
	}
	return m, nil
}
