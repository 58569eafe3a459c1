package broker_test

// The options differential: small configs that each exercise one
// mosquitto.conf option or protocol rule, run by the real mosquitto and by
// the bundled broker. Every case must give the same packets from both.

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/mqttws"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// optCase is one client scenario against a config; it returns what the
// client saw, in words both brokers must agree on.
type optCase struct {
	name string
	run  func(t *testing.T, addrs []string) string
}

// optConfig is a config for a group of cases. text is mosquitto.conf with
// %[1]d, %[2]d for the listener ports and %[3]s for the test directory.
type optConfig struct {
	name  string
	text  string
	files map[string]string // written to the test directory first
	cases []optCase
	// differs lists, by case name, the cases where mosquitto 2.0.11 and
	// 2.1.2 answer differently: the version serve does not follow, and its
	// answer (checked too, so that a change in either broker is seen).
	// serve follows 2.1.2, the newer reference, unless the comment says why.
	differs map[string]known
}

// known is what one mosquitto version answers where serve follows the other.
type known struct{ version, answer string }

// rawConnack sends a CONNECT at protocol level and describes the CONNACK's
// bytes (a 3.1.1 CONNACK has two, a v5 one three or more).
func rawConnack(level byte) func(t *testing.T, a []string) string {
	return func(t *testing.T, a []string) string {
		m := dialPlain(t, a[0], level)
		if _, err := m.Conn.Write(mqttwire.AppendConnect(nil, testutil.ConnectOptions{Version: level, ClientID: "lvl", Clean: true})); err != nil {
			return "write failed"
		}
		head, body, err := m.Read(3 * time.Second)
		if err != nil || head>>4 != mqttwire.CONNACK {
			return "no CONNACK"
		}
		return fmt.Sprintf("CONNACK % x", body)
	}
}

// bigPublish connects and publishes a QoS 1 message of size bytes.
func bigPublish(version byte, size int) func(t *testing.T, a []string) string {
	return func(t *testing.T, a []string) string {
		m := connected(t, a[0], version, testutil.ConnectOptions{ClientID: fmt.Sprintf("big%d-%d", version, size), Clean: true})
		// A broker that closes mid-packet ends the write; one that stops
		// reading without closing must not hang the test.
		_ = m.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
		_, _ = m.Conn.Write(mqttwire.AppendPublish(nil, version, "e/big", make([]byte, size), 1, false, 9))
		return nextPacket(m, 3*time.Second)
	}
}

// dialPlain connects a raw MQTT client (no TLS).
func dialPlain(t *testing.T, addr string, version byte) *testutil.MQTT {
	t.Helper()
	m, err := testutil.DialMQTT(addr, nil, version)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(m.Close)
	return m
}

// connackWords describes a CONNACK (or what came instead): the code and,
// for v5, the server keep alive when one was sent.
func connackWords(m *testutil.MQTT, o testutil.ConnectOptions) string {
	o.Version = m.Version
	if _, err := m.Conn.Write(mqttwire.AppendConnect(nil, o)); err != nil {
		return "write failed"
	}
	return nextPacket(m, 3*time.Second)
}

// nextPacket describes the next packet from the server: its type and reason
// code, "closed" when the server closed the connection, "nothing" when
// nothing came within d.
func nextPacket(m *testutil.MQTT, d time.Duration) string {
	head, body, err := m.Read(d)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return "nothing"
	case errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || err != nil:
		return "closed"
	}
	switch head >> 4 {
	case mqttwire.CONNACK:
		s := fmt.Sprintf("CONNACK %d", body[1])
		if m.Version == 5 && len(body) > 2 {
			s += v5Props(body[2:])
		}
		return s
	case mqttwire.DISCONNECT:
		if len(body) > 0 {
			return fmt.Sprintf("DISCONNECT 0x%02x", body[0])
		}
		return "DISCONNECT"
	case mqttwire.PUBACK:
		return fmt.Sprintf("PUBACK % x", body)
	case mqttwire.SUBACK:
		return fmt.Sprintf("SUBACK % x", body)
	case mqttwire.PUBLISH:
		topic, _, payload, _ := mqttwire.PublishInfo(head, body, m.Version)
		return fmt.Sprintf("PUBLISH %s %s", topic, payload)
	}
	return fmt.Sprintf("packet type %d", head>>4)
}

