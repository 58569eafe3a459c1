package mqttwire

import (
	"encoding/binary"
)

// Packet is any MQTT control packet of 3.1 (Version 3), 3.1.1 (4) or 5.0
// (5). A Reader decodes into the same Packet again and again: every []byte
// of a decoded packet (topics, payloads, strings, properties) aliases the
// Reader's buffer and is valid only until the next Read, and the Subs,
// Reasons, User and SubscriptionIDs arrays are reused. Copy what outlives
// the packet.
type Packet struct {
	Type    byte // CONNECT ... AUTH
	Version byte // 3, 4 or 5

	// PUBLISH fixed header; QoS also of the will.
	Dup    bool
	QoS    byte
	Retain bool

	ID     uint16     // packet identifier (PUBLISH QoS>0, acks, SUBSCRIBE, UNSUBSCRIBE)
	Reason ReasonCode // CONNACK return/reason code; acks, DISCONNECT, AUTH reason code

	// CONNECT
	Bridge       bool // protocol level with bit 7 set (mosquitto's try_private)
	CleanStart   bool
	Keepalive    uint16
	ClientID     []byte
	HasUsername  bool
	Username     []byte
	HasPassword  bool
	Password     []byte
	Will         bool
	WillQoS      byte
	WillRetain   bool
	WillTopic    []byte
	WillPayload  []byte
	WillProps    Properties
	ProtocolName []byte // as sent: MQIsdp for 3, MQTT for 4 and 5

	// CONNACK
	SessionPresent bool

	// PUBLISH
	Topic   []byte
	Payload []byte

	// SUBSCRIBE (filter and options) and UNSUBSCRIBE (filter only)
	Subs []Subscription
	// SUBACK, and UNSUBACK of MQTT 5
	Reasons []ReasonCode

	Props Properties
}

// Subscription is one filter of a SUBSCRIBE (or UNSUBSCRIBE: Filter only).
type Subscription struct {
	Filter            []byte
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
}

func (p *Packet) reset(typ, version byte) {
	*p = Packet{
		Type: typ, Version: version,
		Subs: p.Subs[:0], Reasons: p.Reasons[:0],
		Props:     Properties{User: p.Props.User[:0], SubscriptionIDs: p.Props.SubscriptionIDs[:0]},
		WillProps: Properties{User: p.WillProps.User[:0], SubscriptionIDs: p.WillProps.SubscriptionIDs[:0]},
	}
}

// Decode decodes one packet from its first byte and body (the bytes after
// the remaining length), for a connection at protocol level version (3, 4
// or 5; a CONNECT brings its own). Refusals are *Error values with the
// reason code mosquitto 2.0 decides: MalformedPacket or ProtocolError
// (UnsupportedProtocolVersion for a CONNECT of an unknown level).
func (p *Packet) Decode(head byte, body []byte, version byte) error {
	typ := head >> 4
	flags := head & 0x0f
	if typ == CONNECT {
		version = 0
	}
	p.reset(typ, version)
	if typ != CONNECT && version != 3 && version != 4 && version != 5 {
		return protocolErr("a packet before CONNECT")
	}
	if typ == PUBLISH {
		return p.decodePublish(flags, body)
	}
	want := byte(0)
	if typ == PUBREL || typ == SUBSCRIBE || typ == UNSUBSCRIBE {
		want = 2
	}
	if flags != want {
		return malformed("reserved fixed header flags")
	}
	switch typ {
	case CONNECT:
		return p.decodeConnect(body)
	case CONNACK:
		return p.decodeConnack(body)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		return p.decodeAck(body)
	case SUBSCRIBE:
		return p.decodeSubscribe(body)
	case SUBACK, UNSUBACK:
		return p.decodeSuback(body)
	case UNSUBSCRIBE:
		return p.decodeUnsubscribe(body)
	case PINGREQ, PINGRESP:
		if len(body) != 0 {
			return malformed("PINGREQ/PINGRESP with a body")
		}
		return nil
	case DISCONNECT, AUTH:
		return p.decodeDisconnect(body)
	}
	return protocolErr("reserved packet type 0")
}

