package mqttwire

import "encoding/binary"

// Property identifiers (MQTT 5.0 section 2.2.2.2).
const (
	PropPayloadFormat        = 0x01
	PropMessageExpiry        = 0x02
	PropContentType          = 0x03
	PropResponseTopic        = 0x08
	PropCorrelationData      = 0x09
	PropSubscriptionID       = 0x0B
	PropSessionExpiry        = 0x11
	PropAssignedClientID     = 0x12
	PropServerKeepAlive      = 0x13
	PropAuthMethod           = 0x15
	PropAuthData             = 0x16
	PropRequestProblemInfo   = 0x17
	PropWillDelay            = 0x18
	PropRequestResponseInfo  = 0x19
	PropResponseInfo         = 0x1A
	PropServerReference      = 0x1C
	PropReasonString         = 0x1F
	PropReceiveMaximum       = 0x21
	PropTopicAliasMaximum    = 0x22
	PropTopicAlias           = 0x23
	PropMaximumQoS           = 0x24
	PropRetainAvailable      = 0x25
	PropUser                 = 0x26
	PropMaximumPacketSize    = 0x27
	PropWildcardSubAvailable = 0x28
	PropSubIDAvailable       = 0x29
	PropSharedSubAvailable   = 0x2A
)

// UserProperty is one name/value pair (0x26); the slices alias the packet
// buffer like every []byte of a decoded Packet.
type UserProperty struct{ Key, Value []byte }

// Properties are the MQTT 5 properties of a packet or of a will. Present
// has bit N set when the property with identifier N is in the packet
// (Has/Set); User and SubscriptionIDs are present when non-empty. Decoding
// reuses the User and SubscriptionIDs arrays.
type Properties struct {
	Present              uint64
	PayloadFormat        byte
	MessageExpiry        uint32
	ContentType          []byte
	ResponseTopic        []byte
	CorrelationData      []byte
	SubscriptionIDs      []uint32
	SessionExpiry        uint32
	AssignedClientID     []byte
	ServerKeepAlive      uint16
	AuthMethod           []byte
	AuthData             []byte
	RequestProblemInfo   byte
	WillDelay            uint32
	RequestResponseInfo  byte
	ResponseInfo         []byte
	ServerReference      []byte
	ReasonString         []byte
	ReceiveMaximum       uint16
	TopicAliasMaximum    uint16
	TopicAlias           uint16
	MaximumQoS           byte
	RetainAvailable      byte
	User                 []UserProperty
	MaximumPacketSize    uint32
	WildcardSubAvailable byte
	SubIDAvailable       byte
	SharedSubAvailable   byte
}

// Has reports whether the property with identifier id is present.
func (p *Properties) Has(id byte) bool {
	switch id {
	case PropUser:
		return len(p.User) > 0
	case PropSubscriptionID:
		return len(p.SubscriptionIDs) > 0
	}
	return p.Present&(1<<id) != 0
}

// Set marks the property with identifier id present (its field holds the
// value).
func (p *Properties) Set(id byte) { p.Present |= 1 << id }

// willProps is the pseudo packet type of will properties in allowedIn.
const willProps = 0

type propKind byte

const (
	kByte propKind = iota + 1
	kU16
	kU32
	kVarint
	kString
	kBinary
	kPair
)

type propInfo struct {
	kind    propKind
	allowed uint16 // bit T: allowed in packet type T (bit 0: will)
	boolean bool   // 0 or 1 only
	nonZero bool   // 0 is a protocol error
}

func in(types ...int) uint16 {
	var m uint16
	for _, t := range types {
		m |= 1 << t
	}
	return m
}

