package mqttwire

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
)

var alphabet = []string{"a", "b", "ü", "€", "😀", " ", "$", "z"}

func randString(r *rand.Rand, max int) []byte {
	var b strings.Builder
	for n := r.IntN(max + 1); n > 0; n-- {
		b.WriteString(alphabet[r.IntN(len(alphabet))])
	}
	return []byte(b.String())
}

func randBinary(r *rand.Rand) []byte {
	b := make([]byte, r.IntN(6))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return b
}

func randTopic(r *rand.Rand) []byte {
	parts := make([]string, 1+r.IntN(4))
	for i := range parts {
		parts[i] = string(randString(r, 3))
	}
	t := strings.Join(parts, "/")
	if t == "" {
		t = "t"
	}
	return []byte(t)
}

func randFilter(r *rand.Rand) []byte {
	parts := make([]string, 1+r.IntN(4))
	for i := range parts {
		switch x := r.IntN(6); {
		case x == 0:
			parts[i] = "+"
		case x == 1 && i == len(parts)-1:
			parts[i] = "#"
		default:
			parts[i] = string(randString(r, 3))
		}
	}
	f := strings.Join(parts, "/")
	if f == "" {
		f = "+"
	}
	return []byte(f)
}

// randProps fills random properties allowed in packet type typ (willProps
// for a will), with valid values.
func randProps(r *rand.Rand, typ int) Properties {
	var p Properties
	for id := byte(1); int(id) < len(propTable); id++ {
		info := propTable[id]
		if info.kind == 0 || info.allowed&(1<<typ) == 0 || r.IntN(3) == 0 {
			continue
		}
		var num uint32
		switch info.kind {
		case kByte:
			num = uint32(r.IntN(2))
		case kU16:
			num = uint32(1 + r.IntN(65535))
		case kU32:
			num = 1 + r.Uint32N(1<<31)
		case kVarint:
			num = 1 + r.Uint32N(MaxRemaining)
		}
		switch id {
		case PropUser:
			for n := 1 + r.IntN(3); n > 0; n-- {
				p.User = append(p.User, UserProperty{randString(r, 4), randString(r, 4)})
			}
		case PropSubscriptionID:
			p.SubscriptionIDs = append(p.SubscriptionIDs, num)
			if typ == PUBLISH && r.IntN(2) == 0 {
				p.SubscriptionIDs = append(p.SubscriptionIDs, 1+r.Uint32N(1000))
			}
		case PropCorrelationData, PropAuthData:
			p.store(id, 0, randBinary(r), nil)
		case PropResponseTopic:
			p.store(id, 0, randTopic(r), nil)
		default:
			p.store(id, num, randString(r, 5), nil)
		}
	}
	return p
}

func pick[T any](r *rand.Rand, xs ...T) T { return xs[r.IntN(len(xs))] }

func randReason(r *rand.Rand, typ byte) ReasonCode {
	for {
		if c := ReasonCode(r.IntN(256)); validReason(typ, c) {
			return c
		}
	}
}

// randPacket returns a random valid packet.
func randPacket(r *rand.Rand) Packet {
	v := pick[byte](r, 3, 4, 5)
	typ := byte(1 + r.IntN(15))
	if typ == AUTH {
		v = 5
	}
	p := Packet{Type: typ, Version: v}
	v5 := v == 5
	props := func() {
		if v5 {
			p.Props = randProps(r, int(typ))
		}
	}
	switch typ {
	case CONNECT:
		p.ProtocolName = []byte(map[byte]string{3: "MQIsdp", 4: "MQTT", 5: "MQTT"}[v])
		p.Bridge = r.IntN(4) == 0
		p.CleanStart, p.Keepalive, p.ClientID = r.IntN(2) == 0, uint16(r.IntN(65536)), randString(r, 6)
		if p.Will = r.IntN(2) == 0; p.Will {
			p.WillQoS, p.WillRetain, p.WillTopic, p.WillPayload = byte(r.IntN(3)), r.IntN(2) == 0, randTopic(r), randBinary(r)
			if v5 {
				p.WillProps = randProps(r, willProps)
			}
		}
		if p.HasUsername = r.IntN(2) == 0; p.HasUsername {
			p.Username = randString(r, 5)
		}
		if p.HasPassword = (p.HasUsername || v5) && r.IntN(2) == 0; p.HasPassword {
			p.Password = randBinary(r)
		}
		props()
	case CONNACK:
		p.SessionPresent = r.IntN(2) == 0
		p.Reason = ReasonCode(r.IntN(6))
		if v5 {
			p.Reason = randReason(r, typ)
		}
		props()
	case PUBLISH:
		p.QoS, p.Retain, p.Topic, p.Payload = byte(r.IntN(3)), r.IntN(2) == 0, randTopic(r), randBinary(r)
		if p.QoS > 0 {
			p.Dup, p.ID = r.IntN(2) == 0, uint16(1+r.IntN(65535))
		}
		props()
		if v5 && p.Props.Has(PropTopicAlias) && r.IntN(2) == 0 {
			p.Topic = nil
		}
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		p.ID = uint16(1 + r.IntN(65535))
		if v5 {
			p.Reason = randReason(r, typ)
		}
		props()
	case SUBSCRIBE:
		p.ID = uint16(1 + r.IntN(65535))
		for n := 1 + r.IntN(3); n > 0; n-- {
			s := Subscription{Filter: randFilter(r), QoS: byte(r.IntN(3))}
			if r.IntN(3) == 0 {
				s.Filter = append([]byte("$share/g/"), s.Filter...)
			}
			if v5 {
				s.NoLocal = r.IntN(2) == 0 && !strings.HasPrefix(string(s.Filter), SharePrefix)
				s.RetainAsPublished, s.RetainHandling = r.IntN(2) == 0, byte(r.IntN(3))
			}
			p.Subs = append(p.Subs, s)
		}
		props()
		if len(p.Props.SubscriptionIDs) > 1 {
			p.Props.SubscriptionIDs = p.Props.SubscriptionIDs[:1]
		}
	case UNSUBSCRIBE:
		p.ID = uint16(1 + r.IntN(65535))
		for n := 1 + r.IntN(3); n > 0; n-- {
			p.Subs = append(p.Subs, Subscription{Filter: randFilter(r)})
		}
		props()
	case SUBACK, UNSUBACK:
		p.ID = uint16(1 + r.IntN(65535))
		if typ == SUBACK || v5 {
			for n := 1 + r.IntN(3); n > 0; n-- {
				c := pick[ReasonCode](r, 0, 1, 2, 0x80)
				if v5 {
					c = randReason(r, typ)
				}
				p.Reasons = append(p.Reasons, c)
			}
		}
		props()
	case DISCONNECT, AUTH:
		if v5 {
			p.Reason = randReason(r, typ)
		}
		props()
	}
	return p
}

// TestRandomRoundTrip: decode(encode(p)) == p for random valid packets of
// every type, level and property.
func TestRandomRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for i := 0; i < 20000; i++ {
		p := randPacket(r)
		enc := p.Append(nil)
		got, err := readOne(t, enc, level(&p), false)
		if err != nil {
			t.Fatalf("%d: %v\n%+v\n% x", i, err, p, enc)
		}
		a, b := p, *got
		normalize(reflect.ValueOf(&a))
		normalize(reflect.ValueOf(&b))
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("%d: type %d v%d:\n got %s\nwant %s", i, p.Type, p.Version, fmt.Sprintf("%+v", b), fmt.Sprintf("%+v", a))
		}
	}
}
