package mqttwire

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func bs(s string) []byte { return []byte(s) }

// samplePackets: at least one packet of every type at every level it
// exists, with every property.
func samplePackets() []Packet {
	allConnect := Properties{SessionExpiry: 3600, AuthMethod: bs("SCRAM"), AuthData: bs("\x00\x01"), RequestProblemInfo: 0,
		RequestResponseInfo: 1, ReceiveMaximum: 20, TopicAliasMaximum: 10, MaximumPacketSize: 1 << 20,
		User: []UserProperty{{bs("k"), bs("v")}, {bs("k"), bs("v2")}}}
	for _, id := range []byte{PropSessionExpiry, PropAuthMethod, PropAuthData, PropRequestProblemInfo, PropRequestResponseInfo, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumPacketSize} {
		allConnect.Set(id)
	}
	will := Properties{PayloadFormat: 1, MessageExpiry: 60, ContentType: bs("text/plain"), ResponseTopic: bs("r/t"),
		CorrelationData: bs("\x00\xff"), WillDelay: 5, User: []UserProperty{{bs("a"), bs("")}}}
	for _, id := range []byte{PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic, PropCorrelationData, PropWillDelay} {
		will.Set(id)
	}
	connack := Properties{SessionExpiry: 10, AssignedClientID: bs("auto-1"), ServerKeepAlive: 30, AuthMethod: bs("m"), AuthData: bs("d"),
		ResponseInfo: bs("resp/"), ServerReference: bs("other:1883"), ReasonString: bs("fine"), ReceiveMaximum: 100, TopicAliasMaximum: 5,
		MaximumQoS: 1, RetainAvailable: 0, MaximumPacketSize: 65536, WildcardSubAvailable: 1, SubIDAvailable: 1, SharedSubAvailable: 0}
	for _, id := range []byte{PropSessionExpiry, PropAssignedClientID, PropServerKeepAlive, PropAuthMethod, PropAuthData, PropResponseInfo,
		PropServerReference, PropReasonString, PropReceiveMaximum, PropTopicAliasMaximum, PropMaximumQoS, PropRetainAvailable,
		PropMaximumPacketSize, PropWildcardSubAvailable, PropSubIDAvailable, PropSharedSubAvailable} {
		connack.Set(id)
	}
	pub := Properties{PayloadFormat: 0, MessageExpiry: 9, ContentType: bs("a/b"), ResponseTopic: bs("reply/here"), CorrelationData: bs("c"),
		TopicAlias: 3, SubscriptionIDs: []uint32{1, 268435455}, User: []UserProperty{{bs("x"), bs("y")}}}
	for _, id := range []byte{PropPayloadFormat, PropMessageExpiry, PropContentType, PropResponseTopic, PropCorrelationData, PropTopicAlias} {
		pub.Set(id)
	}
	reason := Properties{ReasonString: bs("why"), User: []UserProperty{{bs("u"), bs("v")}}}
	reason.Set(PropReasonString)
	disc := reason
	disc.SessionExpiry, disc.ServerReference = 0, bs("elsewhere")
	disc.Set(PropSessionExpiry)
	disc.Set(PropServerReference)
	auth := reason
	auth.AuthMethod, auth.AuthData = bs("SCRAM"), bs("x")
	auth.Set(PropAuthMethod)
	auth.Set(PropAuthData)
	subProps := Properties{SubscriptionIDs: []uint32{42}, User: []UserProperty{{bs("s"), bs("t")}}}

	ps := []Packet{
		{Type: CONNECT, Version: 3, ClientID: bs("c31"), CleanStart: true, Keepalive: 60},
		{Type: CONNECT, Version: 4, ClientID: bs("c"), Keepalive: 10, HasUsername: true, Username: bs("ü"), HasPassword: true, Password: bs("\x00pw"),
			Will: true, WillQoS: 2, WillRetain: true, WillTopic: bs("will/t"), WillPayload: bs("bye")},
		{Type: CONNECT, Version: 4, Bridge: true, ClientID: bs(""), CleanStart: true},
		{Type: CONNECT, Version: 5, ClientID: bs("c5"), CleanStart: true, Keepalive: 0, HasPassword: true, Password: bs("p"), Props: allConnect,
			Will: true, WillQoS: 1, WillTopic: bs("w"), WillPayload: bs(""), WillProps: will},
		{Type: CONNACK, Version: 4, SessionPresent: true},
		{Type: CONNACK, Version: 3, Reason: 5},
		{Type: CONNACK, Version: 5, Reason: NotAuthorized, Props: connack},
		{Type: PUBLISH, Version: 4, Topic: bs("a/b"), Payload: bs("hello")},
		{Type: PUBLISH, Version: 3, QoS: 2, Dup: true, Retain: true, ID: 65535, Topic: bs("$SYS/x"), Payload: bytes.Repeat([]byte{7}, 300)},
		{Type: PUBLISH, Version: 5, QoS: 1, ID: 1, Topic: bs("a/ü/c"), Payload: bs("p"), Props: pub},
		{Type: PUBLISH, Version: 5, Topic: bs(""), Props: Properties{TopicAlias: 3, Present: 1 << PropTopicAlias}},
		{Type: PUBACK, Version: 4, ID: 7},
		{Type: PUBREC, Version: 4, ID: 7},
		{Type: PUBREL, Version: 4, ID: 7},
		{Type: PUBCOMP, Version: 3, ID: 7},
		{Type: PUBACK, Version: 5, ID: 8, Reason: NoMatchingSubscribers},
		{Type: PUBREC, Version: 5, ID: 8, Reason: QuotaExceeded, Props: reason},
		{Type: PUBREL, Version: 5, ID: 8, Reason: PacketIDNotFound},
		{Type: PUBCOMP, Version: 5, ID: 8, Props: reason},
		{Type: SUBSCRIBE, Version: 4, ID: 2, Subs: []Subscription{{Filter: bs("a/+/c"), QoS: 1}, {Filter: bs("#"), QoS: 2}, {Filter: bs("$share/g/x/#")}}},
		{Type: SUBSCRIBE, Version: 5, ID: 3, Props: subProps, Subs: []Subscription{{Filter: bs("a/#"), QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2}, {Filter: bs("$share/g/+"), RetainHandling: 1}}},
		{Type: SUBACK, Version: 4, ID: 2, Reasons: []ReasonCode{1, 2, 0x80, 0}},
		{Type: SUBACK, Version: 5, ID: 3, Reasons: []ReasonCode{GrantedQoS2, SharedSubsNotSupported, WildcardSubsNotSupported}, Props: reason},
		{Type: UNSUBSCRIBE, Version: 4, ID: 4, Subs: []Subscription{{Filter: bs("a/+")}, {Filter: bs("b")}}},
		{Type: UNSUBSCRIBE, Version: 5, ID: 4, Subs: []Subscription{{Filter: bs("a/+")}}, Props: Properties{User: []UserProperty{{bs("k"), bs("v")}}}},
		{Type: UNSUBACK, Version: 4, ID: 4},
		{Type: UNSUBACK, Version: 5, ID: 4, Reasons: []ReasonCode{Success, NoSubscriptionExisted}, Props: reason},
		{Type: PINGREQ, Version: 4},
		{Type: PINGRESP, Version: 5},
		{Type: DISCONNECT, Version: 4},
		{Type: DISCONNECT, Version: 5},
		{Type: DISCONNECT, Version: 5, Reason: DisconnectWithWill},
		{Type: DISCONNECT, Version: 5, Reason: ServerShuttingDown, Props: disc},
		{Type: AUTH, Version: 5, Reason: ContinueAuthentication, Props: auth},
		{Type: AUTH, Version: 5},
	}
	for i := range ps {
		if ps[i].Type == CONNECT {
			ps[i].ProtocolName = bs("MQTT")
			if ps[i].Version == 3 {
				ps[i].ProtocolName = bs("MQIsdp")
			}
		}
	}
	return ps
}

