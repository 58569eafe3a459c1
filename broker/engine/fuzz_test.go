package engine_test

import (
	"io"
	"net"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
)

// FuzzConn sends a CONNECT at each level and then any bytes to the engine:
// it must answer or close without panicking, and the connection's
// goroutine must end once the client has gone.
func FuzzConn(f *testing.F) {
	seeds := [][]byte{
		publish("a/b", "x", 1, true, 1).Append(nil),
		subscribe(1, "a/#", 2).Append(nil),
		append(publish("t", "x", 2, false, 3).Append(nil), ack(mw.PUBREL, 3).Append(nil)...),
		unsubscribe(2, "a/#").Append(nil),
		{0xc0, 0},
		{0xe0, 0},
		{0x30, 0x7f},
		{0x82, 0xff, 0xff, 0xff, 0x7f},
	}
	for _, s := range seeds {
		for _, v := range []byte{3, 4, 5} {
			f.Add(v, s)
		}
	}
	s := engine.New(engine.Options{ConnectTimeout: time.Second})
	defer s.Close()
	f.Fuzz(func(t *testing.T, version byte, data []byte) {
		if version < 3 || version > 5 {
			return
		}
		client, server := net.Pipe()
		if !s.ServeConn(server) {
			t.Fatal("server closed")
		}
		_ = client.SetDeadline(time.Now().Add(time.Second))
		go func() { _, _ = io.Copy(io.Discard, client) }()
		p := *connect("fuzz", true)
		p.Version = version
		_, _ = client.Write(p.Append(nil))
		_, _ = client.Write(data)
		client.Close()
		for deadline := time.Now().Add(5 * time.Second); s.Sessions() > 0; time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the connection's session is still there 5 s after the client went")
			}
		}
	})
}