// v5Props describes the properties of a v5 CONNACK that mosquitto and the
// bundled broker must agree on (not the assigned client id, which is random).
func v5Props(b []byte) string {
	n, used := binary.Uvarint(b)
	if used <= 0 || int(n) > len(b)-used {
		return " (bad properties)"
	}
	props := b[used : used+int(n)]
	var out []string
	names := map[byte]string{0x13: "server-keepalive", 0x21: "receive-maximum", 0x22: "topic-alias-maximum", 0x24: "maximum-qos",
		0x25: "retain-available", 0x27: "maximum-packet-size", 0x28: "wildcards", 0x29: "subscription-ids", 0x2a: "shared-subscriptions"}
	for len(props) > 0 {
		pid := props[0]
		props = props[1:]
		var v uint32
		switch pid {
		case 0x13, 0x21, 0x22, 0x23:
			v, props = uint32(binary.BigEndian.Uint16(props)), props[2:]
		case 0x24, 0x25, 0x28, 0x29, 0x2a:
			v, props = uint32(props[0]), props[1:]
		case 0x11, 0x27:
			v, props = binary.BigEndian.Uint32(props), props[4:]
		case 0x12, 0x1a, 0x1c, 0x1f:
			props = props[2+int(binary.BigEndian.Uint16(props)):]
			continue
		default:
			return fmt.Sprintf(" (unknown property 0x%02x)", pid)
		}
		out = append(out, fmt.Sprintf("%s=%d", names[pid], v))
	}
	sort.Strings(out)
	if len(out) == 0 {
		return ""
	}
	return " [" + strings.Join(out, " ") + "]"
}

// connected returns a client that has connected (CONNACK 0) or fails.
func connected(t *testing.T, addr string, version byte, o testutil.ConnectOptions) *testutil.MQTT {
	t.Helper()
	m := dialPlain(t, addr, version)
	if code, err := m.Connect(o); err != nil || code != 0 {
		t.Fatalf("connect %s to %s: code %d, %v", o.ClientID, addr, code, err)
	}
	return m
}

