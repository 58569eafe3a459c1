package mqttwire

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
)

// Packet types (the high nibble of the first byte).
const (
	CONNECT    = 1
	CONNACK    = 2
	PUBLISH    = 3
	PUBACK     = 4
	PUBREC     = 5
	PUBREL     = 6
	PUBCOMP    = 7
	SUBSCRIBE  = 8
	SUBACK     = 9
	PINGREQ    = 12
	PINGRESP   = 13
	DISCONNECT = 14
)

// AppendString appends an MQTT UTF-8 string (2-byte length prefix).
func AppendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// AppendVarint appends a remaining-length variable byte integer.
func AppendVarint(b []byte, n int) []byte {
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

// AppendPacket appends a whole packet: header byte, length, body.
func AppendPacket(b []byte, head byte, body []byte) []byte {
	b = append(b, head)
	b = AppendVarint(b, len(body))
	return append(b, body...)
}

// ErrMalformed is returned for a remaining length over four bytes.
var ErrMalformed = errors.New("malformed packet length")

// ReadPacket reads one packet into buf (grown as needed) and returns its
// first byte and body, which aliases buf.
func ReadPacket(r *bufio.Reader, buf []byte) (head byte, body []byte, err error) {
	head, err = r.ReadByte()
	if err != nil {
		return 0, nil, err
	}
	n, mul := 0, 1
	for i := 0; ; i++ {
		if i == 4 {
			return 0, nil, ErrMalformed
		}
		c, err := r.ReadByte()
		if err != nil {
			return 0, nil, err
		}
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			break
		}
		mul *= 128
	}
	if cap(buf) >= n || n <= preallocMax {
		if cap(buf) < n {
			buf = make([]byte, n)
		}
		body = buf[:n]
		_, err = io.ReadFull(r, body)
		return head, body, err
	}
	// A large length is only a claim (up to 256 MiB in 5 bytes): the
	// buffer grows as the bytes arrive instead of being allocated for it.
	var b bytes.Buffer
	if _, err := io.CopyN(&b, r, int64(n)); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, err
	}
	return head, b.Bytes(), nil
}

// preallocMax is the largest body ReadPacket allocates before reading it.
const preallocMax = 64 << 10

// Connect describes a CONNECT packet.
type Connect struct {
	Version                byte // 4 or 5
	ClientID               string
	Username, Password     *string
	Clean                  bool
	Keepalive              uint16
	WillTopic, WillPayload string
	WillQos                byte
	WillRetain             bool
	SessionExpiry          uint32 // v5
}

// AppendConnect appends a CONNECT packet.
func AppendConnect(b []byte, c Connect) []byte {
	var flags byte
	if c.Clean {
		flags |= 0x02
	}
	if c.WillTopic != "" {
		flags |= 0x04 | c.WillQos<<3
		if c.WillRetain {
			flags |= 0x20
		}
	}
	if c.Username != nil {
		flags |= 0x80
	}
	if c.Password != nil {
		flags |= 0x40
	}
	if c.Keepalive == 0 {
		c.Keepalive = 60
	}
	if c.Version == 0 {
		c.Version = 4
	}
	body := AppendString(nil, "MQTT")
	body = append(body, c.Version, flags)
	body = binary.BigEndian.AppendUint16(body, c.Keepalive)
	if c.Version == 5 {
		if c.SessionExpiry > 0 {
			body = append(body, 5, 0x11)
			body = binary.BigEndian.AppendUint32(body, c.SessionExpiry)
		} else {
			body = append(body, 0)
		}
	}
	body = AppendString(body, c.ClientID)
	if c.WillTopic != "" {
		if c.Version == 5 {
			body = append(body, 0)
		}
		body = AppendString(body, c.WillTopic)
		body = AppendString(body, c.WillPayload)
	}
	if c.Username != nil {
		body = AppendString(body, *c.Username)
	}
	if c.Password != nil {
		body = AppendString(body, *c.Password)
	}
	return AppendPacket(b, CONNECT<<4, body)
}

// AppendPublish appends a PUBLISH (id is ignored for QoS 0).
func AppendPublish(b []byte, version byte, topic string, payload []byte, qos byte, retain bool, id uint16) []byte {
	head := byte(PUBLISH<<4) | qos<<1
	if retain {
		head |= 1
	}
	n := 2 + len(topic) + len(payload)
	if qos > 0 {
		n += 2
	}
	if version == 5 {
		n++
	}
	b = append(b, head)
	b = AppendVarint(b, n)
	b = AppendString(b, topic)
	if qos > 0 {
		b = binary.BigEndian.AppendUint16(b, id)
	}
	if version == 5 {
		b = append(b, 0)
	}
	return append(b, payload...)
}

// AppendSubscribe appends a SUBSCRIBE for one filter.
func AppendSubscribe(b []byte, version byte, id uint16, filter string, qos byte) []byte {
	body := binary.BigEndian.AppendUint16(nil, id)
	if version == 5 {
		body = append(body, 0)
	}
	body = AppendString(body, filter)
	body = append(body, qos)
	return AppendPacket(b, SUBSCRIBE<<4|2, body)
}

// AppendAck appends a two-byte acknowledgement (PUBACK, PUBREC, PUBREL
// with its flags, PUBCOMP).
func AppendAck(b []byte, typ byte, id uint16) []byte {
	head := typ << 4
	if typ == PUBREL {
		head |= 2
	}
	return append(b, head, 2, byte(id>>8), byte(id))
}

// PublishInfo decodes the parts of a received PUBLISH body.
func PublishInfo(head byte, body []byte, version byte) (topic string, id uint16, payload []byte, ok bool) {
	if len(body) < 2 {
		return "", 0, nil, false
	}
	tl := int(binary.BigEndian.Uint16(body))
	if len(body) < 2+tl {
		return "", 0, nil, false
	}
	topic = string(body[2 : 2+tl])
	rest := body[2+tl:]
	if (head>>1)&3 > 0 {
		if len(rest) < 2 {
			return "", 0, nil, false
		}
		id = binary.BigEndian.Uint16(rest)
		rest = rest[2:]
	}
	if version == 5 {
		if len(rest) < 1 || len(rest) < 1+int(rest[0]) {
			return "", 0, nil, false
		}
		rest = rest[1+int(rest[0]):]
	}
	return topic, id, rest, true
}
