package mqttwire_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// startMosquitto runs mosquitto (bin) on a free port with anonymous
// clients, logging everything, plus extra configuration lines.
func startMosquitto(t *testing.T, bin, extra string) (string, *testutil.SyncBuffer) {
	return testutil.StartAnonymousMosquitto(t, bin, "log_type all\n"+extra)
}

// verdict is what a peer did with packets followed by a PINGREQ.
type verdict struct {
	accepted bool // it answered the PINGREQ
	// code is the reason code of the DISCONNECT, or of a CONNACK refusing
	// the connection, it sent (0: none); connack3 says the CONNACK was
	// 3.1.1's (a return code).
	code     byte
	connack3 bool
}

// send connects (with a CONNECT at version, unless version is 0), sends
// pkt and a PINGREQ, and reads until PINGRESP or the connection closes.
func send(t *testing.T, addr string, version byte, pkts ...[]byte) verdict {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if version != 0 {
		p := mqttwire.Packet{Type: mqttwire.CONNECT, Version: version, CleanStart: true, Keepalive: 60, ClientID: []byte("wire-test")}
		if _, err := c.Write(p.Append(nil)); err != nil {
			t.Fatal(err)
		}
		head, body, err := mqttwire.ReadPacket(r, nil)
		if err != nil || head>>4 != mqttwire.CONNACK || body[1] != 0 {
			t.Fatalf("CONNECT v%d: %x %x %v", version, head, body, err)
		}
	}
	for _, p := range pkts {
		if _, err := c.Write(p); err != nil {
			break // refused already
		}
	}
	c.Write([]byte{mqttwire.PINGREQ << 4, 0})
	var v verdict
	for {
		head, body, err := mqttwire.ReadPacket(r, nil)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("no answer and no close in 10 s")
			}
			return v
		}
		switch head >> 4 {
		case mqttwire.PINGRESP:
			v.accepted = true
			return v
		case mqttwire.CONNACK:
			if len(body) >= 2 && body[1] != 0 {
				v.code, v.connack3 = body[1], len(body) == 2
			}
		case mqttwire.DISCONNECT:
			if len(body) >= 1 {
				v.code = body[0]
			}
		}
	}
}

var brokers = []struct {
	name string
	bin  func(*testing.T) string
}{
	{"2.1.2", func(t *testing.T) string { return filepath.Join(testutil.Mosquitto21(t), "mosquitto") }},
	{"2.0.11", func(t *testing.T) string { return testutil.RequireBinary(t, "mosquitto") }},
}

// TestMosquittoRefusesTheSame sends every input of the refusals table a
// client can send, the acceptances and the sample packets to mosquitto
// 2.1.2 and 2.0.11. 2.1.2 refuses every refusal, and where it names a
// reason code (MQTT 5) it is the decoder's; 2.0.11 refuses them too, except
// the ones marked lax20, which it accepts (the decoder follows the spec
// and 2.1.2 there). Both accept the acceptances and the samples.
func TestMosquittoRefusesTheSame(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			addr, log := startMosquitto(t, b.bin(t), "")
			defer func() {
				if t.Failed() {
					t.Log(log.String())
				}
			}()
			for _, r := range mqttwire.Refusals() {
				switch r.Pkt[0] >> 4 {
				case mqttwire.CONNACK, mqttwire.SUBACK, mqttwire.UNSUBACK, mqttwire.PINGRESP:
					continue // what a server sends: refused by a client reading it
				}
				v := send(t, addr, r.Version, r.Pkt)
				lax := r.Lax20 && b.name == "2.0.11"
				switch {
				case v.accepted && !lax:
					t.Errorf("%s: mosquitto %s accepts % x; the decoder refuses it with 0x%02x", r.Name, b.name, r.Pkt, byte(r.Code))
				case !v.accepted && lax:
					t.Errorf("%s: mosquitto %s refuses % x now: drop lax20", r.Name, b.name, r.Pkt)
				case v.connack3 && (v.code != 1 || r.Code != mqttwire.UnsupportedProtocolVersion):
					t.Errorf("%s: mosquitto %s answers CONNACK %d; the decoder refuses with 0x%02x", r.Name, b.name, v.code, byte(r.Code))
				case b.name == "2.1.2" && !v.connack3 && v.code != 0 && v.code != byte(r.Code):
					t.Errorf("%s: mosquitto %s says reason code 0x%02x; the decoder 0x%02x", r.Name, b.name, v.code, byte(r.Code))
				}
			}
			for _, a := range mqttwire.Acceptances() {
				if v := send(t, addr, a.Version, a.Pkt); !v.accepted {
					t.Errorf("%s: mosquitto %s refuses % x (code 0x%02x); the decoder accepts it", a.Name, b.name, a.Pkt, v.code)
				}
			}
			streams := map[byte][][]byte{}
			for _, p := range mqttwire.SamplePackets() {
				switch p.Type {
				case mqttwire.CONNECT:
					p.Props.Present &^= 1<<mqttwire.PropAuthMethod | 1<<mqttwire.PropAuthData // no such method here
					if v := send(t, addr, 0, p.Append(nil)); !v.accepted {
						t.Errorf("sample CONNECT v%d: mosquitto %s refuses it (code 0x%02x)", p.Version, b.name, v.code)
					}
				case mqttwire.CONNACK, mqttwire.SUBACK, mqttwire.UNSUBACK, mqttwire.PINGRESP, mqttwire.DISCONNECT, mqttwire.AUTH:
				default:
					if p.Type == mqttwire.PUBLISH && len(p.Props.SubscriptionIDs) > 0 {
						p.Props.SubscriptionIDs = nil // only a server sends them
					}
					streams[p.Version] = append(streams[p.Version], p.Append(nil))
				}
			}
			for version, pkts := range streams {
				if v := send(t, addr, version, pkts...); !v.accepted {
					t.Errorf("samples v%d: mosquitto %s refuses one (code 0x%02x)", version, b.name, v.code)
				}
			}
		})
	}
}