func optConfigs() []optConfig {
	var s = testutil.Str
	connect := func(version byte, o testutil.ConnectOptions) func(t *testing.T, a []string) string {
		return func(t *testing.T, a []string) string {
			return connackWords(dialPlain(t, a[0], version), o)
		}
	}
	pwHash, err := confgen.HashPassword([]byte("pw"), 0)
	if err != nil {
		panic(err)
	}
	return []optConfig{
		{
			// mosquitto hands a persistent session to whoever connects
			// with its client id, but first drops every queued message the
			// new username may not read (db__check_acl_of_all_messages in
			// handle_connect.c); deliveries are checked at delivery.
			name: "a persistent session resumed under another username",
			text: "persistence true\npersistence_location %[3]s/\nlistener %[1]d 127.0.0.1\nallow_anonymous false\npassword_file %[3]s/passwd\nacl_file %[3]s/acl\n",
			files: map[string]string{"passwd": "alice:" + pwHash + "\nbob:" + pwHash + "\n",
				"acl": "user alice\ntopic write b/1\ntopic read x/y\n\nuser bob\ntopic read b/#\n"},
			cases: []optCase{
				{"bob's session resumed by alice: bob's queued message", func(t *testing.T, a []string) string {
					return resumeAs(t, a[0], "bobsess", "bob", "alice")
				}},
				{"bob's session resumed by bob: his queued message", func(t *testing.T, a []string) string {
					return resumeAs(t, a[0], "bobsess2", "bob", "bob")
				}},
			},
		},
		{
			name: "allow_anonymous false without password_file",
			text: "listener %[1]d 127.0.0.1\nallow_anonymous false\n",
			cases: []optCase{
				{"username and password v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "u1", Username: s("alice"), Password: s("pw"), Clean: true})},
				{"username and password v5", connect(5, testutil.ConnectOptions{ClientID: "u2", Username: s("alice"), Password: s("pw"), Clean: true})},
				{"username only v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "u3", Username: s("alice"), Clean: true})},
				{"anonymous v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "u4", Clean: true})},
			},
		},
		{
			name:  "protocol rules (anonymous allowed)",
			text:  "listener %[1]d 127.0.0.1\nallow_anonymous true\nacl_file %[3]s/acl\n",
			files: map[string]string{"acl": "topic readwrite e/#\ntopic read ops/#\n"},
			cases: []optCase{
				{"username without password_file", connect(4, testutil.ConnectOptions{ClientID: "p1", Username: s("bob"), Password: s("x"), Clean: true})},
				{"zero-length client id, clean session false, v3.1.1", connect(4, testutil.ConnectOptions{Clean: false})},
				{"zero-length client id, clean session true, v3.1.1", connect(4, testutil.ConnectOptions{Clean: true})},
				{"unknown protocol level 6", rawConnack(6)},
				{"protocol level 3 named MQTT", func(t *testing.T, a []string) string {
					m := dialPlain(t, a[0], 4)
					c := mqttwire.AppendConnect(nil, testutil.ConnectOptions{Version: 4, ClientID: "lvl3", Clean: true})
					c[8] = 3 // 10 len 00 04 'M' 'Q' 'T' 'T' level
					_, _ = m.Conn.Write(c)
					return nextPacket(m, 3*time.Second)
				}},
				{"a 2,000,100-byte publish v3.1.1", bigPublish(4, 2_000_100)},
				{"a 2,000,100-byte publish v5", bigPublish(5, 2_000_100)},
				{"subscribe to a/#/b", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "p3", Clean: true})
					_, _ = m.Conn.Write(mqttwire.AppendSubscribe(nil, 4, 1, "a/#/b", 0))
					return nextPacket(m, 2*time.Second)
				}},
				{"subscribe to a/#/b v5", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 5, testutil.ConnectOptions{ClientID: "p3b", Clean: true})
					_, _ = m.Conn.Write(mqttwire.AppendSubscribe(nil, 5, 1, "a/#/b", 0))
					return nextPacket(m, 2*time.Second)
				}},
				{"subscribe to a/b+ v3.1.1", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "p3c", Clean: true})
					_, _ = m.Conn.Write(mqttwire.AppendSubscribe(nil, 4, 1, "a/b+", 0))
					return nextPacket(m, 2*time.Second)
				}},
				{"v5 CONNACK properties with the defaults", connect(5, testutil.ConnectOptions{ClientID: "p5", Clean: true})},
				{"ACL-denied QoS 1 publish v5: the PUBACK bytes", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 5, testutil.ConnectOptions{ClientID: "p4", Clean: true})
					_, _ = m.Conn.Write(mqttwire.AppendPublish(nil, 5, "ops/x", []byte("x"), 1, false, 7))
					return nextPacket(m, 2*time.Second)
				}},
				{"persistent v3.1.1 session re-subscribes with a queued message", func(t *testing.T, a []string) string {
					return persistentResubscribe(t, a[0])
				}},
			},
			differs: map[string]known{
				// 2.1.2 answers a level other than 3, 4 and 5 with a v5
				// CONNACK 0x84 (src/handle_connect.c:514-521).
				"unknown protocol level 6": {"2.0.11", "CONNACK 00 01"},
				// 2.1 has a default max_packet_size of 2,000,000 (src/conf.c:338,
				// ChangeLog 2.1.0 "Behaviour changes"), advertised in the v5
				// CONNACK, and closes on a larger packet.
				"v5 CONNACK properties with the defaults": {"2.0.11", "CONNACK 0 [receive-maximum=20 topic-alias-maximum=10]"},
				"a 2,000,100-byte publish v3.1.1":         {"2.0.11", "PUBACK 00 09"},
				"a 2,000,100-byte publish v5":             {"2.0.11", "PUBACK 00 09 10"},
			},
		},
		{
			name: "max_packet_size set",
			text: "max_packet_size 1000\nlistener %[1]d 127.0.0.1\nallow_anonymous true\n",
			cases: []optCase{
				{"v5 CONNACK properties", connect(5, testutil.ConnectOptions{ClientID: "mp1", Clean: true})},
				{"a 900-byte publish v3.1.1", bigPublish(4, 900)},
				{"a 1100-byte publish v3.1.1", bigPublish(4, 1100)},
				{"a 1100-byte publish v5", bigPublish(5, 1100)},
			},
		},
		{
			name: "max_keepalive, retain_available false, allow_zero_length_clientid false",
			text: "max_keepalive 30\nretain_available false\nlistener %[1]d 127.0.0.1\nallow_anonymous true\nallow_zero_length_clientid false\n",
			cases: []optCase{
				{"keepalive 60 above max_keepalive v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "k1", Keepalive: 60, Clean: true})},
				{"keepalive 20 below max_keepalive v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "k2", Keepalive: 20, Clean: true})},
				{"keepalive 60 above max_keepalive v5", connect(5, testutil.ConnectOptions{ClientID: "k3", Keepalive: 60, Clean: true})},
				{"keepalive 20 below max_keepalive v5", connect(5, testutil.ConnectOptions{ClientID: "k4", Keepalive: 20, Clean: true})},
				{"keepalive 0 v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "k5", Clean: true})},
				{"keepalive 0 v5", connect(5, testutil.ConnectOptions{ClientID: "k6", Clean: true})},
				{"zero-length client id v3.1.1", connect(4, testutil.ConnectOptions{Keepalive: 20, Clean: true})},
				{"zero-length client id v5", connect(5, testutil.ConnectOptions{Keepalive: 20, Clean: true})},
				{"retained QoS 1 publish v3.1.1", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "r1", Keepalive: 20, Clean: true})
					_, _ = m.Conn.Write(mqttwire.AppendPublish(nil, 4, "r/x", []byte("x"), 1, true, 3))
					return nextPacket(m, 2*time.Second)
				}},
				{"retained QoS 1 publish v5", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 5, testutil.ConnectOptions{ClientID: "r2", Keepalive: 20, Clean: true})
					_, _ = m.Conn.Write(mqttwire.AppendPublish(nil, 5, "r/x", []byte("x"), 1, true, 3))
					return nextPacket(m, 2*time.Second)
				}},
				{"will with retain v3.1.1", connect(4, testutil.ConnectOptions{ClientID: "r3", Keepalive: 20, Clean: true, WillTopic: "w/x", WillPayload: "gone", WillRetain: true})},
				{"will with retain v5", connect(5, testutil.ConnectOptions{ClientID: "r4", Keepalive: 20, Clean: true, WillTopic: "w/x", WillPayload: "gone", WillRetain: true})},
			},
			differs: map[string]known{
				// 2.1.2 refuses a 3.1.1 client whose keepalive is 0 or above
				// max_keepalive, once authorised (src/handle_connect.c:256-271;
				// ChangeLog 2.0.12, CVE-2020-13849).
				"keepalive 60 above max_keepalive v3.1.1": {"2.0.11", "CONNACK 0"},
				"keepalive 0 v3.1.1":                      {"2.0.11", "CONNACK 0"},
				// and advertises its default max_packet_size (src/conf.c:338).
				"keepalive 60 above max_keepalive v5": {"2.0.11", "CONNACK 0 [receive-maximum=20 retain-available=0 server-keepalive=30 topic-alias-maximum=10]"},
				"keepalive 20 below max_keepalive v5": {"2.0.11", "CONNACK 0 [receive-maximum=20 retain-available=0 topic-alias-maximum=10]"},
				"keepalive 0 v5":                      {"2.0.11", "CONNACK 0 [receive-maximum=20 retain-available=0 server-keepalive=30 topic-alias-maximum=10]"},
			},
		},
		{
			name: "websockets subprotocols",
			// mosquitto 2.0.11 does not start with websockets listeners only.
			text: "listener %[1]d 127.0.0.1\nprotocol websockets\nallow_anonymous true\nlistener %[2]d 127.0.0.1\n",
			cases: []optCase{
				{"upgrade asking for mqtt", wsUpgrade("mqtt")},
				{"upgrade asking for mqttv3.1", wsUpgrade("mqttv3.1")},
				{"upgrade asking for no subprotocol", wsUpgrade()},
				{"upgrade asking for another subprotocol", wsUpgrade("chat")},
				{"upgrade asking for another, then mqtt", wsUpgrade("chat", "mqtt")},
			},
			differs: map[string]known{
				// 2.1.2's own websockets code takes a Sec-WebSocket-Protocol
				// header only when its whole value is "mqtt" or "mqttv3.1"
				// (src/http_serv.c:174-181), so a browser offering a list is
				// refused. serve follows 2.0.11 (libwebsockets) and RFC 6455
				// 4.2.2: the server picks one of the offered subprotocols.
				"upgrade asking for another, then mqtt": {"2.1.2", "refused"},
			},
		},
		{
			name:  "mount_point",
			text:  "acl_file %[3]s/acl\nlistener %[1]d 127.0.0.1\nallow_anonymous true\nmount_point m/\nlistener %[2]d 127.0.0.1\n",
			files: map[string]string{"acl": "topic read #\ntopic write m/t/#\ntopic write t/#\ntopic write m/only/#\n"},
			cases: []optCase{
				{"a publish under a mount point arrives with the prefix", func(t *testing.T, a []string) string {
					obs := connected(t, a[1], 4, testutil.ConnectOptions{ClientID: "mo1", Clean: true})
					if _, err := obs.Subscribe("#", 0); err != nil {
						return "observer: " + err.Error()
					}
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "mc1", Clean: true})
					_, _ = m.Publish("t/1", []byte("up"), 0, false)
					return nextPacket(obs, 2*time.Second)
				}},
				{"a subscription under a mount point sees its own tree only, without the prefix", func(t *testing.T, a []string) string {
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "mc2", Clean: true})
					if _, err := m.Subscribe("t/#", 0); err != nil {
						return "subscribe: " + err.Error()
					}
					obs := connected(t, a[1], 4, testutil.ConnectOptions{ClientID: "mo2", Clean: true})
					_, _ = obs.Publish("t/outside", []byte("no"), 0, false)
					_, _ = obs.Publish("m/t/inside", []byte("yes"), 0, false)
					return nextPacket(m, 2*time.Second) + "; then " + nextPacket(m, 500*time.Millisecond)
				}},
				{"a retained message under a mount point arrives without the prefix", func(t *testing.T, a []string) string {
					obs := connected(t, a[1], 4, testutil.ConnectOptions{ClientID: "mo4", Clean: true})
					if _, err := obs.Publish("m/t/kept", []byte("retained"), 1, true); err != nil {
						return "observer: " + err.Error()
					}
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "mc4", Clean: true})
					if _, err := m.Subscribe("t/kept", 0); err != nil {
						return "subscribe: " + err.Error()
					}
					return nextPacket(m, 2*time.Second)
				}},
				{"the ACL sees the topic with the mount point", func(t *testing.T, a []string) string {
					obs := connected(t, a[1], 4, testutil.ConnectOptions{ClientID: "mo3", Clean: true})
					if _, err := obs.Subscribe("#", 0); err != nil {
						return "observer: " + err.Error()
					}
					m := connected(t, a[0], 4, testutil.ConnectOptions{ClientID: "mc3", Clean: true})
					_, _ = m.Publish("only/1", []byte("mounted-allowed"), 0, false)
					return nextPacket(obs, 1*time.Second)
				}},
			},
			differs: map[string]known{
				// 2.1.2 takes the mount point off the topics it sends to a
				// client under it (lib/send_publish.c:126-133; ChangeLog 2.0.12
				// "Fix listener mount_point not being removed on outgoing
				// messages").
				"a subscription under a mount point sees its own tree only, without the prefix": {"2.0.11", "PUBLISH m/t/inside yes; then nothing"},
				"a retained message under a mount point arrives without the prefix":             {"2.0.11", "PUBLISH m/t/kept retained"},
			},
		},
	}
}

