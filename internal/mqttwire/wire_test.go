package mqttwire

import (
	"bufio"
	"bytes"
	"io"
	"runtime"
	"testing"
)

func TestPublishRoundTrip(t *testing.T) {
	for _, v := range []byte{4, 5} {
		for _, q := range []byte{0, 1, 2} {
			payload := bytes.Repeat([]byte("x"), 300) // remaining length needs two bytes
			pkt := AppendPublish(nil, v, "a/b", payload, q, true, 42)
			head, body, err := ReadPacket(bufio.NewReader(bytes.NewReader(pkt)), nil)
			if err != nil {
				t.Fatal(err)
			}
			if head>>4 != PUBLISH || (head>>1)&3 != q || head&1 != 1 {
				t.Fatalf("v%d q%d: header %08b", v, q, head)
			}
			topic, id, got, ok := PublishInfo(head, body, v)
			wantID := uint16(42)
			if q == 0 {
				wantID = 0
			}
			if !ok || topic != "a/b" || id != wantID || !bytes.Equal(got, payload) {
				t.Fatalf("v%d q%d: %q %d %d bytes ok=%v", v, q, topic, id, len(got), ok)
			}
		}
	}
}

func TestConnectEncoding(t *testing.T) {
	u, p := "user", "pw"
	pkt := AppendConnect(nil, Connect{Version: 4, ClientID: "id", Username: &u, Password: &p, Clean: true, Keepalive: 30})
	want := []byte{0x10, 24, 0, 4, 'M', 'Q', 'T', 'T', 4, 0xc2, 0, 30, 0, 2, 'i', 'd', 0, 4, 'u', 's', 'e', 'r', 0, 2, 'p', 'w'}
	if !bytes.Equal(pkt, want) {
		t.Fatalf("CONNECT\n got %v\nwant %v", pkt, want)
	}
	if _, _, err := ReadPacket(bufio.NewReader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})), nil); err != ErrMalformed {
		t.Fatalf("5-byte length: %v", err)
	}
}

// TestReadPacketLengthIsOnlyAClaim: a peer that sends a 5-byte header
// claiming 256 MiB and then closes costs no 256 MiB allocation (mqttctl
// check reads a server it does not trust yet).
func TestReadPacketLengthIsOnlyAClaim(t *testing.T) {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, _, err := ReadPacket(bufio.NewReader(bytes.NewReader([]byte{0x30, 0xff, 0xff, 0xff, 0x7f, 'x'})), nil)
	runtime.ReadMemStats(&after)
	if err != io.ErrUnexpectedEOF {
		t.Errorf("err %v, want unexpected EOF", err)
	}
	if d := after.TotalAlloc - before.TotalAlloc; d > 1<<20 {
		t.Errorf("allocated %d bytes for a packet that has 1", d)
	}
}

// FuzzReadPacket: what a server sends to mqttctl's clients (check, bench):
// packets or an error, never a panic; a PUBLISH body decodes or is
// refused, its parts within the body.
func FuzzReadPacket(f *testing.F) {
	f.Add(AppendPublish(nil, 4, "a/b", []byte("hello"), 1, false, 7))
	f.Add(AppendPublish(nil, 5, "a/b", bytes.Repeat([]byte("x"), 300), 2, true, 9))
	f.Add(append(AppendAck(nil, PUBACK, 1), 0x20, 2, 0, 0))
	f.Add([]byte{0x30, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		for {
			head, body, err := ReadPacket(r, nil)
			if err != nil {
				return
			}
			if len(body) > len(data) {
				t.Fatalf("a %d-byte body from %d bytes", len(body), len(data))
			}
			if head>>4 != PUBLISH {
				continue
			}
			for _, v := range []byte{4, 5} {
				if topic, _, payload, ok := PublishInfo(head, body, v); ok && len(topic)+len(payload) > len(body) {
					t.Fatalf("v%d: topic and payload longer than the body", v)
				}
			}
		}
	})
}