// normalize makes empty slices nil, so that a decoded packet (whose empty
// strings alias its buffer) compares with reflect.DeepEqual.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		normalize(v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.SetZero()
			return
		}
		if v.Type().Elem().Kind() == reflect.Struct {
			for i := 0; i < v.Len(); i++ {
				normalize(v.Index(i))
			}
		}
	}
}

func equalPackets(a, b *Packet) bool {
	x, y := clonePacket(a), clonePacket(b)
	normalize(reflect.ValueOf(&x))
	normalize(reflect.ValueOf(&y))
	return reflect.DeepEqual(x, y)
}

// clonePacket deep-copies p (its slices alias a reader's buffer).
func clonePacket(p *Packet) Packet {
	var q Packet
	enc := p.Append(nil)
	head, body := enc[0], enc[1:]
	_, w := decodeLen(body)
	if err := q.Decode(head, bytes.Clone(body[w:]), p.Version); err != nil {
		q = *p // an invalid packet: compare as is
	}
	q.Subs = append([]Subscription(nil), p.Subs...)
	return q
}

func decodeLen(b []byte) (int, int) {
	n, mul := 0, 1
	for i, c := range b {
		n += int(c&0x7f) * mul
		mul *= 128
		if c&0x80 == 0 {
			return n, i + 1
		}
	}
	return n, len(b)
}