// wsUpgrade upgrades to a WebSocket asking for the subprotocols, then
// sends a CONNECT: it describes the subprotocol and the CONNACK, or
// "refused" when MQTT did not get through (mosquitto 2.0.11 drops an
// upgrade for other subprotocols without an answer, and upgrades one for
// none but never answers its CONNECT; serve answers both 400, saying why).
func wsUpgrade(protocols ...string) func(t *testing.T, a []string) string {
	return func(t *testing.T, a []string) string {
		d := websocket.Dialer{Subprotocols: protocols, HandshakeTimeout: 3 * time.Second}
		ws, resp, err := d.Dial("ws://"+a[0]+"/mqtt", nil)
		if err != nil {
			if resp != nil && resp.StatusCode != http.StatusBadRequest {
				return fmt.Sprintf("upgrade answered HTTP %d", resp.StatusCode)
			}
			return "refused"
		}
		c := mqttws.NewConn(ws)
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(3 * time.Second))
		answer := "refused"
		if _, err := c.Write(mqttwire.AppendConnect(nil, testutil.ConnectOptions{Version: 4, ClientID: "ws", Clean: true})); err == nil {
			if head, body, err := mqttwire.ReadPacket(bufio.NewReader(c), nil); err == nil && head>>4 == mqttwire.CONNACK && len(body) > 1 {
				answer = fmt.Sprintf("CONNACK %d", body[1])
			}
		}
		if answer == "refused" {
			return answer
		}
		return fmt.Sprintf("subprotocol %q, %s", ws.Subprotocol(), answer)
	}
}