// TestMosquittoMaxPacketSize: a Reader with MaxSize 200 refuses the same
// PUBLISH sizes as mosquitto with max_packet_size 200 (which counts the
// first byte and the remaining length, not the length's own two bytes),
// and mosquitto tells an MQTT 5 client PacketTooLarge.
func TestMosquittoMaxPacketSize(t *testing.T) {
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			addr, _ := startMosquitto(t, b.bin(t), "max_packet_size 200\n")
			for _, v := range []byte{4, 5} {
				for size := 200; size <= 204; size++ {
					p := mqttwire.Packet{Type: mqttwire.PUBLISH, Version: v, Topic: []byte("t")}
					p.Payload = make([]byte, size-len(p.Append(nil))-1) // -1: a second length byte
					enc := p.Append(nil)
					if len(enc) != size {
						t.Fatalf("built %d bytes, want %d", len(enc), size)
					}
					d := mqttwire.NewReader(bufio.NewReader(bytes.NewReader(enc)), 200)
					d.Version, d.Server = v, true
					var q mqttwire.Packet
					err := d.Read(&q)
					ours := mqttwire.CodeOf(err) != mqttwire.PacketTooLarge
					if err != nil && ours {
						t.Fatalf("v%d %d bytes: %v", v, size, err)
					}
					got := send(t, addr, v, enc)
					if got.accepted != ours {
						t.Errorf("v%d %d-byte PUBLISH: mosquitto %s accepts: %v, the Reader: %v", v, size, b.name, got.accepted, ours)
					}
					if !got.accepted && v == 5 && got.code != byte(mqttwire.PacketTooLarge) {
						t.Errorf("v%d %d-byte PUBLISH: mosquitto %s says 0x%02x", v, size, b.name, got.code)
					}
				}
			}
		})
	}
}

// client is one connection read with a Reader, as mqttctl's clients will.
type client struct {
	t    *testing.T
	conn net.Conn
	r    *mqttwire.Reader
	p    mqttwire.Packet
}

func dial(t *testing.T, addr string, connect mqttwire.Packet) *client {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(20 * time.Second))
	c := &client{t: t, conn: conn, r: mqttwire.NewReader(bufio.NewReader(conn), 0)}
	c.r.Version = connect.Version
	c.send(connect)
	if got := c.read(mqttwire.CONNACK); got.Reason != 0 {
		t.Fatalf("CONNACK 0x%02x", byte(got.Reason))
	}
	return c
}

func (c *client) send(p mqttwire.Packet) {
	c.t.Helper()
	if _, err := c.conn.Write(p.Append(nil)); err != nil {
		c.t.Fatal(err)
	}
}

// read decodes the next packet, which must be of type typ.
func (c *client) read(typ byte) *mqttwire.Packet {
	c.t.Helper()
	if err := c.r.Read(&c.p); err != nil {
		c.t.Fatalf("reading a packet of type %d: %v", typ, err)
	}
	if c.p.Type != typ {
		c.t.Fatalf("packet type %d, want %d", c.p.Type, typ)
	}
	return &c.p
}

