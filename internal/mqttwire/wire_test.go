package mqttwire

import (
	"bufio"
	"bytes"
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