// resumeAs: owner (password "pw") makes a persistent 3.1.1 session with
// client id id and a QoS 1 subscription to b/#, and goes away; alice
// publishes b/1 (queued for owner); resumer connects with the same client
// id. It describes the CONNACK (session present flag and code), what
// arrives, and whether a later b/1 publish arrives on the inherited
// subscription.
func resumeAs(t *testing.T, addr, id, owner, resumer string) string {
	s := testutil.Str
	o := testutil.ConnectOptions{ClientID: id, Clean: false, Username: s(owner), Password: s("pw")}
	m := connected(t, addr, 4, o)
	if _, err := m.Subscribe("b/#", 1); err != nil {
		return "subscribe: " + err.Error()
	}
	// The session is offline before the publish: the broker has closed
	// the connection after the DISCONNECT (else the message may go to the
	// live connection as the new user takes over, a window the broker's
	// engine has and mosquitto has not: see OnSessionEstablish).
	_, _ = m.Conn.Write([]byte{0xe0, 0})
	_ = m.Conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	_, _ = io.Copy(io.Discard, m.Conn)
	m.Close()
	pub := connected(t, addr, 4, testutil.ConnectOptions{ClientID: id + "-pub", Clean: true, Username: s("alice"), Password: s("pw")})
	if _, err := pub.Publish("b/1", []byte("secret-for-"+owner), 1, false); err != nil {
		return "publish: " + err.Error()
	}
	r := dialPlain(t, addr, 4)
	o.Username, o.Version = s(resumer), 4
	if _, err := r.Conn.Write(mqttwire.AppendConnect(nil, o)); err != nil {
		return "write failed"
	}
	head, body, err := r.Read(3 * time.Second)
	if err != nil || head>>4 != mqttwire.CONNACK || len(body) < 2 {
		return "no CONNACK"
	}
	words := fmt.Sprintf("CONNACK session-present=%d code=%d", body[0]&1, body[1])
	for {
		head, body, err := r.Read(1500 * time.Millisecond)
		if err != nil {
			break
		}
		if head>>4 == mqttwire.PUBLISH {
			topic, pid, payload, _ := mqttwire.PublishInfo(head, body, 4)
			words += fmt.Sprintf("; PUBLISH %s %s", topic, payload)
			_, _ = r.Conn.Write(mqttwire.AppendAck(nil, mqttwire.PUBACK, pid))
			continue
		}
		words += fmt.Sprintf("; packet type %d", head>>4)
	}
	if _, err := pub.Publish("b/1", []byte("later"), 1, false); err != nil {
		return words + "; second publish: " + err.Error()
	}
	return words + "; later: " + nextPacket(r, 1500*time.Millisecond)
}

