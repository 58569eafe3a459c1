package testutil

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
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

// Close closes the connection.
func (m *MQTT) Close() { m.Conn.Close() }

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

func appendVarint(b []byte, n int) []byte {
	for {
		d := byte(n % 128)
		n /= 128
		if n > 0 {
			d |= 0x80
		}
		b = append(b, d)
		if n == 0 {
			return b
		}
	}
}

func (m *MQTT) send(head byte, body []byte) error {
	pkt := appendVarint([]byte{head}, len(body))
	_ = m.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := m.Conn.Write(append(pkt, body...))
	return err
}

// Read returns the next packet's first byte and body, waiting up to d.
func (m *MQTT) Read(d time.Duration) (byte, []byte, error) {
	_ = m.Conn.SetReadDeadline(time.Now().Add(d))
	head, err := m.r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for {
		b, err := m.r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(b&0x7f) * mul
		if b&0x80 == 0 {
			break
		}
		mul *= 128
	}
	body := make([]byte, n)
	_, err = io.ReadFull(m.r, body)
	return head, body, err
}

// ConnectOptions is a CONNECT packet.
type ConnectOptions struct {
	ClientID               string
	Username, Password     *string
	Clean                  bool
	WillTopic, WillPayload string
	WillQos                byte
	Keepalive              uint16
	SessionExpiry          uint32 // v5
}

// Str returns a pointer to s, for ConnectOptions.
func Str(s string) *string { return &s }

// Connect sends CONNECT and returns the CONNACK return/reason code.
func (m *MQTT) Connect(o ConnectOptions) (byte, error) {
	var flags byte
	if o.Clean {
		flags |= 0x02
	}
	if o.WillTopic != "" {
		flags |= 0x04 | o.WillQos<<3
	}
	if o.Username != nil {
		flags |= 0x80
	}
	if o.Password != nil {
		flags |= 0x40
	}
	if o.Keepalive == 0 {
		o.Keepalive = 60
	}
	b := appendString(nil, "MQTT")
	b = append(b, m.Version, flags)
	b = binary.BigEndian.AppendUint16(b, o.Keepalive)
	if m.Version == 5 {
		if o.SessionExpiry > 0 {
			b = append(b, 5, 0x11)
			b = binary.BigEndian.AppendUint32(b, o.SessionExpiry)
		} else {
			b = append(b, 0)
		}
	}
	b = appendString(b, o.ClientID)
	if o.WillTopic != "" {
		if m.Version == 5 {
			b = append(b, 0)
		}
		b = appendString(b, o.WillTopic)
		b = appendString(b, o.WillPayload)
	}
	if o.Username != nil {
		b = appendString(b, *o.Username)
	}
	if o.Password != nil {
		b = appendString(b, *o.Password)
	}
	if err := m.send(0x10, b); err != nil {
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
	head := byte(0x30) | qos<<1
	if retain {
		head |= 1
	}
	b := appendString(nil, topic)
	var id uint16
	if qos > 0 {
		id = m.id()
		b = binary.BigEndian.AppendUint16(b, id)
	}
	if m.Version == 5 {
		b = append(b, 0)
	}
	b = append(b, payload...)
	if err := m.send(head, b); err != nil || qos == 0 {
		return 0, err
	}
	want := byte(4) // PUBACK
	if qos == 2 {
		want = 5 // PUBREC
	}
	code, err := m.waitAck(want, id)
	if err != nil || qos < 2 || code >= 0x80 {
		return code, err
	}
	rel := binary.BigEndian.AppendUint16(nil, id)
	if err := m.send(0x62, rel); err != nil {
		return 0, err
	}
	return m.waitAck(7, id) // PUBCOMP
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
	id := m.id()
	b := binary.BigEndian.AppendUint16(nil, id)
	if m.Version == 5 {
		b = append(b, 0)
	}
	b = appendString(b, filter)
	b = append(b, qos)
	if err := m.send(0x82, b); err != nil {
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
	tl := int(binary.BigEndian.Uint16(body))
	msg := Message{Topic: string(body[2 : 2+tl]), Qos: qos, Retain: head&1 == 1}
	rest := body[2+tl:]
	if qos > 0 {
		id := binary.BigEndian.Uint16(rest)
		rest = rest[2:]
		ack := byte(0x40)
		if qos == 2 {
			ack = 0x50
		}
		_ = m.send(ack, binary.BigEndian.AppendUint16(nil, id))
	}
	if m.Version == 5 {
		n := int(rest[0])
		rest = rest[1+n:]
	}
	msg.Payload = string(rest)
	return msg
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
