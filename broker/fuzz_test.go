package broker_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// fuzzBroker starts, once per fuzzing process, a broker with a plain MQTT
// listener, a ws listener and a ws listener that checks Origin; it
// returns their addresses.
func fuzzBroker(f *testing.F) (mqtt, ws, wsOrigin string) {
	ports := testutil.FreePorts(f, 3)
	c, err := confgen.Parse([]byte(fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\nallow_anonymous true\n"+
		"listener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"+
		"listener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\n# mqttctl: http_origin https://app.example.com\n",
		ports[0], ports[1], ports[2])), "fuzz.conf")
	if err != nil {
		f.Fatal(err)
	}
	brokertest.Start(f, c, io.Discard, broker.Options{ConnectTimeout: 2 * time.Second})
	addr := func(p int) string { return fmt.Sprintf("127.0.0.1:%d", p) }
	return addr(ports[0]), addr(ports[1]), addr(ports[2])
}

// sendAndHangUp sends data as a client's first bytes, ends its side of the
// connection and reads until the server closes its side: a server that
// still holds the connection 5 s after the client's last byte, or a
// listener that no longer accepts, fails.
func sendAndHangUp(t *testing.T, addr string, data []byte) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("the listener no longer accepts: %v", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write(data) // the server may close first
	_ = c.(*net.TCPConn).CloseWrite()
	_, err = io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("%s: the server still holds the connection 5 s after the client's last byte; sent %q", addr, data)
	}
}

func mqttSeeds() [][]byte {
	user, pass := "u", "p"
	connect := mqttwire.AppendConnect(nil, mqttwire.Connect{Version: 4, ClientID: "fuzz", Clean: true, Keepalive: 30})
	v5 := mqttwire.AppendConnect(nil, mqttwire.Connect{Version: 5, ClientID: "fuzz5", Username: &user, Password: &pass, WillTopic: "w/t", WillPayload: "bye", WillQos: 1, SessionExpiry: 60})
	session := append([]byte{}, connect...)
	session = mqttwire.AppendSubscribe(session, 4, 1, "a/#", 1)
	session = mqttwire.AppendPublish(session, 4, "a/b", []byte("hello"), 1, true, 2)
	session = append(session, 0xe0, 0x00) // DISCONNECT
	return [][]byte{
		connect, v5, session,
		{0x10, 0xff, 0xff, 0xff, 0xff, 0x7f}, // a remaining length over 4 bytes
		{0x30, 0x00},                         // PUBLISH before CONNECT
		{0x16, 0x03, 0x01, 0x00, 0x05},       // the start of a TLS ClientHello
		[]byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n"),
		[]byte("GET /mqtt HTTP/1.1\r\nHost: x\r\n\r\n"),
		{},
	}
}

// wsFrame is one masked binary WebSocket frame, as a client sends it.
func wsFrame(payload []byte) []byte {
	b := []byte{0x82}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	}
	mask := []byte{1, 2, 3, 4}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

const upgrade = "GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
	"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n"

// FuzzListenerFirstBytes: whatever a client sends first (MQTT, HTTP, TLS,
// garbage), the plain MQTT listener and the WebSocket listener's protocol
// sniffing answer or close, never panic, never hold the connection after
// the client is done, and keep accepting.
func FuzzListenerFirstBytes(f *testing.F) {
	mqtt, ws, _ := fuzzBroker(f)
	for _, s := range mqttSeeds() {
		f.Add(s)
	}
	f.Add([]byte(upgrade + "\r\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sendAndHangUp(t, mqtt, data)
		sendAndHangUp(t, ws, data)
	})
}

// FuzzWebSocketUpgrade: the HTTP upgrade request (headers, Origin,
// subprotocol) and the frames after it, on ws listeners with and without
// an Origin check: an answer or a close, never a panic or a held
// connection.
func FuzzWebSocketUpgrade(f *testing.F) {
	_, ws, wsOrigin := fuzzBroker(f)
	connect := mqttwire.AppendConnect(nil, mqttwire.Connect{Version: 4, ClientID: "fuzzws", Clean: true, Keepalive: 30})
	for _, s := range []string{
		upgrade + "\r\n" + string(wsFrame(connect)),
		upgrade + "Origin: https://app.example.com\r\n\r\n" + string(wsFrame(connect)) + string(wsFrame([]byte{0xe0, 0})),
		upgrade + "Origin: https://evil.example\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", // no key
		"GET /mqtt HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", // keep-alive: two requests
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
		upgrade + "\r\n" + "\x81\x85\x01\x02\x03\x04" + "iiiii",                       // a text frame
		upgrade + "\r\n" + "\x82\xff\x7f\xff\xff\xff\xff\xff\xff\xff\x01\x02\x03\x04", // a 2^63-byte frame
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		sendAndHangUp(t, ws, data)
		sendAndHangUp(t, wsOrigin, data)
	})
}