var propTable = [PropSharedSubAvailable + 1]propInfo{
	PropPayloadFormat:        {kind: kByte, allowed: in(PUBLISH, willProps), boolean: true},
	PropMessageExpiry:        {kind: kU32, allowed: in(PUBLISH, willProps)},
	PropContentType:          {kind: kString, allowed: in(PUBLISH, willProps)},
	PropResponseTopic:        {kind: kString, allowed: in(PUBLISH, willProps)},
	PropCorrelationData:      {kind: kBinary, allowed: in(PUBLISH, willProps)},
	PropSubscriptionID:       {kind: kVarint, allowed: in(PUBLISH, SUBSCRIBE), nonZero: true},
	PropSessionExpiry:        {kind: kU32, allowed: in(CONNECT, CONNACK, DISCONNECT)},
	PropAssignedClientID:     {kind: kString, allowed: in(CONNACK)},
	PropServerKeepAlive:      {kind: kU16, allowed: in(CONNACK)},
	PropAuthMethod:           {kind: kString, allowed: in(CONNECT, CONNACK, AUTH)},
	PropAuthData:             {kind: kBinary, allowed: in(CONNECT, CONNACK, AUTH)},
	PropRequestProblemInfo:   {kind: kByte, allowed: in(CONNECT), boolean: true},
	PropWillDelay:            {kind: kU32, allowed: in(willProps)},
	PropRequestResponseInfo:  {kind: kByte, allowed: in(CONNECT), boolean: true},
	PropResponseInfo:         {kind: kString, allowed: in(CONNACK)},
	PropServerReference:      {kind: kString, allowed: in(CONNACK, DISCONNECT)},
	PropReasonString:         {kind: kString, allowed: in(CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH)},
	PropReceiveMaximum:       {kind: kU16, allowed: in(CONNECT, CONNACK), nonZero: true},
	PropTopicAliasMaximum:    {kind: kU16, allowed: in(CONNECT, CONNACK)},
	PropTopicAlias:           {kind: kU16, allowed: in(PUBLISH), nonZero: true},
	PropMaximumQoS:           {kind: kByte, allowed: in(CONNACK), boolean: true},
	PropRetainAvailable:      {kind: kByte, allowed: in(CONNACK), boolean: true},
	PropUser:                 {kind: kPair, allowed: 0xffff},
	PropMaximumPacketSize:    {kind: kU32, allowed: in(CONNECT, CONNACK), nonZero: true},
	PropWildcardSubAvailable: {kind: kByte, allowed: in(CONNACK), boolean: true},
	PropSubIDAvailable:       {kind: kByte, allowed: in(CONNACK), boolean: true},
	PropSharedSubAvailable:   {kind: kByte, allowed: in(CONNACK), boolean: true},
}

// decodeProps reads a property length and the properties of packet type
// typ (willProps for a will) from b, returning the rest of b. As mosquitto
// (property__read_all, mosquitto_property_check_all): an unknown
// identifier, a short value, bad UTF-8 or an overlong varint is a
// malformed packet; an identifier not allowed in this packet (malformed
// in a SUBSCRIBE or UNSUBSCRIBE, as mosquitto decides), a second
// copy of a property (other than a user property, or a subscription
// identifier of a PUBLISH), or a value out of range
// (a boolean above 1, a zero Receive Maximum, Maximum Packet Size, Topic
// Alias or Subscription Identifier, the last malformed in a SUBSCRIBE) is
// a protocol error.
func (p *Properties) decode(b []byte, typ int) ([]byte, error) {
	n, w, err := varint(b)
	if err != nil {
		return nil, err
	}
	b = b[w:]
	if uint32(len(b)) < n {
		return nil, malformed("property length beyond the packet")
	}
	props, rest := b[:n], b[n:]
	for len(props) > 0 {
		id := props[0]
		props = props[1:]
		if int(id) >= len(propTable) || propTable[id].kind == 0 {
			return nil, malformed("unknown property identifier")
		}
		info := propTable[id]
		if info.allowed&(1<<typ) == 0 {
			if typ == SUBSCRIBE || typ == UNSUBSCRIBE {
				return nil, malformed("property not allowed in this packet") // as mosquitto 2.0 and 2.1
			}
			return nil, protocolErr("property not allowed in this packet")
		}
		if id != PropUser && (id != PropSubscriptionID || typ != PUBLISH) && p.Has(id) {
			return nil, protocolErr("duplicate property")
		}
		var num uint32
		var s, s2 []byte
		switch info.kind {
		case kByte:
			if len(props) < 1 {
				return nil, malformed("short property")
			}
			num, props = uint32(props[0]), props[1:]
		case kU16:
			if len(props) < 2 {
				return nil, malformed("short property")
			}
			num, props = uint32(binary.BigEndian.Uint16(props)), props[2:]
		case kU32:
			if len(props) < 4 {
				return nil, malformed("short property")
			}
			num, props = binary.BigEndian.Uint32(props), props[4:]
		case kVarint:
			v, w, err := varint(props)
			if err != nil {
				return nil, err
			}
			num, props = v, props[w:]
		case kString, kBinary:
			if s, props, err = readBytes(props, info.kind == kString); err != nil {
				return nil, err
			}
		case kPair:
			if s, props, err = readBytes(props, true); err != nil {
				return nil, err
			}
			if s2, props, err = readBytes(props, true); err != nil {
				return nil, err
			}
		}
		if info.boolean && num > 1 {
			return nil, protocolErr("property value other than 0 or 1")
		}
		if info.nonZero && num == 0 {
			if typ == SUBSCRIBE {
				return nil, malformed("subscription identifier 0") // as mosquitto 2.0 and 2.1
			}
			return nil, protocolErr("property value 0")
		}
		p.store(id, num, s, s2)
	}
	return rest, nil
}

