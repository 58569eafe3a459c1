package mqttwire_test

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// trickle reads at most 1000 bytes at a time, as a slow sender's arrive.
type trickle struct{ r io.Reader }

func (t trickle) Read(p []byte) (int, error) { return t.r.Read(p[:min(len(p), 1000)]) }

// TestBodyBufferNeverPastItsLength: a body larger than the reader
// allocates up front (a big CONNECT, sent slowly) grows as it arrives to
// exactly its length, never to the next power of two (128 KiB for a
// 99,9xx-byte CONNECT before login).
func TestBodyBufferNeverPastItsLength(t *testing.T) {
	p := mqttwire.Packet{Type: mqttwire.CONNECT, Version: 4, ProtocolName: []byte("MQTT"), CleanStart: true, ClientID: []byte("c"),
		Will: true, WillTopic: []byte("w"), WillPayload: bytes.Repeat([]byte("x"), 60000),
		Username: []byte("u"), HasUsername: true, Password: bytes.Repeat([]byte("p"), 39900), HasPassword: true}
	raw := p.Append(nil)
	r := mqttwire.NewReader(bufio.NewReaderSize(trickle{bytes.NewReader(raw)}, 2048), 0)
	r.Server = true
	var got mqttwire.Packet
	if err := r.Read(&got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.WillPayload, p.WillPayload) {
		t.Fatal("the will payload did not come through")
	}
	body := len(raw) - 4 // a fixed header of 1 + 3 length bytes
	if c := r.BufCap(); c != body {
		t.Errorf("the body buffer holds %d bytes for a %d-byte body", c, body)
	}
}