// persistentResubscribe: a 3.1.1 client with a persistent session gets a
// QoS 1 message queued while it is away, reconnects and subscribes again
// with packet id 1 before reading anything (as mosquitto_sub -c does).
func persistentResubscribe(t *testing.T, addr string) string {
	o := testutil.ConnectOptions{ClientID: "dur2", Clean: false}
	m := connected(t, addr, 4, o)
	if _, err := m.Subscribe("e/#", 1); err != nil {
		return "first subscribe: " + err.Error()
	}
	m.Disconnect()
	pub := connected(t, addr, 4, testutil.ConnectOptions{ClientID: "dur-pub", Clean: true})
	if _, err := pub.Publish("e/1", []byte("queued"), 1, false); err != nil {
		return "publish: " + err.Error()
	}
	m = dialPlain(t, addr, 4)
	if w := connackWords(m, o); w != "CONNACK 0" {
		return "reconnect: " + w
	}
	_, _ = m.Conn.Write(mqttwire.AppendSubscribe(nil, 4, 1, "e/#", 1))
	var seen []string
	var suback string
	for i := 0; i < 4 && (suback == "" || len(seen) < 1); i++ {
		head, body, err := m.Read(2 * time.Second)
		if err != nil {
			break
		}
		switch head >> 4 {
		case mqttwire.SUBACK:
			suback = fmt.Sprintf("SUBACK % x", body)
		case mqttwire.PUBLISH:
			topic, id, payload, _ := mqttwire.PublishInfo(head, body, 4)
			seen = append(seen, topic+"="+string(payload))
			_, _ = m.Conn.Write(mqttwire.AppendAck(nil, mqttwire.PUBACK, id))
		}
	}
	if _, err := pub.Publish("e/2", []byte("later"), 1, false); err != nil {
		return "second publish: " + err.Error()
	}
	later := nextPacket(m, 2*time.Second)
	return fmt.Sprintf("%s, queued %v, later %s", suback, seen, later)
}