func u16(b []byte) (uint16, []byte, error) {
	if len(b) < 2 {
		return 0, nil, malformed("short two-byte integer")
	}
	return binary.BigEndian.Uint16(b), b[2:], nil
}

func (p *Packet) decodeConnect(b []byte) error {
	name, b, err := readBytes(b, true)
	if err != nil {
		return protocolErr("no protocol name")
	}
	if len(b) < 4 {
		return malformed("short CONNECT")
	}
	p.ProtocolName = name
	level := b[0]
	p.Bridge = level&0x80 != 0
	level &^= 0x80
	switch {
	case string(name) == "MQIsdp" && level == 3, string(name) == "MQTT" && (level == 4 || level == 5):
	case string(name) == "MQIsdp" || string(name) == "MQTT":
		p.Version = level // for the engine's answer: CONNACK 1, or an MQTT 5 one above level 5
		return &Error{UnsupportedProtocolVersion, "unsupported protocol level"}
	default:
		return protocolErr("protocol name neither MQTT nor MQIsdp")
	}
	p.Version = level
	flags := b[1]
	p.Keepalive = binary.BigEndian.Uint16(b[2:])
	b = b[4:]
	if flags&0x01 != 0 && level >= 4 {
		return protocolErr("reserved CONNECT flag set")
	}
	p.CleanStart = flags&0x02 != 0
	p.Will = flags&0x04 != 0
	p.WillQoS = flags >> 3 & 3
	p.WillRetain = flags&0x20 != 0
	p.HasPassword = flags&0x40 != 0
	p.HasUsername = flags&0x80 != 0
	if p.WillQoS == 3 {
		return protocolErr("will QoS 3")
	}
	if !p.Will && (p.WillQoS != 0 || p.WillRetain) {
		return protocolErr("will QoS or retain without a will")
	}
	if level == 5 {
		if b, err = p.Props.decode(b, CONNECT); err != nil {
			return err
		}
	}
	if p.ClientID, b, err = readBytes(b, true); err != nil {
		return err
	}
	if p.Will {
		if level == 5 {
			if b, err = p.WillProps.decode(b, willProps); err != nil {
				return err
			}
		}
		if p.WillTopic, b, err = readBytes(b, true); err != nil {
			return err
		}
		if !ValidTopicName(p.WillTopic) {
			return protocolErr("will topic empty or with a wildcard")
		}
		if p.WillPayload, b, err = readBytes(b, false); err != nil {
			return err
		}
	}
	if p.HasUsername {
		var rest []byte
		p.Username, rest, err = readBytes(b, true)
		switch {
		case err == nil:
			b = rest
		case level == 3:
			p.HasUsername = false // 3.1: a flag without a username is ignored
		default:
			return protocolErr("bad username")
		}
	} else if p.HasPassword && level != 5 {
		return protocolErr("password without a username")
	}
	if p.HasPassword {
		var rest []byte
		p.Password, rest, err = readBytes(b, false)
		switch {
		case err == nil:
			b = rest
		case level == 3:
			p.HasPassword = false // 3.1: a flag without a password is ignored
		default:
			return protocolErr("bad password")
		}
	}
	if len(b) != 0 {
		return protocolErr("bytes after the CONNECT payload")
	}
	return nil
}

func (p *Packet) decodeConnack(b []byte) error {
	if len(b) < 2 {
		return malformed("short CONNACK")
	}
	if b[0]&^1 != 0 {
		return malformed("reserved CONNACK flags")
	}
	p.SessionPresent = b[0] == 1
	p.Reason = ReasonCode(b[1])
	if p.Version < 5 {
		if len(b) != 2 {
			return malformed("CONNACK longer than 2 bytes")
		}
		if p.Reason > 5 {
			return protocolErr("CONNACK return code above 5")
		}
		return nil
	}
	if !validReason(CONNACK, p.Reason) {
		return protocolErr("CONNACK reason code")
	}
	return p.end(p.Props.decode(b[2:], CONNACK))
}