// readOne reads one packet at a level; server reads it as the broker
// does (Reader.Server).
func readOne(t testing.TB, enc []byte, version byte, server bool) (*Packet, error) {
	t.Helper()
	d := NewReader(bufio.NewReader(bytes.NewReader(enc)), 0)
	d.Version, d.Server = version, server
	var p Packet
	err := d.Read(&p)
	return &p, err
}

// level is the level a Reader has before it reads p.
func level(p *Packet) byte {
	if p.Type == CONNECT {
		return 0
	}
	return p.Version
}

// clientSends: whether a client may send packets of this type (which the
// broker reads with Reader.Server).
func clientSends(head byte) bool {
	switch head >> 4 {
	case CONNACK, SUBACK, UNSUBACK, PINGRESP:
		return false
	}
	return true
}

// TestRoundTrip: decode(encode(p)) == p for a packet of every type at
// every level, every property included.
func TestRoundTrip(t *testing.T) {
	for i, p := range samplePackets() {
		enc := p.Append(nil)
		got, err := readOne(t, enc, level(&p), false)
		if err != nil {
			t.Fatalf("%d: type %d v%d: %v\n% x", i, p.Type, p.Version, err, enc)
		}
		a, b := p, *got
		normalize(reflect.ValueOf(&a))
		normalize(reflect.ValueOf(&b))
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%d: type %d v%d:\n got %+v\nwant %+v", i, p.Type, p.Version, b, a)
		}
	}
}

// TestAppendMatchesOldEncoders: the struct encoder and wire.go's append
// helpers (used by loadgen) write the same bytes.
func TestAppendMatchesOldEncoders(t *testing.T) {
	u, pw := "user", "pw"
	old := AppendConnect(nil, Connect{Version: 4, ClientID: "id", Username: &u, Password: &pw, Clean: true, Keepalive: 30})
	p := Packet{Type: CONNECT, Version: 4, ClientID: bs("id"), HasUsername: true, Username: bs(u), HasPassword: true, Password: bs(pw), CleanStart: true, Keepalive: 30}
	if got := p.Append(nil); !bytes.Equal(got, old) {
		t.Errorf("CONNECT\n got % x\nwant % x", got, old)
	}
	old = AppendPublish(nil, 5, "a/b", bytes.Repeat([]byte("x"), 200), 1, true, 9)
	p = Packet{Type: PUBLISH, Version: 5, Topic: bs("a/b"), Payload: bytes.Repeat([]byte("x"), 200), QoS: 1, Retain: true, ID: 9}
	if got := p.Append(nil); !bytes.Equal(got, old) {
		t.Errorf("PUBLISH\n got % x\nwant % x", got, old)
	}
}

// refusal is an input both this decoder and mosquitto 2.0.11 refuse
// (TestMosquittoRefusesTheSame sends the server-bound ones to it).
type refusal struct {
	name    string
	lax20   bool   // mosquitto 2.0.11 accepts it (2.1.2 refuses it)
	version byte   // the connection's level (0: the packet is the CONNECT)
	pkt     []byte // whole packet
	code    ReasonCode
}

func pkt(head byte, body ...string) []byte {
	return AppendPacket(nil, head, []byte(strings.Join(body, "")))
}

func str(s string) string { return string(AppendString(nil, s)) }

const (
	hdr4 = "\x00\x04MQTT\x04"
	hdr5 = "\x00\x04MQTT\x05"
)