// TestMosquittoPacketsDecode: what mosquitto sends (CONNACK, SUBACK,
// PUBLISH with the publisher's properties and the subscription identifier,
// PUBACK, UNSUBACK, PINGRESP) decodes, at 3.1.1 and 5, with the
// properties intact.
func TestMosquittoPacketsDecode(t *testing.T) {
	for _, br := range brokers {
		t.Run(br.name, func(t *testing.T) {
			addr, _ := startMosquitto(t, br.bin(t), "")
			for _, v := range []byte{4, 5} {
				sub := dial(t, addr, mqttwire.Packet{Type: mqttwire.CONNECT, Version: v, CleanStart: true, Keepalive: 60, ClientID: []byte(fmt.Sprintf("sub%d", v))})
				pub := dial(t, addr, mqttwire.Packet{Type: mqttwire.CONNECT, Version: v, CleanStart: true, Keepalive: 60, ClientID: []byte(fmt.Sprintf("pub%d", v))})
				s := mqttwire.Packet{Type: mqttwire.SUBSCRIBE, Version: v, ID: 1, Subs: []mqttwire.Subscription{{Filter: []byte("t/#"), QoS: 1}}}
				if v == 5 {
					s.Props.SubscriptionIDs = []uint32{7}
				}
				sub.send(s)
				if got := sub.read(mqttwire.SUBACK); got.ID != 1 || len(got.Reasons) != 1 || got.Reasons[0] != mqttwire.GrantedQoS1 {
					t.Fatalf("v%d SUBACK %+v", v, *got)
				}
				p := mqttwire.Packet{Type: mqttwire.PUBLISH, Version: v, QoS: 1, ID: 9, Topic: []byte("t/ü"), Payload: []byte("hello")}
				if v == 5 {
					p.Props = mqttwire.Properties{PayloadFormat: 1, MessageExpiry: 60, ContentType: []byte("text/plain"),
						ResponseTopic: []byte("reply/to"), CorrelationData: []byte{0, 1, 2},
						User: []mqttwire.UserProperty{{Key: []byte("k"), Value: []byte("v1")}, {Key: []byte("k"), Value: []byte("v2")}}}
					for _, id := range []byte{mqttwire.PropPayloadFormat, mqttwire.PropMessageExpiry, mqttwire.PropContentType, mqttwire.PropResponseTopic, mqttwire.PropCorrelationData} {
						p.Props.Set(id)
					}
				}
				pub.send(p)
				if got := pub.read(mqttwire.PUBACK); got.ID != 9 {
					t.Fatalf("v%d PUBACK %+v", v, *got)
				}
				got := sub.read(mqttwire.PUBLISH)
				if string(got.Topic) != "t/ü" || string(got.Payload) != "hello" || got.QoS != 1 || got.ID == 0 {
					t.Fatalf("v%d PUBLISH %+v", v, *got)
				}
				if v == 5 {
					gp := got.Props
					if gp.PayloadFormat != 1 || gp.MessageExpiry == 0 || gp.MessageExpiry > 60 || string(gp.ContentType) != "text/plain" ||
						string(gp.ResponseTopic) != "reply/to" || !bytes.Equal(gp.CorrelationData, []byte{0, 1, 2}) ||
						len(gp.User) != 2 || string(gp.User[1].Value) != "v2" || len(gp.SubscriptionIDs) != 1 || gp.SubscriptionIDs[0] != 7 {
						t.Fatalf("v5 PUBLISH properties %+v", gp)
					}
				}
				sub.send(mqttwire.Packet{Type: mqttwire.PUBACK, Version: v, ID: got.ID})
				sub.send(mqttwire.Packet{Type: mqttwire.UNSUBSCRIBE, Version: v, ID: 2, Subs: []mqttwire.Subscription{{Filter: []byte("t/#")}, {Filter: []byte("none")}}})
				un := sub.read(mqttwire.UNSUBACK)
				if un.ID != 2 || (v == 5 && (len(un.Reasons) != 2 || un.Reasons[0] != mqttwire.Success || un.Reasons[1] != mqttwire.NoSubscriptionExisted)) {
					t.Fatalf("v%d UNSUBACK %+v", v, *un)
				}
				sub.send(mqttwire.Packet{Type: mqttwire.PINGREQ, Version: v})
				sub.read(mqttwire.PINGRESP)
			}
		})
	}
}
