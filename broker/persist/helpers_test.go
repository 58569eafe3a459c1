package persist

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// storeHooks is how the broker wires a Store into the engine: the
// persistence calls and Durable forwarded, the rest NopHooks.
type storeHooks struct {
	engine.NopHooks
	s *Store
}

func (h storeHooks) SaveSession(r engine.SessionRecord) { h.s.SaveSession(r) }
func (h storeHooks) DeleteSession(id string)            { h.s.DeleteSession(id) }
func (h storeHooks) SaveSubscription(id string, sub topic.Subscription) {
	h.s.SaveSubscription(id, sub)
}
func (h storeHooks) DeleteSubscription(id, f string)                   { h.s.DeleteSubscription(id, f) }
func (h storeHooks) SaveRetained(m *engine.Message)                    { h.s.SaveRetained(m) }
func (h storeHooks) DeleteRetained(t string)                           { h.s.DeleteRetained(t) }
func (h storeHooks) SaveQueued(id string, seq uint64, q engine.Queued) { h.s.SaveQueued(id, seq, q) }
func (h storeHooks) DeleteQueued(id string, seq uint64)                { h.s.DeleteQueued(id, seq) }
func (h storeHooks) Durable(c *engine.Client)                          { h.s.Durable(c) }

// logTo returns a logger writing into buf (nil: discarded).
func logTo(buf *testutil.SyncBuffer) *slog.Logger {
	if buf == nil {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(buf, nil))
}

func openStore(t testing.TB, path string, log *testutil.SyncBuffer) *Store {
	t.Helper()
	s, err := Open(path, logTo(log))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// broker is an engine with a Store, restored and serving on a loopback
// port.
type broker struct {
	s    *Store
	srv  *engine.Server
	addr string
	done chan error
}

// startBroker opens the store at path, restores it into a new engine and
// serves it; stop closes both (a test that crashes it does not).
func startBroker(t testing.TB, path string, log *testutil.SyncBuffer, drop func(string) bool) *broker {
	t.Helper()
	s := openStore(t, path, log)
	b := serveStore(t, s, drop)
	t.Cleanup(b.stop)
	return b
}

func serveStore(t testing.TB, s *Store, drop func(string) bool) *broker {
	t.Helper()
	srv := engine.New(engine.Options{Hooks: storeHooks{s: s}, MaxQueued: 100000})
	if err := s.Restore(srv, drop); err != nil {
		s.Close()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &broker{s: s, srv: srv, addr: ln.Addr().String(), done: make(chan error, 1)}
	go func() { b.done <- srv.Serve(ln) }()
	return b
}

func (b *broker) stop() {
	if b.srv == nil {
		return
	}
	b.srv.Close()
	<-b.done
	b.s.Close()
	b.srv = nil
}

// client is a raw MQTT client on internal/mqttwire.
type client struct {
	t  testing.TB
	nc net.Conn
	r  *bufio.Reader
	v  byte
}

func dial(t testing.TB, addr string, v byte) *client {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReader(nc), v: v}
}

func (c *client) send(p *mqttwire.Packet) {
	c.t.Helper()
	p.Version = c.v
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(p.Append(nil)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// read returns the next packet, or nil when none comes within d.
func (c *client) read(d time.Duration) *mqttwire.Packet {
	c.t.Helper()
	p, err := c.tryRead(d)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return nil
		}
		c.t.Fatalf("read: %v", err)
	}
	return p
}

func (c *client) tryRead(d time.Duration) (*mqttwire.Packet, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(d))
	head, body, err := mqttwire.ReadPacket(c.r, nil)
	if err != nil {
		return nil, err
	}
	p := &mqttwire.Packet{}
	if err := p.Decode(head, body, c.v); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return p, nil
}

func (c *client) expect(typ byte) *mqttwire.Packet {
	c.t.Helper()
	p := c.read(5 * time.Second)
	if p == nil || p.Type != typ {
		c.t.Fatalf("want packet type %d, got %s", typ, describe(p))
	}
	return p
}

func describe(p *mqttwire.Packet) string {
	if p == nil {
		return "nothing"
	}
	if p.Type == mqttwire.PUBLISH {
		return fmt.Sprintf("PUBLISH q%d id=%d %s %q", p.QoS, p.ID, p.Topic, p.Payload)
	}
	return fmt.Sprintf("packet type %d id=%d reason %#x", p.Type, p.ID, p.Reason)
}

// connect sends CONNECT and returns session present.
func (c *client) connect(id string, clean bool, expiry uint32) bool {
	c.t.Helper()
	p := &mqttwire.Packet{Type: mqttwire.CONNECT, ClientID: []byte(id), CleanStart: clean, Keepalive: 60}
	if expiry != 0 {
		p.Props.SessionExpiry = expiry
		p.Props.Set(mqttwire.PropSessionExpiry)
	}
	c.send(p)
	ack := c.expect(mqttwire.CONNACK)
	if ack.Reason != 0 {
		c.t.Fatalf("CONNACK %#x", ack.Reason)
	}
	return ack.SessionPresent
}

func (c *client) subscribe(filter string, qos byte, subID uint32) {
	c.t.Helper()
	p := &mqttwire.Packet{Type: mqttwire.SUBSCRIBE, ID: 1, Subs: []mqttwire.Subscription{{Filter: []byte(filter), QoS: qos}}}
	if subID != 0 {
		p.Props.SubscriptionIDs = []uint32{subID}
	}
	c.send(p)
	if ack := c.expect(mqttwire.SUBACK); len(ack.Reasons) != 1 || ack.Reasons[0] != mqttwire.ReasonCode(qos) {
		c.t.Fatalf("SUBACK %v", ack.Reasons)
	}
}

// publish1 publishes at QoS 1 and waits for the PUBACK.
func (c *client) publish1(p *mqttwire.Packet) {
	c.t.Helper()
	p.Type, p.QoS = mqttwire.PUBLISH, 1
	if p.ID == 0 {
		p.ID = 1
	}
	c.send(p)
	if ack := c.expect(mqttwire.PUBACK); ack.ID != p.ID || ack.Reason >= 0x80 {
		c.t.Fatalf("PUBACK id=%d %#x for id=%d", ack.ID, ack.Reason, p.ID)
	}
}

func (c *client) disconnect() {
	c.send(&mqttwire.Packet{Type: mqttwire.DISCONNECT})
	c.nc.Close()
}

// receive reads PUBLISHes until none comes for quiet, acking each when
// ack says so, and returns their payloads.
func (c *client) receive(quiet time.Duration, ack func(payload string) bool) []string {
	c.t.Helper()
	var got []string
	for {
		p := c.read(quiet)
		if p == nil {
			return got
		}
		if p.Type != mqttwire.PUBLISH {
			c.t.Fatalf("want PUBLISH, got %s", describe(p))
		}
		got = append(got, string(p.Payload))
		if p.QoS == 1 && (ack == nil || ack(string(p.Payload))) {
			c.send(&mqttwire.Packet{Type: mqttwire.PUBACK, ID: p.ID})
		}
	}
}

func dbPath(t testing.TB) string { return filepath.Join(t.TempDir(), "mqttctl.db") }

func mustContain(t testing.TB, err error, want ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one with %q", want)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not say %q", err, w)
		}
	}
}

func (h storeHooks) SaveIncoming(id string, pid uint16)   { h.s.SaveIncoming(id, pid) }
func (h storeHooks) DeleteIncoming(id string, pid uint16) { h.s.DeleteIncoming(id, pid) }