func (p *Properties) store(id byte, num uint32, s, s2 []byte) {
	switch id {
	case PropUser:
		p.User = append(p.User, UserProperty{s, s2})
		return
	case PropSubscriptionID:
		p.SubscriptionIDs = append(p.SubscriptionIDs, num)
		return
	case PropPayloadFormat:
		p.PayloadFormat = byte(num)
	case PropMessageExpiry:
		p.MessageExpiry = num
	case PropContentType:
		p.ContentType = s
	case PropResponseTopic:
		p.ResponseTopic = s
	case PropCorrelationData:
		p.CorrelationData = s
	case PropSessionExpiry:
		p.SessionExpiry = num
	case PropAssignedClientID:
		p.AssignedClientID = s
	case PropServerKeepAlive:
		p.ServerKeepAlive = uint16(num)
	case PropAuthMethod:
		p.AuthMethod = s
	case PropAuthData:
		p.AuthData = s
	case PropRequestProblemInfo:
		p.RequestProblemInfo = byte(num)
	case PropWillDelay:
		p.WillDelay = num
	case PropRequestResponseInfo:
		p.RequestResponseInfo = byte(num)
	case PropResponseInfo:
		p.ResponseInfo = s
	case PropServerReference:
		p.ServerReference = s
	case PropReasonString:
		p.ReasonString = s
	case PropReceiveMaximum:
		p.ReceiveMaximum = uint16(num)
	case PropTopicAliasMaximum:
		p.TopicAliasMaximum = uint16(num)
	case PropTopicAlias:
		p.TopicAlias = uint16(num)
	case PropMaximumQoS:
		p.MaximumQoS = byte(num)
	case PropRetainAvailable:
		p.RetainAvailable = byte(num)
	case PropMaximumPacketSize:
		p.MaximumPacketSize = num
	case PropWildcardSubAvailable:
		p.WildcardSubAvailable = byte(num)
	case PropSubIDAvailable:
		p.SubIDAvailable = byte(num)
	case PropSharedSubAvailable:
		p.SharedSubAvailable = byte(num)
	}
	p.Set(id)
}