func TestDifferentialOptions(t *testing.T) {
	n := 0
	for _, oc := range optConfigs() {
		t.Run(strings.ReplaceAll(oc.name, " ", "_"), func(t *testing.T) {
			// run starts one broker on oc (start) and runs every case.
			run := func(t *testing.T, name string, start func(dir string, c *confgen.Config) *testutil.SyncBuffer) []string {
				dir := testutil.ReachableDir(t)
				for f, text := range oc.files {
					if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				ports := []int{testutil.FreePort(t), testutil.FreePort(t)}
				c, err := confgen.Parse([]byte(fmt.Sprintf(oc.text, ports[0], ports[1], dir)), oc.name)
				if err != nil {
					t.Fatal(err)
				}
				log := start(dir, c)
				addrs := []string{fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])}
				var got []string
				for _, cs := range oc.cases {
					got = append(got, cs.run(t, addrs))
				}
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("%s log:\n%s", name, log.String())
					}
				})
				return got
			}
			// serve runs the cases once; each mosquitto version (at the
			// same time: the cases mostly wait) is compared with that.
			served := run(t, "mqttctl", func(_ string, c *confgen.Config) *testutil.SyncBuffer {
				log := &testutil.SyncBuffer{}
				brokertest.Start(t, c, log, broker.Options{})
				return log
			})
			n += 2 * len(oc.cases)
			testutil.EachMosquittoParallel(t, func(t *testing.T, mq testutil.Mosquitto) {
				got := run(t, mq.Name(), func(dir string, c *confgen.Config) *testutil.SyncBuffer { return mq.Start(t, dir, c) })
				for j, cs := range oc.cases {
					t.Logf("%-70s %s: %-30s mqttctl: %s", cs.name, mq.Name(), got[j], served[j])
					if k, ok := oc.differs[cs.name]; ok && k.version == mq.Version {
						if got[j] != k.answer || got[j] == served[j] {
							t.Errorf("%s: %s %q, mqttctl %q; the table says %s answers %q, unlike mqttctl", cs.name, mq.Name(), got[j], served[j], mq.Version, k.answer)
						}
					} else if got[j] != served[j] {
						t.Errorf("%s: %s %q, mqttctl %q", cs.name, mq.Name(), got[j], served[j])
					}
				}
				if t.Failed() {
					t.Logf("mqttctl answered: %q", served)
				}
			})
		})
	}
	t.Logf("%d option cases compared", n)
}
