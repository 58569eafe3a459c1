package testutil

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/mqttws"
)

// MQTT is a minimal MQTT 3.1.1/5 client for tests that need exact packet
// codes (CONNACK, PUBACK, SUBACK), which command-line clients do not show.
type MQTT struct {
	Conn    net.Conn
	Version byte // 4 (3.1.1) or 5
	r       *bufio.Reader
	nextID  uint16
}

// DialMQTT connects over TCP, or TLS when conf is not nil (the handshake is
// completed here, so a refused certificate is an error from DialMQTT or from
// the first read, depending on the TLS version).
func DialMQTT(addr string, conf *tls.Config, version byte) (*MQTT, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	var c net.Conn
	var err error
	if conf != nil {
		tc, e := tls.DialWithDialer(d, "tcp", addr, conf)
		c, err = tc, e
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	return &MQTT{Conn: c, Version: version, r: bufio.NewReader(c), nextID: 1}, nil
}

// DialMQTTWS connects over a WebSocket (ws:// or wss:// URL; conf for wss).
func DialMQTTWS(url string, conf *tls.Config, version byte) (*MQTT, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := mqttws.Dial(ctx, url, conf)
	if err != nil {
		return nil, err
	}
	return &MQTT{Conn: c, Version: version, r: bufio.NewReader(c), nextID: 1}, nil
}

// Close closes the connection.
func (m *MQTT) Close() { m.Conn.Close() }

func (m *MQTT) send(head byte, body []byte) error {
	_ = m.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := m.Conn.Write(mqttwire.AppendPacket(nil, head, body))
	return err
}

// Read returns the next packet's first byte and body, waiting up to d.
func (m *MQTT) Read(d time.Duration) (byte, []byte, error) {
	_ = m.Conn.SetReadDeadline(time.Now().Add(d))
	return mqttwire.ReadPacket(m.r, nil)
}

// ConnectOptions is a CONNECT packet (its Version is the connection's).
type ConnectOptions = mqttwire.Connect

// Str returns a pointer to s, for ConnectOptions.
func Str(s string) *string { return &s }

// Connect sends CONNECT and returns the CONNACK return/reason code.
func (m *MQTT) Connect(o ConnectOptions) (byte, error) {
	o.Version = m.Version
	if _, err := m.Conn.Write(mqttwire.AppendConnect(nil, o)); err != nil {
		return 0, err
	}
	head, body, err := m.Read(5 * time.Second)
	if err != nil {
		return 0, err
	}
	if head>>4 != 2 || len(body) < 2 {
		return 0, fmt.Errorf("expected CONNACK, got packet type %d", head>>4)
	}
	return body[1], nil
}

func (m *MQTT) id() uint16 {
	id := m.nextID
	m.nextID++
	if m.nextID == 0 {
		m.nextID = 1
	}
	return id
}

// Publish sends a PUBLISH and, for QoS 1 and 2, waits for the
// acknowledgement (completing the QoS 2 flow) and returns its reason code
// (0 for a 3.1.1 acknowledgement).
func (m *MQTT) Publish(topic string, payload []byte, qos byte, retain bool) (byte, error) {
	var id uint16
	if qos > 0 {
		id = m.id()
	}
	_ = m.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := m.Conn.Write(mqttwire.AppendPublish(nil, m.Version, topic, payload, qos, retain, id)); err != nil || qos == 0 {
		return 0, err
	}
	want := byte(mqttwire.PUBACK)
	if qos == 2 {
		want = mqttwire.PUBREC
	}
	code, err := m.waitAck(want, id)
	if err != nil || qos < 2 || code >= 0x80 {
		return code, err
	}
	if _, err := m.Conn.Write(mqttwire.AppendAck(nil, mqttwire.PUBREL, id)); err != nil {
		return 0, err
	}
	return m.waitAck(mqttwire.PUBCOMP, id)
}

// waitAck reads until an ack of type t for id arrives, skipping (and
// acknowledging) publishes.
func (m *MQTT) waitAck(t byte, id uint16) (byte, error) {
	for {
		head, body, err := m.Read(5 * time.Second)
		if err != nil {
			return 0, err
		}
		if head>>4 == 3 {
			m.ackPublish(head, body)
			continue
		}
		if head>>4 != t || len(body) < 2 || binary.BigEndian.Uint16(body) != id {
			return 0, fmt.Errorf("expected packet type %d for id %d, got type %d", t, id, head>>4)
		}
		if len(body) > 2 {
			return body[2], nil
		}
		return 0, nil
	}
}

// Subscribe subscribes to one filter and returns the SUBACK code.
func (m *MQTT) Subscribe(filter string, qos byte) (byte, error) {
	if _, err := m.Conn.Write(mqttwire.AppendSubscribe(nil, m.Version, m.id(), filter, qos)); err != nil {
		return 0, err
	}
	for {
		head, body, err := m.Read(5 * time.Second)
		if err != nil {
			return 0, err
		}
		if head>>4 == 3 {
			m.ackPublish(head, body)
			continue
		}
		if head>>4 != 9 || len(body) < 3 {
			return 0, fmt.Errorf("expected SUBACK, got type %d", head>>4)
		}
		rest := body[2:]
		if m.Version == 5 {
			n := int(rest[0]) // properties are short in these tests
			rest = rest[1+n:]
		}
		return rest[0], nil
	}
}

// Message is a received PUBLISH.
type Message struct {
	Topic   string
	Payload string
	Qos     byte
	Retain  bool
}

func (m *MQTT) ackPublish(head byte, body []byte) Message {
	qos := (head >> 1) & 3
	topic, id, payload, _ := mqttwire.PublishInfo(head, body, m.Version)
	switch qos {
	case 1:
		_, _ = m.Conn.Write(mqttwire.AppendAck(nil, mqttwire.PUBACK, id))
	case 2:
		_, _ = m.Conn.Write(mqttwire.AppendAck(nil, mqttwire.PUBREC, id))
	}
	return Message{Topic: topic, Payload: string(payload), Qos: qos, Retain: head&1 == 1}
}

// ErrNoMessage is returned by Receive when nothing arrives in time.
var ErrNoMessage = errors.New("no message")

// Receive waits up to d for a PUBLISH, acknowledging it (QoS 2: PUBREC, and
// PUBCOMP for the PUBREL).
func (m *MQTT) Receive(d time.Duration) (Message, error) {
	deadline := time.Now().Add(d)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Message{}, ErrNoMessage
		}
		head, body, err := m.Read(left)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return Message{}, ErrNoMessage
			}
			return Message{}, err
		}
		switch head >> 4 {
		case 3:
			return m.ackPublish(head, body), nil
		case 6: // PUBREL
			_ = m.send(0x70, body[:2])
		}
	}
}

// Alive reports whether the connection still works: a PINGREQ gets its PINGRESP.
func (m *MQTT) Alive() bool {
	if m.send(0xc0, nil) != nil {
		return false
	}
	for {
		head, body, err := m.Read(3 * time.Second)
		if err != nil {
			return false
		}
		if head>>4 == 13 {
			return true
		}
		if head>>4 == 3 {
			m.ackPublish(head, body)
		}
	}
}

// Disconnect sends DISCONNECT and closes.
func (m *MQTT) Disconnect() {
	_ = m.send(0xe0, nil)
	m.Close()
}