// end turns a decode step's leftover bytes into an error.
func (p *Packet) end(rest []byte, err error) error {
	if err != nil {
		return err
	}
	if len(rest) != 0 {
		return malformed("bytes after the packet's end")
	}
	return nil
}

func (p *Packet) decodePublish(flags byte, b []byte) error {
	p.Dup = flags&8 != 0
	p.QoS = flags >> 1 & 3
	p.Retain = flags&1 != 0
	if p.Dup && p.QoS == 0 {
		return malformed("DUP set on a QoS 0 PUBLISH")
	}
	if p.QoS == 3 {
		return malformed("PUBLISH QoS 3")
	}
	var err error
	if p.Topic, b, err = readBytes(b, true); err != nil {
		return err
	}
	if len(p.Topic) == 0 && p.Version < 5 {
		return malformed("empty PUBLISH topic")
	}
	if p.QoS > 0 {
		if p.ID, b, err = u16(b); err != nil {
			return err
		}
		if p.ID == 0 {
			return protocolErr("packet identifier 0")
		}
	}
	if p.Version == 5 {
		if b, err = p.Props.decode(b, PUBLISH); err != nil {
			return err
		}
		if len(p.Topic) == 0 && !p.Props.Has(PropTopicAlias) {
			return malformed("empty PUBLISH topic without a topic alias")
		}
	}
	if len(p.Topic) > 0 && !ValidTopicName(p.Topic) {
		return malformed("wildcard in a PUBLISH topic")
	}
	p.Payload = b
	return nil
}

func (p *Packet) decodeAck(b []byte) error {
	var err error
	if p.ID, b, err = u16(b); err != nil {
		return err
	}
	if p.ID == 0 {
		return protocolErr("packet identifier 0")
	}
	if p.Version < 5 || len(b) == 0 {
		if len(b) != 0 {
			return malformed("acknowledgement longer than 2 bytes")
		}
		return nil
	}
	p.Reason = ReasonCode(b[0])
	if !validReason(p.Type, p.Reason) {
		return protocolErr("reason code not allowed in this acknowledgement")
	}
	if len(b) == 1 {
		return nil
	}
	return p.end(p.Props.decode(b[1:], int(p.Type)))
}

func (p *Packet) decodeSubscribe(b []byte) error {
	var err error
	if p.ID, b, err = u16(b); err != nil {
		return err
	}
	if p.ID == 0 {
		return protocolErr("packet identifier 0")
	}
	if p.Version == 5 {
		if b, err = p.Props.decode(b, SUBSCRIBE); err != nil {
			return err
		}
		if len(p.Props.SubscriptionIDs) > 1 {
			return protocolErr("duplicate property")
		}
	}
	if len(b) == 0 {
		return malformed("SUBSCRIBE without a filter")
	}
	for len(b) > 0 {
		var s Subscription
		if s.Filter, b, err = readBytes(b, true); err != nil {
			return err
		}
		if len(b) == 0 {
			return malformed("filter without subscription options")
		}
		o := b[0]
		b = b[1:]
		s.QoS = o & 3
		if p.Version < 5 && o&^3 != 0 || o&0xc0 != 0 {
			return malformed("reserved subscription option bits")
		}
		if s.QoS == 3 {
			return malformed("subscription QoS 3")
		}
		if p.Version == 5 {
			s.NoLocal = o&4 != 0
			s.RetainAsPublished = o&8 != 0
			s.RetainHandling = o >> 4 & 3
			if s.RetainHandling == 3 {
				return malformed("retain handling 3") // mosquitto's code; the spec says protocol error
			}
		}
		if !ValidTopicFilter(s.Filter) {
			return malformed("topic filter invalid")
		}
		if s.NoLocal && len(s.Filter) >= len(SharePrefix) && string(s.Filter[:len(SharePrefix)]) == SharePrefix {
			return protocolErr("no local on a shared subscription")
		}
		p.Subs = append(p.Subs, s)
	}
	return nil
}