// appendProps appends the property length and the present properties in
// identifier order (user properties and subscription identifiers in their
// order).
func (p *Properties) appendTo(b []byte) []byte {
	start := len(b)
	b = append(b, 0, 0, 0, 0) // room for the longest length
	for id := byte(1); int(id) < len(propTable); id++ {
		info := propTable[id]
		if info.kind == 0 || !p.Has(id) {
			continue
		}
		switch id {
		case PropUser:
			for _, u := range p.User {
				b = append(b, id)
				b = appendBytes(b, u.Key)
				b = appendBytes(b, u.Value)
			}
			continue
		case PropSubscriptionID:
			for _, v := range p.SubscriptionIDs {
				b = append(b, id)
				b = AppendVarint(b, int(v))
			}
			continue
		}
		b = append(b, id)
		switch id {
		case PropPayloadFormat:
			b = append(b, p.PayloadFormat)
		case PropMessageExpiry:
			b = binary.BigEndian.AppendUint32(b, p.MessageExpiry)
		case PropContentType:
			b = appendBytes(b, p.ContentType)
		case PropResponseTopic:
			b = appendBytes(b, p.ResponseTopic)
		case PropCorrelationData:
			b = appendBytes(b, p.CorrelationData)
		case PropSessionExpiry:
			b = binary.BigEndian.AppendUint32(b, p.SessionExpiry)
		case PropAssignedClientID:
			b = appendBytes(b, p.AssignedClientID)
		case PropServerKeepAlive:
			b = binary.BigEndian.AppendUint16(b, p.ServerKeepAlive)
		case PropAuthMethod:
			b = appendBytes(b, p.AuthMethod)
		case PropAuthData:
			b = appendBytes(b, p.AuthData)
		case PropRequestProblemInfo:
			b = append(b, p.RequestProblemInfo)
		case PropWillDelay:
			b = binary.BigEndian.AppendUint32(b, p.WillDelay)
		case PropRequestResponseInfo:
			b = append(b, p.RequestResponseInfo)
		case PropResponseInfo:
			b = appendBytes(b, p.ResponseInfo)
		case PropServerReference:
			b = appendBytes(b, p.ServerReference)
		case PropReasonString:
			b = appendBytes(b, p.ReasonString)
		case PropReceiveMaximum:
			b = binary.BigEndian.AppendUint16(b, p.ReceiveMaximum)
		case PropTopicAliasMaximum:
			b = binary.BigEndian.AppendUint16(b, p.TopicAliasMaximum)
		case PropTopicAlias:
			b = binary.BigEndian.AppendUint16(b, p.TopicAlias)
		case PropMaximumQoS:
			b = append(b, p.MaximumQoS)
		case PropRetainAvailable:
			b = append(b, p.RetainAvailable)
		case PropMaximumPacketSize:
			b = binary.BigEndian.AppendUint32(b, p.MaximumPacketSize)
		case PropWildcardSubAvailable:
			b = append(b, p.WildcardSubAvailable)
		case PropSubIDAvailable:
			b = append(b, p.SubIDAvailable)
		case PropSharedSubAvailable:
			b = append(b, p.SharedSubAvailable)
		}
	}
	return closeLength(b, start, 4)
}

// closeLength writes the varint length of b[start+room:] into the room
// reserved at b[start:start+room] and closes the gap.
func closeLength(b []byte, start, room int) []byte {
	n := len(b) - start - room
	var tmp [5]byte
	l := AppendVarint(tmp[:0], n)
	gap := room - len(l)
	copy(b[start+gap:], l)
	copy(b[start:], b[start+gap:])
	return b[:len(b)-gap]
}

func appendBytes(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// varint decodes a variable byte integer inside a packet: at most four
// bytes and, as mosquitto (packet__read_varint), no overlong form ending
// in a zero byte.
func varint(b []byte) (uint32, int, error) {
	var n uint32
	for i := 0; i < 4; i++ {
		if i >= len(b) {
			return 0, 0, malformed("short variable byte integer")
		}
		c := b[i]
		n |= uint32(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				return 0, 0, malformed("overlong variable byte integer")
			}
			return n, i + 1, nil
		}
	}
	return 0, 0, malformed("variable byte integer over four bytes")
}

// readBytes reads a two-byte length and that many bytes, checked with
// ValidString when str is set.
func readBytes(b []byte, str bool) (s, rest []byte, err error) {
	if len(b) < 2 {
		return nil, nil, malformed("short length prefix")
	}
	n := int(binary.BigEndian.Uint16(b))
	if len(b) < 2+n {
		return nil, nil, malformed("string beyond the packet")
	}
	s = b[2 : 2+n : 2+n]
	if str && !ValidString(s) {
		return nil, nil, malformed("string not valid UTF-8 or with a control character")
	}
	return s, b[2+n:], nil
}