var refusals = []refusal{
	// fixed header
	{"remaining length over four bytes", false, 4, []byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01}, MalformedPacket},
	{"PINGREQ flags", true, 4, []byte{0xc1, 0}, MalformedPacket},
	{"PINGREQ with a body", true, 4, []byte{0xc0, 1, 0}, MalformedPacket},
	{"SUBSCRIBE flags 0", false, 4, pkt(0x80, "\x00\x01", str("a"), "\x00"), MalformedPacket},
	{"UNSUBSCRIBE flags 0", false, 4, pkt(0xa0, "\x00\x01", str("a")), MalformedPacket},
	{"PUBREL flags 0", false, 4, pkt(0x60, "\x00\x01"), MalformedPacket},
	{"PUBACK flags 2", true, 4, pkt(0x42, "\x00\x01"), MalformedPacket},
	{"DISCONNECT flags", false, 4, []byte{0xe2, 0}, MalformedPacket},
	{"reserved type 0", false, 4, []byte{0x00, 0}, ProtocolError},
	// CONNECT
	{"protocol name mqtt", false, 0, pkt(0x10, "\x00\x04mqtt\x04\x02\x00\x3c", str("c")), ProtocolError},
	{"protocol level 6", false, 0, pkt(0x10, "\x00\x04MQTT\x06\x02\x00\x3c", str("c")), UnsupportedProtocolVersion},
	{"MQIsdp level 4", false, 0, pkt(0x10, "\x00\x06MQIsdp\x04\x02\x00\x3c", str("c")), UnsupportedProtocolVersion},
	{"reserved connect flag", false, 0, pkt(0x10, hdr4, "\x03\x00\x3c", str("c")), ProtocolError},
	{"will QoS 3", false, 0, pkt(0x10, hdr4, "\x1e\x00\x3c", str("c"), str("w"), str("p")), ProtocolError},
	{"will retain without will", false, 0, pkt(0x10, hdr4, "\x22\x00\x3c", str("c")), ProtocolError},
	{"will QoS without will", false, 0, pkt(0x10, hdr4, "\x0a\x00\x3c", str("c")), ProtocolError},
	{"will topic with wildcard", false, 0, pkt(0x10, hdr4, "\x06\x00\x3c", str("c"), str("w/#"), str("p")), ProtocolError},
	{"empty will topic", false, 0, pkt(0x10, hdr4, "\x06\x00\x3c", str("c"), str(""), str("p")), ProtocolError},
	{"password without username 3.1.1", false, 0, pkt(0x10, hdr4, "\x42\x00\x3c", str("c"), str("p")), ProtocolError},
	{"username flag, no username", false, 0, pkt(0x10, hdr4, "\x82\x00\x3c", str("c")), ProtocolError},
	{"bytes after the payload", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("c"), "x"), ProtocolError},
	{"client id U+0000", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("a\x00b")), MalformedPacket},
	{"client id control char", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("a\x01b")), MalformedPacket},
	{"client id C1 control", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("a\u0085b")), MalformedPacket},
	{"client id overlong NUL", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("a\xc0\x80")), MalformedPacket},
	{"client id surrogate", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("\xed\xa0\x80")), MalformedPacket},
	{"client id non-character", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("\uffff")), MalformedPacket},
	{"client id truncated UTF-8", false, 0, pkt(0x10, hdr4, "\x02\x00\x3c", str("\xe2\x82")), MalformedPacket},
	{"username bad UTF-8", false, 0, pkt(0x10, hdr4, "\x82\x00\x3c", str("c"), str("\xff")), ProtocolError},
	{"v5 unknown property", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x02\x05\x00", str("c")), MalformedPacket},
	{"v5 property not for CONNECT", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x03\x23\x00\x01", str("c")), ProtocolError},
	{"v5 duplicate session expiry", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x0a\x11\x00\x00\x00\x01\x11\x00\x00\x00\x01", str("c")), ProtocolError},
	{"v5 receive maximum 0", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x03\x21\x00\x00", str("c")), ProtocolError},
	{"v5 maximum packet size 0", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x05\x27\x00\x00\x00\x00", str("c")), ProtocolError},
	{"v5 request problem info 2", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x02\x17\x02", str("c")), ProtocolError},
	{"v5 property length beyond packet", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x7f", str("c")), MalformedPacket},
	{"v5 user property bad UTF-8", false, 0, pkt(0x10, hdr5, "\x02\x00\x3c", "\x07\x26", str("k"), str("\x01"), str("c")), MalformedPacket},
	{"v5 will property not for wills", false, 0, pkt(0x10, hdr5, "\x06\x00\x3c", "\x00", str("c"), "\x05\x11\x00\x00\x00\x01", str("w"), str("p")), ProtocolError},
	{"v5 will payload format 2", true, 0, pkt(0x10, hdr5, "\x06\x00\x3c", "\x00", str("c"), "\x02\x01\x02", str("w"), str("p")), ProtocolError},
	// PUBLISH
	{"PUBLISH QoS 3", false, 4, pkt(0x36, str("a"), "\x00\x01"), MalformedPacket},
	{"PUBLISH QoS 0 with DUP", true, 4, pkt(0x38, str("a")), MalformedPacket},
	{"PUBLISH topic with +", false, 4, pkt(0x30, str("a/+")), MalformedPacket},
	{"PUBLISH topic with #", false, 4, pkt(0x30, str("#")), MalformedPacket},
	{"PUBLISH empty topic 3.1.1", false, 4, pkt(0x30, str(""), "x"), MalformedPacket},
	{"PUBLISH empty topic v5 without alias", false, 5, pkt(0x30, str(""), "\x00x"), MalformedPacket},
	{"PUBLISH topic U+0000", false, 4, pkt(0x30, str("a\x00")), MalformedPacket},
	{"PUBLISH topic bad UTF-8", false, 4, pkt(0x30, str("a\xfe")), MalformedPacket},
	{"PUBLISH topic with 202 levels", false, 4, pkt(0x30, str(strings.Repeat("a/", 201)+"a")), MalformedPacket},
	{"PUBLISH packet id 0", false, 4, pkt(0x32, str("a"), "\x00\x00"), ProtocolError},
	{"PUBLISH short topic", false, 4, pkt(0x30, "\x00\x05ab"), MalformedPacket},
	{"PUBLISH v5 topic alias 0", false, 5, pkt(0x30, str("a"), "\x03\x23\x00\x00"), ProtocolError},
	{"PUBLISH v5 subscription id 0", true, 5, pkt(0x30, str("a"), "\x02\x0b\x00"), ProtocolError},
	{"PUBLISH v5 overlong varint", false, 5, pkt(0x30, str("a"), "\x03\x0b\x81\x00"), MalformedPacket},
	{"PUBLISH v5 session expiry", false, 5, pkt(0x30, str("a"), "\x05\x11\x00\x00\x00\x01"), ProtocolError},
	{"PUBLISH v5 payload format 2", true, 5, pkt(0x30, str("a"), "\x02\x01\x02"), ProtocolError},
	{"PUBLISH v5 duplicate content type", false, 5, pkt(0x30, str("a"), "\x08\x03", str("a"), "\x03", str("b")), ProtocolError},
	{"PUBLISH v5 response topic bad UTF-8", false, 5, pkt(0x30, str("a"), "\x04\x08", str("\x7f")), MalformedPacket},
	// acknowledgements
	{"PUBACK packet id 0", false, 4, pkt(0x40, "\x00\x00"), ProtocolError},
	{"PUBACK 3.1.1 with 3 bytes", true, 4, pkt(0x40, "\x00\x01\x00"), MalformedPacket},
	{"PUBREL short", false, 4, pkt(0x62, "\x00"), MalformedPacket},
	{"PUBACK v5 reason 0x92", true, 5, pkt(0x40, "\x00\x01\x92"), ProtocolError},
	{"PUBCOMP v5 reason 0x80", true, 5, pkt(0x70, "\x00\x01\x80"), ProtocolError},
	{"PUBREL v5 topic alias property", false, 5, pkt(0x62, "\x00\x01\x00\x03\x23\x00\x01"), ProtocolError},
	// SUBSCRIBE / UNSUBSCRIBE
	{"SUBSCRIBE no filter", false, 4, pkt(0x82, "\x00\x01"), MalformedPacket},
	{"SUBSCRIBE packet id 0", false, 4, pkt(0x82, "\x00\x00", str("a"), "\x00"), ProtocolError},
	{"SUBSCRIBE no options byte", false, 4, pkt(0x82, "\x00\x01", str("a")), MalformedPacket},
	{"SUBSCRIBE QoS 3", false, 4, pkt(0x82, "\x00\x01", str("a"), "\x03"), MalformedPacket},
	{"SUBSCRIBE 3.1.1 reserved bits", false, 4, pkt(0x82, "\x00\x01", str("a"), "\x04"), MalformedPacket},
	{"SUBSCRIBE v5 reserved bits", false, 5, pkt(0x82, "\x00\x01\x00", str("a"), "\x40"), MalformedPacket},
	{"SUBSCRIBE v5 retain handling 3", false, 5, pkt(0x82, "\x00\x01\x00", str("a"), "\x30"), MalformedPacket},
	{"SUBSCRIBE empty filter", false, 4, pkt(0x82, "\x00\x01", str(""), "\x00"), MalformedPacket},
	{"SUBSCRIBE # not last", false, 4, pkt(0x82, "\x00\x01", str("a/#/b"), "\x00"), MalformedPacket},
	{"SUBSCRIBE # in a level", false, 4, pkt(0x82, "\x00\x01", str("a/b#"), "\x00"), MalformedPacket},
	{"SUBSCRIBE + in a level", false, 4, pkt(0x82, "\x00\x01", str("a/+b"), "\x00"), MalformedPacket},
	{"SUBSCRIBE filter with 202 levels", false, 4, pkt(0x82, "\x00\x01", str(strings.Repeat("+/", 201)+"#"), "\x00"), MalformedPacket},
	{"SUBSCRIBE v5 filter with 202 levels", false, 5, pkt(0x82, "\x00\x01\x00", str("$share/g/"+strings.Repeat("/", 199)), "\x00"), MalformedPacket},
	{"SUBSCRIBE filter U+0000", false, 4, pkt(0x82, "\x00\x01", str("a\x00"), "\x00"), MalformedPacket},
	{"SUBSCRIBE v5 no local on shared", true, 5, pkt(0x82, "\x00\x01\x00", str("$share/g/a"), "\x04"), ProtocolError},
	{"SUBSCRIBE v5 subscription id 0", false, 5, pkt(0x82, "\x00\x01\x02\x0b\x00", str("a"), "\x00"), MalformedPacket},
	{"PUBLISH v5 two subscription ids", false, 5, pkt(0x30, str("a"), "\x04\x0b\x01\x0b\x02"), ProtocolError},
	{"PUBLISH v5 subscription id from a client", true, 5, pkt(0x30, str("a"), "\x02\x0b\x01"), ProtocolError},
	{"second CONNECT", false, 4, pkt(0x10, hdr4, "\x02\x00\x3c", str("c")), ProtocolError},
	{"SUBSCRIBE v5 two subscription ids", false, 5, pkt(0x82, "\x00\x01\x04\x0b\x01\x0b\x02", str("a"), "\x00"), ProtocolError},
	{"SUBSCRIBE v5 topic alias property", false, 5, pkt(0x82, "\x00\x01\x03\x23\x00\x01", str("a"), "\x00"), MalformedPacket},
	{"UNSUBSCRIBE no filter", false, 4, pkt(0xa2, "\x00\x01"), MalformedPacket},
	{"UNSUBSCRIBE packet id 0", false, 4, pkt(0xa2, "\x00\x00", str("a")), ProtocolError},
	{"UNSUBSCRIBE bad filter", false, 4, pkt(0xa2, "\x00\x01", str("a/#/b")), MalformedPacket},
	{"UNSUBSCRIBE v5 reason string property", false, 5, pkt(0xa2, "\x00\x01\x04\x1f", str("x"), str("a")), MalformedPacket},
	// DISCONNECT / AUTH
	{"DISCONNECT 3.1.1 with a body", false, 4, pkt(0xe0, "\x00"), MalformedPacket},
	{"DISCONNECT v5 reason 0x01", false, 5, pkt(0xe0, "\x01"), ProtocolError},
	{"DISCONNECT v5 property not allowed", false, 5, pkt(0xe0, "\x00\x03\x21\x00\x01"), ProtocolError},
	{"AUTH in 3.1.1", false, 4, []byte{0xf0, 0}, ProtocolError},
	{"AUTH v5 reason 0x80", false, 5, pkt(0xf0, "\x80"), ProtocolError},
	// client-bound packets a client sends wrong
	{"CONNACK 3.1.1 return code 6", false, 4, pkt(0x20, "\x00\x06"), ProtocolError},
	{"CONNACK reserved flags", false, 4, pkt(0x20, "\x02\x00"), MalformedPacket},
	{"SUBACK 3.1.1 code 3", false, 4, pkt(0x90, "\x00\x01\x03"), ProtocolError},
	{"UNSUBACK v5 no reason", false, 5, pkt(0xb0, "\x00\x01\x00"), ProtocolError},
	// any packet before CONNECT
	{"PUBLISH before CONNECT", false, 0, pkt(0x30, str("a")), ProtocolError},
}

// TestRefusals: each malformed input is refused with the reason code the
// spec and mosquitto give it.
func TestRefusals(t *testing.T) {
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			p, err := readOne(t, r.pkt, r.version, clientSends(r.pkt[0]))
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err %v, want a refusal with 0x%02x", err, byte(r.code))
			}
			if e.Code != r.code {
				t.Fatalf("%v, want reason code 0x%02x", err, byte(r.code))
			}
			if r.code == UnsupportedProtocolVersion && (p.Version == 0 || p.ProtocolName == nil) {
				t.Fatalf("level %d, name %q: the engine cannot choose its CONNACK", p.Version, p.ProtocolName)
			}
		})
	}
}

// acceptance is an input at the edge of the rules that both this decoder
// and mosquitto (2.0.11 and 2.1.2) accept.
type acceptance struct {
	name    string
	version byte
	pkt     []byte
}

var acceptances = []acceptance{
	{"3.1 username flag without a username is ignored", 0, pkt(0x10, "\x00\x06MQIsdp\x03\x82\x00\x3c", str("c"))},
	{"3.1 reserved flag", 0, pkt(0x10, "\x00\x06MQIsdp\x03\x03\x00\x3c", str("c"))},
	{"v5 password without username", 0, pkt(0x10, hdr5, "\x42\x00\x3c\x00", str("c"), str("p"))},
	{"overlong remaining length", 4, []byte{0xc0, 0x80, 0x00}},
	{"topic with 4-byte UTF-8 and $", 4, pkt(0x30, str("$a/\U0001F600/b"), "x")},
	{"filter + alone, # after /", 4, pkt(0x82, "\x00\x01", str("+/a/+/#"), "\x01", str("/"), "\x00", str("$share/g/#"), "\x02")},
	{"PUBLISH topic with 201 levels", 4, pkt(0x30, str(strings.Repeat("a/", 200)+"a"))},
	{"SUBSCRIBE filter with 201 levels", 4, pkt(0x82, "\x00\x01", str(strings.Repeat("/", 199)+"/#"), "\x00")},
	{"PUBLISH v5 payload format 1, payload not UTF-8", 5, pkt(0x30, str("a"), "\x02\x01\x01", "\xff\x00")},
	{"PUBACK v5 3 bytes", 5, pkt(0x40, "\x00\x01\x10")},
	{"PUBLISH v5 with alias and topic", 5, pkt(0x30, str("a"), "\x03\x23\x00\x05", "payload")},
}

// TestAccepted: inputs at the edge of the rules that both accept.
func TestAccepted(t *testing.T) {
	for _, c := range acceptances {
		if _, err := readOne(t, c.pkt, c.version, true); err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
	}
}

func TestValidTopicFilter(t *testing.T) {
	for f, want := range map[string]bool{
		"a": true, "/": true, "#": true, "+": true, "a/#": true, "+/+": true, "$SYS/#": true, "//": true,
		"": false, "a#": false, "#/a": false, "a+": false, "+a/b": false, "a/#/": false,
		"$share/g/a": true, "$share/g/#": true, "$share/g//": true,
		"$share/g": false, "$share/g/": false, "$share//a": false, "$share/+/a": false, "$share/g#/a": false, "$share/g/a#": false,
		"$sharex/g": true,
	} {
		if got := ValidTopicFilter(f); got != want {
			t.Errorf("ValidTopicFilter(%q) = %v, want %v", f, got, want)
		}
	}
}

// TestMaxSize: a packet over Reader.MaxSize (first byte and remaining
// length, as mosquitto counts) is refused before its body is read.
func TestMaxSize(t *testing.T) {
	p := Packet{Type: PUBLISH, Version: 4, Topic: bs("t"), Payload: make([]byte, 200)}
	enc := p.Append(nil) // 1 + 2 length bytes + 203
	for _, c := range []struct {
		max     int
		refused bool
	}{{len(enc), false}, {len(enc) - 2, false}, {len(enc) - 3, true}} {
		d := NewReader(bufio.NewReader(bytes.NewReader(enc[:3])), c.max) // no body: refused from the header
		d.Version = 4
		var q Packet
		err := d.Read(&q)
		if (CodeOf(err) == PacketTooLarge) != c.refused {
			t.Errorf("max %d of a %d-byte packet: %v", c.max, len(enc), err)
		}
	}
}

// TestReaderLengthIsOnlyAClaim: a header claiming 256 MiB followed by one
// byte costs no 256 MiB buffer, and a real large packet reads whole.
func TestReaderLengthIsOnlyAClaim(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err := readOne(t, []byte{0x30, 0xff, 0xff, 0xff, 0x7f, 'x'}, 4, true)
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Errorf("err %v, want unexpected EOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("allocated %d bytes for a packet that has 1", d)
	}
	p := Packet{Type: PUBLISH, Version: 5, Topic: bs("big"), Payload: bytes.Repeat([]byte("0123456789"), 30000)}
	got, err := readOne(t, p.Append(nil), 5, true)
	if err != nil || !bytes.Equal(got.Payload, p.Payload) {
		t.Fatalf("300 kB PUBLISH: %v, %d bytes", err, len(got.Payload))
	}
}

var writeSeeds = flag.Bool("write-seeds", false, "rewrite testdata/fuzz/FuzzRead from the samples and refusals")

// TestWriteSeeds writes the fuzz seeds in testdata/fuzz (go test -run
// TestWriteSeeds -write-seeds): FuzzRead's are a level byte and a packet
// stream.
func TestWriteSeeds(t *testing.T) {
	if !*writeSeeds {
		t.Skip("only with -write-seeds")
	}
	writeTo := func(target, name, value string) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte("go test fuzz v1\n"+value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write := func(name string, data []byte) { writeTo("FuzzRead", name, fmt.Sprintf("[]byte(%q)", data)) }
	for i, s := range stringSeeds {
		writeTo("FuzzValidString", fmt.Sprintf("seed-%02d", i), fmt.Sprintf("string(%q)", s))
	}
	for i, s := range filterSeeds {
		writeTo("FuzzValidTopicFilter", fmt.Sprintf("seed-%02d", i), fmt.Sprintf("string(%q)", s))
	}
	for i, p := range samplePackets() {
		v := p.Version
		if p.Type == CONNECT {
			v = 0
		}
		write(fmt.Sprintf("sample-%02d", i), append([]byte{v}, p.Append(nil)...))
	}
	for i, r := range refusals {
		v := r.version
		if clientSends(r.pkt[0]) {
			v |= 0x80
		}
		write(fmt.Sprintf("refusal-%02d", i), append([]byte{v}, r.pkt...))
	}
	for i, a := range acceptances {
		write(fmt.Sprintf("accepted-%02d", i), append([]byte{a.version | 0x80}, a.pkt...))
	}
}

// FuzzRead: any bytes, read as a stream at a level (first byte mod 6; bit 7
// reads as the broker, Reader.Server), decode to
// packets or an *Error, never a panic; every packet decoded re-encodes to
// one that decodes equal (decode(encode(p)) == p).
func FuzzRead(f *testing.F) {
	for _, p := range samplePackets() {
		f.Add(append([]byte{p.Version}, p.Append(nil)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		d := NewReader(bufio.NewReader(bytes.NewReader(data[1:])), 1<<16)
		d.Version, d.Server = data[0]%6, data[0]&0x80 != 0
		var p Packet
		for {
			err := d.Read(&p)
			if err != nil {
				return
			}
			enc := p.Append(nil)
			q, err := readOne(t, enc, level(&p), false)
			if err != nil {
				t.Fatalf("re-encoded type %d v%d refused: %v\n% x", p.Type, p.Version, err, enc)
			}
			if !equalPackets(&p, q) {
				t.Fatalf("round trip type %d v%d:\n got %+v\nwant %+v", p.Type, p.Version, *q, p)
			}
		}
	})
}
