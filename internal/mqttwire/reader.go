package mqttwire

import (
	"bufio"
	"io"
)

// MaxRemaining is the largest remaining length four bytes can say.
const MaxRemaining = 268435455

// Reader reads packets from a connection into a reused buffer. It is the
// broker's decoder: one per connection, no goroutine of its own.
type Reader struct {
	r *bufio.Reader
	// MaxSize is the largest packet Read accepts, counted as mosquitto
	// (2.0 and 2.1) counts its max_packet_size: the first byte and the
	// remaining length, not the one to four bytes that say that length
	// (TestMosquittoMaxPacketSize); 0 means the protocol's limit. A larger
	// claim is refused with PacketTooLarge before its body is read.
	MaxSize int
	// Version is the connection's protocol level: 0 until a CONNECT is
	// read (which sets it), or set by a client after it sent its own.
	Version byte
	// Server says the Reader reads what a client sends, which refuses, as
	// mosquitto 2.1 does, a second CONNECT, the packets only a server sends
	// (CONNACK, SUBACK, UNSUBACK, PINGRESP) and a PUBLISH with a
	// subscription identifier (which only a server may send).
	Server bool
	buf    []byte
}

// NewReader returns a Reader of r refusing packets over maxSize bytes
// (0: no limit but the protocol's).
func NewReader(r *bufio.Reader, maxSize int) *Reader {
	return &Reader{r: r, MaxSize: maxSize}
}

// Read reads and decodes the next packet into p (see Packet for how long
// its contents stay valid). A refused packet is an *Error; the connection
// cannot go on after any error.
func (d *Reader) Read(p *Packet) error {
	head, err := d.r.ReadByte()
	if err != nil {
		return err
	}
	n, lenBytes := 0, 0
	for mul := 1; ; mul *= 128 {
		if lenBytes == 4 {
			return malformed("remaining length over four bytes")
		}
		c, err := d.r.ReadByte()
		if err != nil {
			return noEOF(err)
		}
		lenBytes++
		n += int(c&0x7f) * mul
		if c&0x80 == 0 {
			break
		}
	}
	if d.MaxSize > 0 && 1+n > d.MaxSize {
		return &Error{PacketTooLarge, "packet larger than the maximum packet size"}
	}
	body, err := d.readBody(n)
	if err != nil {
		return err
	}
	if d.Server && head>>4 == CONNECT && d.Version != 0 {
		return protocolErr("a second CONNECT")
	}
	if err := p.Decode(head, body, d.Version); err != nil {
		return err
	}
	if d.Server {
		switch p.Type {
		case CONNACK, SUBACK, UNSUBACK, PINGRESP:
			return protocolErr("a packet only a server sends")
		case PUBLISH:
			if len(p.Props.SubscriptionIDs) > 0 {
				return protocolErr("subscription identifier in a client's PUBLISH")
			}
		}
	}
	if p.Type == CONNECT {
		d.Version = p.Version
	}
	return nil
}

// readBody reads n bytes into the reused buffer. A length is only a claim
// (256 MiB in four bytes): beyond what the buffer holds, it grows as the
// bytes arrive, not for the claim.
func (d *Reader) readBody(n int) ([]byte, error) {
	if n <= cap(d.buf) || n <= preallocMax {
		if cap(d.buf) < n {
			d.buf = make([]byte, n)
		}
		body := d.buf[:n]
		_, err := io.ReadFull(d.r, body)
		return body, noEOF(err)
	}
	buf := d.buf[:0]
	for len(buf) < n {
		if len(buf) == cap(buf) {
			// Doubling, but never past n: a body announced but sent slowly
			// (a CONNECT before login) costs what has arrived, at most n.
			nb := make([]byte, len(buf), min(max(2*cap(buf), 4096), n))
			copy(nb, buf)
			buf = nb
		}
		m := min(cap(buf), n)
		k, err := io.ReadFull(d.r, buf[len(buf):m])
		buf = buf[:len(buf)+k]
		if err != nil {
			d.buf = buf
			return nil, noEOF(err)
		}
	}
	d.buf = buf
	return buf, nil
}

// Release drops the buffer, for a connection going idle: the next Read
// allocates what it needs.
func (d *Reader) Release() { d.buf = nil }

// Reset makes d read from r from now on, keeping its settings and its
// buffer: the engine lends a connection a pooled bufio.Reader while it is
// busy and takes it back when it goes idle.
func (d *Reader) Reset(r *bufio.Reader) { d.r = r }

// SwapBuffer gives d buf (which may be nil) as the buffer packets are read
// into and returns the one it had, for a pool of buffers shared by idle
// connections.
func (d *Reader) SwapBuffer(buf []byte) []byte {
	old := d.buf
	d.buf = buf[:0:cap(buf)]
	return old
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