func (p *Packet) decodeUnsubscribe(b []byte) error {
	var err error
	if p.ID, b, err = u16(b); err != nil {
		return err
	}
	if p.ID == 0 {
		return protocolErr("packet identifier 0")
	}
	if p.Version == 5 {
		if b, err = p.Props.decode(b, UNSUBSCRIBE); err != nil {
			return err
		}
	}
	if len(b) == 0 {
		return malformed("UNSUBSCRIBE without a filter")
	}
	for len(b) > 0 {
		var s Subscription
		if s.Filter, b, err = readBytes(b, true); err != nil {
			return err
		}
		if !ValidTopicFilter(s.Filter) {
			return malformed("topic filter invalid")
		}
		p.Subs = append(p.Subs, s)
	}
	return nil
}

func (p *Packet) decodeSuback(b []byte) error {
	var err error
	if p.ID, b, err = u16(b); err != nil {
		return err
	}
	if p.ID == 0 {
		return protocolErr("packet identifier 0")
	}
	if p.Version == 5 {
		if b, err = p.Props.decode(b, int(p.Type)); err != nil {
			return err
		}
	} else if p.Type == UNSUBACK {
		if len(b) != 0 {
			return malformed("UNSUBACK longer than 2 bytes")
		}
		return nil
	}
	if len(b) == 0 {
		return protocolErr("acknowledgement without a reason code")
	}
	for _, c := range b {
		if !validReason(p.Type, ReasonCode(c)) || p.Version < 5 && c > 2 && c != 0x80 {
			return protocolErr("reason code not allowed in this acknowledgement")
		}
		p.Reasons = append(p.Reasons, ReasonCode(c))
	}
	return nil
}

func (p *Packet) decodeDisconnect(b []byte) error {
	if p.Version < 5 {
		if p.Type == AUTH {
			return protocolErr("AUTH before MQTT 5")
		}
		if len(b) != 0 {
			return malformed("DISCONNECT with a body")
		}
		return nil
	}
	if len(b) == 0 {
		return nil
	}
	p.Reason = ReasonCode(b[0])
	if !validReason(p.Type, p.Reason) {
		return protocolErr("reason code not allowed in this packet")
	}
	if len(b) == 1 {
		return nil
	}
	return p.end(p.Props.decode(b[1:], int(p.Type)))
}

// validReason: the reason codes MQTT 5.0 allows in each packet type
// (sections 3.2.2.2, 3.4.2.1, 3.5.2.1, 3.6.2.1, 3.7.2.1, 3.9.3, 3.11.3,
// 3.14.2.1, 3.15.2.1).
func validReason(typ byte, c ReasonCode) bool {
	var list string
	switch typ {
	case CONNACK:
		list = "\x00\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8c\x90\x95\x97\x99\x9a\x9b\x9c\x9d\x9f"
	case PUBACK, PUBREC:
		list = "\x00\x10\x80\x83\x87\x90\x91\x97\x99"
	case PUBREL, PUBCOMP:
		list = "\x00\x92"
	case SUBACK:
		list = "\x00\x01\x02\x80\x83\x87\x8f\x91\x97\x9e\xa1\xa2"
	case UNSUBACK:
		list = "\x00\x11\x80\x83\x87\x8f\x91"
	case DISCONNECT:
		list = "\x00\x04\x80\x81\x82\x83\x87\x89\x8b\x8d\x8e\x8f\x90\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f\xa0\xa1\xa2"
	case AUTH:
		list = "\x00\x18\x19"
	}
	for i := 0; i < len(list); i++ {
		if list[i] == byte(c) {
			return true
		}
	}
	return false
}
