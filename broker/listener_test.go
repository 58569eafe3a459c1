package broker

import (
	"bytes"
	"errors"
	"net"
	"testing"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// byteConn is a net.Conn that reads from a buffer, chunk bytes at a time.
type byteConn struct {
	net.Conn
	r     *bytes.Reader
	chunk int
}

func (c *byteConn) Read(p []byte) (int, error) {
	if len(p) > c.chunk {
		p = p[:c.chunk]
	}
	return c.r.Read(p)
}

// TestConnectGuard: the first packet's fixed header is checked as it is
// read. An oversized CONNECT is refused before the reader has the byte
// that completes its remaining length (the engine allocates the whole
// length as soon as it has it); anything else passes untouched, and later
// packets are not limited.
func TestConnectGuard(t *testing.T) {
	header := func(typ byte, n int) []byte { return mqttwire.AppendVarint([]byte{typ}, n) }
	tests := []struct {
		name    string
		stream  []byte
		refused bool
	}{
		{"a 256 MB CONNECT (10 ff ff ff 7f)", append([]byte{0x10, 0xff, 0xff, 0xff, 0x7f}, make([]byte, 64)...), true},
		{"a CONNECT one byte over the limit", append(header(0x10, MaxConnectSize+1), make([]byte, 64)...), true},
		{"a CONNECT at the limit", append(header(0x10, MaxConnectSize), make([]byte, MaxConnectSize)...), false},
		{"a small CONNECT, then a 256 MB PUBLISH", append(append(header(0x10, 2), 0, 0), 0x30, 0xff, 0xff, 0xff, 0x7f), false},
		{"a 256 MB PUBLISH first (the engine refuses it: not a CONNECT)", []byte{0x30, 0xff, 0xff, 0xff, 0x7f}, false},
	}
	for _, tt := range tests {
		for _, chunk := range []int{1, 3, 4096} {
			g := &connectGuard{Conn: &byteConn{r: bytes.NewReader(tt.stream), chunk: chunk}}
			var got []byte
			var err error
			buf := make([]byte, 4096)
			for err == nil {
				var n int
				n, err = g.Read(buf)
				got = append(got, buf[:n]...)
			}
			if !tt.refused {
				if !bytes.Equal(got, tt.stream) {
					t.Errorf("%s, reads of %d: %d of %d bytes passed, err %v", tt.name, chunk, len(got), len(tt.stream), err)
				}
				continue
			}
			if !errors.Is(err, errConnectTooLarge) {
				t.Errorf("%s, reads of %d: err %v, want errConnectTooLarge", tt.name, chunk, err)
			}
			// The reader must not have the whole remaining length.
			for _, b := range got[min(len(got), 1):] {
				if b&0x80 == 0 {
					t.Errorf("%s, reads of %d: % x passed: the engine could read the length", tt.name, chunk, got)
					break
				}
			}
		}
	}
}

// FuzzConnectGuard: whatever a client sends and however the reads split
// it, the guard either passes every byte unchanged, or refuses a first
// packet that is a CONNECT longer than MaxConnectSize before the reader
// has the whole remaining length.
func FuzzConnectGuard(f *testing.F) {
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0}, uint8(1))
	f.Add([]byte{0x10, 0xa1, 0x8d, 0x06}, uint8(3))
	f.Add([]byte{0x10, 0xa0, 0x8d, 0x06, 0}, uint8(2))
	f.Add([]byte{0x10, 0x02, 0, 0, 0x30, 0xff, 0xff, 0xff, 0x7f}, uint8(7))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0x7f}, uint8(1))
	f.Add([]byte{0x10, 0xff, 0xff, 0xff, 0xff, 0x01}, uint8(6))
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8) {
		g := &connectGuard{Conn: &byteConn{r: bytes.NewReader(stream), chunk: int(chunk%16) + 1}}
		var got []byte
		var err error
		buf := make([]byte, 64)
		for err == nil {
			var n int
			n, err = g.Read(buf)
			got = append(got, buf[:n]...)
		}
		// What the first fixed header announces, as the engine reads it.
		length, complete := 0, false
		if len(stream) > 0 && stream[0]>>4 == 1 {
			for i := 1; i < len(stream) && i <= 4; i++ {
				length += int(stream[i]&0x7f) << (7 * (i - 1))
				if stream[i]&0x80 == 0 {
					complete = true
					break
				}
			}
		}
		if !errors.Is(err, errConnectTooLarge) {
			if !bytes.Equal(got, stream) {
				t.Fatalf("% x: passed % x", stream, got)
			}
			if complete && length > MaxConnectSize {
				t.Fatalf("% x: a CONNECT of %d bytes passed", stream, length)
			}
			return
		}
		if len(stream) == 0 || stream[0]>>4 != 1 || !bytes.HasPrefix(stream, got) {
			t.Fatalf("% x: refused, passed % x", stream, got)
		}
		for _, b := range got[min(len(got), 1):] {
			if b&0x80 == 0 {
				t.Fatalf("% x: refused after passing the whole length (% x)", stream, got)
			}
		}
	})
}

// TestConnectGuardPacketTooLarge: once tooLarge is set (a v5 client), the
// guard follows the framing and calls it at the first fixed header that
// announces more than limit (remaining length + 1, the engine's rule),
// however the reads split the stream; packets at the limit pass.
func TestConnectGuardPacketTooLarge(t *testing.T) {
	header := func(typ byte, n int) []byte { return mqttwire.AppendVarint([]byte{typ}, n) }
	packet := func(typ byte, n int) []byte { return append(header(typ, n), make([]byte, n)...) }
	var ok []byte
	for _, p := range [][]byte{packet(0x10, 20), packet(0x30, 99), packet(0xc0, 0), packet(0x30, 50)} {
		ok = append(ok, p...)
	}
	for _, tc := range []struct {
		name   string
		stream []byte
		called bool
	}{
		{"packets up to the limit", ok, false},
		{"a packet one byte over", append(append([]byte{}, ok...), packet(0x30, 100)...), true},
		{"a 256 MB header", append(append([]byte{}, ok...), 0x30, 0xff, 0xff, 0xff, 0x7f), true},
	} {
		for _, chunk := range []int{1, 2, 7, 4096} {
			g := &connectGuard{Conn: &byteConn{r: bytes.NewReader(tc.stream), chunk: chunk}, limit: 100}
			calls := 0
			g.tooLarge = func() { calls++ }
			var got []byte
			var err error
			buf := make([]byte, 512)
			for err == nil {
				var n int
				n, err = g.Read(buf)
				got = append(got, buf[:n]...)
			}
			if tc.called != (calls == 1) || calls > 1 || tc.called != errors.Is(err, errPacketTooLarge) {
				t.Errorf("%s, reads of %d: tooLarge called %d times, err %v", tc.name, chunk, calls, err)
			}
			if !tc.called && !bytes.Equal(got, tc.stream) {
				t.Errorf("%s, reads of %d: %d of %d bytes passed", tc.name, chunk, len(got), len(tc.stream))
			}
		}
	}
}
