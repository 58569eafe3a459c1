package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
)

func check(t *testing.T, opts engine.Options, st []step, want []string) {
	t.Helper()
	addr, _ := startEngine(t, opts)
	got := runScript(t, addr, st)
	if !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSharedSubscription: each message to a share group goes to one
// member, in turn.
func TestSharedSubscription(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{})
	var st []step
	for _, who := range []string{"a", "b"} {
		st = append(st, open(who, 5, connect("s"+who, true))...)
		st = append(st, send(who, subscribe(1, "$share/g/sh/t", 0)), recv(who, 1))
	}
	st = append(st, open("p", 5, connect("pub", true))...)
	for _, m := range []string{"1", "2", "3", "4"} {
		st = append(st, send("p", publish("sh/t", m, 0, false, 0)))
	}
	st = append(st, send("p", pingreq), recv("p", 1), recv("a", 2), recv("b", 2), quiet("a"), quiet("b"))
	got := runScript(t, addr, st)
	var payloads []string
	for _, l := range got {
		if strings.Contains(l, "PUBLISH") {
			payloads = append(payloads, l[strings.LastIndex(l, " ")+1:])
		}
	}
	sort.Strings(payloads)
	if !slices.Equal(payloads, []string{`"1"`, `"2"`, `"3"`, `"4"`}) {
		t.Errorf("each message once to one member, two each:\n%s", strings.Join(got, "\n"))
	}
}

// TestSysPublishDropped: a client's publish to $SYS is acknowledged and
// dropped, as mosquitto does; a bridge's connection state is not $SYS.
func TestSysPublishDropped(t *testing.T) {
	check(t, engine.Options{}, steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "$SYS/#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("$SYS/x", "m", 1, false, 5)), recv("p", 1), quiet("s"),
		send("p", publish("$SYS/broker/connection/b1/state", "1", 0, false, 0)), recv("s", 1),
		open("q", 5, connect("pub5", true)), send("q", publish("$SYS/y", "m", 1, false, 6)), recv("q", 1),
		send("q", publish("$SYS/y", "m", 2, false, 7)), recv("q", 1), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=5 rc=0x0",
			`s: PUBLISH q0 $SYS/broker/connection/b1/state "1"`, "q: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]",
			"q: PUBACK id=6 rc=0x87", "q: PUBREC id=7 rc=0x87"})
}

// TestSubscriptionIdentifiers: overlapping subscriptions each deliver a
// copy with their own identifier.
func TestSubscriptionIdentifiers(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{})
	got := runScript(t, addr, steps(open("s", 5, connect("sub", true)),
		send("s", subID(subscribe(1, "si/+", 0), 7)), recv("s", 1), send("s", subID(subscribe(2, "si/#", 0), 9)), recv("s", 1),
		open("p", 5, connect("pub", true)), send("p", publish("si/a", "m", 0, false, 0)), recv("s", 2)))
	tail := got[len(got)-2:]
	sort.Strings(tail)
	want := []string{`s: PUBLISH q0 si/a "m" [subid=[7]]`, `s: PUBLISH q0 si/a "m" [subid=[9]]`}
	if !slices.Equal(tail, want) {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestConnectTimeout(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{ConnectTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	var b [1]byte
	if _, err := c.Read(b[:]); err == nil || isTimeout(err) {
		t.Fatalf("a connection without CONNECT is not closed: %v", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// hooks is a broker as the seam sees it: users, an ACL and a record of
// the persistence calls.
type hooks struct {
	engine.NopHooks
	mu    sync.Mutex
	calls []string
}

func (h *hooks) rec(s string) {
	h.mu.Lock()
	h.calls = append(h.calls, s)
	h.mu.Unlock()
}

func (h *hooks) Authenticate(r *engine.ConnectRequest) engine.Verdict {
	switch {
	case r.Username == "bad":
		return engine.Verdict{Code: mw.BadUsernameOrPassword}
	case r.Username == "nobody":
		return engine.Verdict{Code: mw.NotAuthorized}
	case r.Username == "cert":
		return engine.Verdict{SetUsername: true, Username: "from-cert", HasUsername: true}
	}
	return engine.Verdict{}
}

func (h *hooks) MayPublish(c *engine.Client, t string) bool {
	return !strings.HasPrefix(t, "deny/") && (c.Username == "from-cert" || !strings.HasPrefix(t, "cert/"))
}

func (h *hooks) MayRead(_ *engine.Client, t string) bool { return !strings.HasPrefix(t, "secret/") }

func (h *hooks) SaveSession(r engine.SessionRecord) { h.rec("session " + r.ClientID) }
func (h *hooks) DeleteSession(id string)            { h.rec("delete session " + id) }
func (h *hooks) SaveSubscription(id string, s topic.Subscription) {
	h.rec("subscription " + id + " " + s.Filter)
}
func (h *hooks) DeleteSubscription(id, f string) { h.rec("delete subscription " + id + " " + f) }
func (h *hooks) SaveRetained(m *engine.Message)  { h.rec("retained " + m.Topic) }
func (h *hooks) DeleteRetained(t string)         { h.rec("delete retained " + t) }
func (h *hooks) SaveQueued(id string, seq uint64, q engine.Queued) {
	h.rec(fmt.Sprintf("queued %s %s q%d", id, q.M.Topic, q.QoS))
}
func (h *hooks) DeleteQueued(id string, seq uint64) { h.rec("delete queued " + id) }
func (h *hooks) SaveIncoming(id string, pid uint16) { h.rec(fmt.Sprintf("incoming %s %d", id, pid)) }
func (h *hooks) DeleteIncoming(id string, pid uint16) {
	h.rec(fmt.Sprintf("delete incoming %s %d", id, pid))
}

func user(name string) func(*mw.Packet) {
	return func(p *mw.Packet) { p.Username, p.HasUsername = []byte(name), true }
}

func TestHooks(t *testing.T) {
	check(t, engine.Options{Hooks: &hooks{}}, steps(
		open("a", 4, connect("a", true, user("bad"))), open("b", 5, connect("b", true, user("bad"))),
		open("c", 4, connect("c", true, user("nobody"))), open("d", 5, connect("d", true, user("nobody"))),
		open("s", 4, connect("sub", true)), send("s", subscribe(1, "#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("deny/x", "m", 1, false, 1)), recv("p", 1),
		send("p", publish("deny/x", "m", 2, false, 2)), recv("p", 1), send("p", ack(mw.PUBREL, 2)), recv("p", 1),
		send("p", publish("cert/x", "m", 0, false, 0)), send("p", publish("secret/x", "m", 0, false, 0)), quiet("s"),
		open("q", 5, connect("pub5", true, user("cert"))), send("q", publish("cert/x", "ok", 1, false, 3)), recv("q", 1), recv("s", 1),
		send("q", publish("deny/x", "m", 1, false, 4)), recv("q", 1)),
		[]string{"a: CONNACK sp=false rc=0x4", "b: CONNACK sp=false rc=0x86", "c: CONNACK sp=false rc=0x5", "d: CONNACK sp=false rc=0x87",
			"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
			"p: PUBREC id=2 rc=0x0", "p: PUBCOMP id=2 rc=0x0", "q: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]",
			"q: PUBACK id=3 rc=0x0", `s: PUBLISH q1 id=1 cert/x "ok"`, "q: PUBACK id=4 rc=0x87"})
}

// TestPersistenceCalls: what a persistent session and retained messages
// tell the store, and a restored session getting its queued message.
func TestPersistenceCalls(t *testing.T) {
	h := &hooks{}
	check(t, engine.Options{Hooks: h}, steps(
		open("s", 4, connect("keep", false)), send("s", subscribe(1, "k/#", 1)), recv("s", 1), drop("s"), pause(50*time.Millisecond),
		open("p", 4, connect("pub", true)), send("p", publish("k/1", "m", 1, true, 1)), recv("p", 1),
		send("p", publish("k/1", "", 0, true, 0)), send("p", pingreq), recv("p", 1),
		open("s", 4, connect("keep", false)), recv("s", 1), send("s", ack(mw.PUBACK, 1)),
		send("s", unsubscribe(2, "k/#")), recv("s", 1), send("s", disconnect), until("s"),
		open("s", 4, connect("keep", true)), send("s", disconnect), until("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0", "p: PINGRESP",
			"s: CONNACK sp=true rc=0x0", `s: PUBLISH q1 id=1 k/1 "m"`, "s: UNSUBACK id=2", "s: closed",
			"s: CONNACK sp=false rc=0x0", "s: closed"})
	want := []string{"session keep", "subscription keep k/#", "retained k/1", "queued keep k/1 q1", "delete retained k/1",
		"session keep", "delete queued keep", "delete subscription keep k/#", "delete session keep"}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(h.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestDisconnectSessionExpiry: an MQTT 5 DISCONNECT that changes the
// session expiry changes what is stored: a new expiry is saved, 0 ends
// the session and deletes it.
func TestDisconnectSessionExpiry(t *testing.T) {
	h := &hooks{}
	exp := func(s uint32) *mw.Packet {
		d := &mw.Packet{Type: mw.DISCONNECT}
		d.Props.SessionExpiry = s
		d.Props.Set(mw.PropSessionExpiry)
		return d
	}
	check(t, engine.Options{Hooks: h}, steps(
		open("a", 5, connect("a", true, sessionExpiry(3600))), send("a", exp(60)), until("a"),
		open("b", 5, connect("b", true, sessionExpiry(3600))), send("b", exp(0)), until("b")),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: closed",
			"b: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "b: closed"})
	// a: saved at CONNECT, with the new expiry at DISCONNECT, and with the
	// time it disconnected; b: deleted.
	want := []string{"session a", "session a", "session a", "session b", "delete session b"}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(h.calls, "\n"), strings.Join(want, "\n"))
	}
}

// TestIncomingSavedAfterItsCopies: a persistent publisher's QoS 2 id is
// handed to the store after the message's queued copies (so that no
// commit can hold the id without them), and deleted at PUBREL.
func TestIncomingSavedAfterItsCopies(t *testing.T) {
	h := &hooks{}
	check(t, engine.Options{Hooks: h}, steps(
		open("s", 4, connect("keep", false)), send("s", subscribe(1, "k/#", 1)), recv("s", 1), drop("s"), pause(50*time.Millisecond),
		open("p", 4, connect("pub", false)), send("p", publish("k/1", "m", 2, false, 9)), recv("p", 1),
		send("p", ack(mw.PUBREL, 9)), recv("p", 1)),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0", "p: PUBREC id=9 rc=0x0", "p: PUBCOMP id=9 rc=0x0"})
	want := []string{"session keep", "subscription keep k/#", "session pub", "queued keep k/1 q1", "incoming pub 9", "delete incoming pub 9"}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !slices.Equal(h.calls, want) {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(h.calls, "\n"), strings.Join(want, "\n"))
	}
}

func TestRestoreSession(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := engine.New(engine.Options{})
	s.RestoreRetained(&engine.Message{Topic: "r/1", Payload: []byte("kept"), QoS: 1, Retain: true, Created: time.Now()})
	s.RestoreSession(engine.SessionRecord{ClientID: "back", Version: 4, Expiry: 0xFFFFFFFF},
		[]topic.Subscription{{Filter: "q/#", QoS: 1}}, []engine.Queued{{M: &engine.Message{Topic: "q/1", Payload: []byte("owed"), QoS: 2, Created: time.Now()}, QoS: 1}})
	go s.Serve(ln)
	defer s.Close()
	got := runScript(t, ln.Addr().String(), steps(open("s", 4, connect("back", false)), recv("s", 1), send("s", ack(mw.PUBACK, 1)),
		open("p", 4, connect("pub", true)), send("p", publish("q/2", "live", 0, false, 0)), recv("s", 1),
		send("s", subscribe(1, "r/#", 0)), recv("s", 2)))
	want := []string{"s: CONNACK sp=true rc=0x0", `s: PUBLISH q1 id=1 q/1 "owed"`, "p: CONNACK sp=false rc=0x0",
		`s: PUBLISH q0 q/2 "live"`, "s: SUBACK id=1 00", `s: PUBLISH q0 retain r/1 "kept"`}
	if !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestReceiveMaximum: an MQTT 5 client's Receive Maximum bounds what it
// has in flight; the rest waits in the session, in order.
func TestReceiveMaximum(t *testing.T) {
	rm := func(p *mw.Packet) { p.Props.ReceiveMaximum = 2; p.Props.Set(mw.PropReceiveMaximum) }
	var pubs []step
	for i, m := range []string{"1", "2", "3", "4"} {
		pubs = append(pubs, send("p", publish("rm/t", m, 1, false, uint16(i+1))), recv("p", 1))
	}
	check(t, engine.Options{}, steps(open("s", 5, connect("sub", true, rm)), send("s", subscribe(1, "rm/#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), pubs, recv("s", 2), quiet("s"),
		send("s", ack(mw.PUBACK, 1)), recv("s", 1), quiet("s"), send("s", ack(mw.PUBACK, 2)), send("s", ack(mw.PUBACK, 3)), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0",
			"p: PUBACK id=1 rc=0x0", "p: PUBACK id=2 rc=0x0", "p: PUBACK id=3 rc=0x0", "p: PUBACK id=4 rc=0x0",
			`s: PUBLISH q1 id=1 rm/t "1"`, `s: PUBLISH q1 id=2 rm/t "2"`, `s: PUBLISH q1 id=3 rm/t "3"`, `s: PUBLISH q1 id=4 rm/t "4"`})
}

// TestMaxPacketSize: the server's limit refuses a bigger packet (0x95 to
// MQTT 5), and a client's limit keeps bigger messages from it.
func TestMaxPacketSize(t *testing.T) {
	mps := func(p *mw.Packet) { p.Props.MaximumPacketSize = 40; p.Props.Set(mw.PropMaximumPacketSize) }
	big := strings.Repeat("x", 60)
	rm1 := func(p *mw.Packet) { p.Props.ReceiveMaximum = 1; p.Props.Set(mw.PropReceiveMaximum) }
	check(t, engine.Options{MaxPacketSize: 100}, steps(open("s", 5, connect("sub", true, mps, rm1)), send("s", subscribe(1, "mp/#", 1)), recv("s", 1),
		open("p", 5, connect("pub", true)), send("p", publish("mp/t", big, 0, false, 0)), send("p", publish("mp/t", "small", 0, false, 0)),
		recv("s", 1),
		// A QoS 1 message too big for the client does not hold its only slot.
		send("p", publish("mp/t", big, 1, false, 1)), recv("p", 1), send("p", publish("mp/t", "next", 1, false, 2)), recv("p", 1), recv("s", 1),
		send("p", publish("mp/t", big+big, 0, false, 0)), until("p")),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 max-packet=100 receive-max=20]", "s: SUBACK id=1 01",
			"p: CONNACK sp=false rc=0x0 [alias-max=10 max-packet=100 receive-max=20]", `s: PUBLISH q0 mp/t "small"`,
			"p: PUBACK id=1 rc=0x0", "p: PUBACK id=2 rc=0x0", `s: PUBLISH q1 id=2 mp/t "next"`,
			"p: DISCONNECT rc=0x95", "p: closed"})
}

// TestWillDelay: a will with a delay is sent once the delay passes, and
// not at all when the session is resumed first.
func TestWillDelay(t *testing.T) {
	delayed := func(p *mw.Packet) { p.WillProps.WillDelay = 1; p.WillProps.Set(mw.PropWillDelay) }
	check(t, engine.Options{}, steps(open("s", 5, connect("sub", true)), send("s", subscribe(1, "wd/#", 0)), recv("s", 1),
		open("w", 5, connect("w1", true, will("wd/1", "late", 0, false), delayed, sessionExpiry(60))), drop("w"), quiet("s"),
		pause(time.Second), recv("s", 1),
		open("w", 5, connect("w2", true, will("wd/2", "never", 0, false), delayed, sessionExpiry(60))), drop("w"),
		open("w", 5, connect("w2", false, sessionExpiry(60))), pause(1200*time.Millisecond), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 00",
			"w: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", `s: PUBLISH q0 wd/1 "late"`,
			"w: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "w: CONNACK sp=true rc=0x0 [alias-max=10 receive-max=20]"})
}

// TestQoS2Duplicate: a QoS 2 PUBLISH sent again before PUBREL is
// delivered once.
func TestQoS2Duplicate(t *testing.T) {
	check(t, engine.Options{}, steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "d/#", 0)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("d/1", "once", 2, false, 5)), recv("p", 1),
		send("p", publish("d/1", "once", 2, false, 5, func(p *mw.Packet) { p.Dup = true })), recv("p", 1),
		send("p", ack(mw.PUBREL, 5)), recv("p", 1), recv("s", 1), send("p", ack(mw.PUBREL, 5)), recv("p", 1), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "p: CONNACK sp=false rc=0x0", "p: PUBREC id=5 rc=0x0",
			"p: PUBREC id=5 rc=0x0", "p: PUBCOMP id=5 rc=0x0", `s: PUBLISH q0 d/1 "once"`, "p: PUBCOMP id=5 rc=0x0"})
}

// TestConcurrentClients: publishers and persistent QoS 1 subscribers at
// once, each subscriber taken over by a new connection half way (under
// -race): every subscriber gets every message at least once.
func TestConcurrentClients(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{MaxQueued: 10000})
	const subs, pubs, msgs = 6, 3, 300
	type result struct {
		id   int
		seen map[string]bool
		err  error
	}
	dialSub := func(i int) (net.Conn, *bufio.Reader, error) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return nil, nil, err
		}
		b := (&mw.Packet{Type: mw.CONNECT, Version: 4, Keepalive: 60, ClientID: fmt.Appendf(nil, "csub-%d", i)}).Append(nil)
		if _, err := c.Write(b); err != nil {
			return nil, nil, err
		}
		return c, bufio.NewReader(c), nil
	}
	results := make(chan result, subs)
	ready := make(chan struct{}, subs)
	for i := range subs {
		go func() {
			r := result{id: i, seen: map[string]bool{}}
			defer func() { results <- r }()
			c, br, err := dialSub(i)
			if err != nil {
				r.err = err
				return
			}
			if _, err := c.Write(subscribe(1, "conc/#", 1).Append(nil)); err != nil {
				r.err = err
				return
			}
			tookOver := false
			for len(r.seen) < pubs*msgs {
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				head, body, err := mw.ReadPacket(br, nil)
				if err != nil {
					if tookOver {
						continue
					}
					r.err = fmt.Errorf("after %d messages: %w", len(r.seen), err)
					return
				}
				switch head >> 4 {
				case mw.SUBACK:
					ready <- struct{}{}
				case mw.PUBLISH:
					_, id, payload, _ := mw.PublishInfo(head, body, 4)
					r.seen[string(payload)] = true
					_, _ = c.Write(mw.AppendAck(nil, mw.PUBACK, id))
				}
				if !tookOver && len(r.seen) == pubs*msgs/2 {
					// A new connection takes the session over; the old
					// one's unacknowledged messages come again.
					nc, nbr, err := dialSub(i)
					if err != nil {
						r.err = err
						return
					}
					c.Close()
					c, br, tookOver = nc, nbr, true
				}
			}
			c.Close()
		}()
	}
	for range subs {
		<-ready
	}
	var wg sync.WaitGroup
	for p := range pubs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			br := bufio.NewReader(c)
			_, _ = c.Write((&mw.Packet{Type: mw.CONNECT, Version: 4, CleanStart: true, ClientID: fmt.Appendf(nil, "cpub-%d", p)}).Append(nil))
			go func() { // the acknowledgements
				for {
					if _, _, err := mw.ReadPacket(br, nil); err != nil {
						return
					}
				}
			}()
			for m := range msgs {
				qos := byte(m % 3)
				if qos == 0 {
					qos = 1 // QoS 0 may be dropped by design; 1 and 2 may not
				}
				if _, err := c.Write(mw.AppendPublish(nil, 4, fmt.Sprintf("conc/%d", p), fmt.Appendf(nil, "%d-%d", p, m), qos, false, uint16(m+1))); err != nil {
					t.Error(err)
					return
				}
				if qos == 2 {
					_, _ = c.Write(mw.AppendAck(nil, mw.PUBREL, uint16(m+1)))
				}
			}
			time.Sleep(500 * time.Millisecond)
		}()
	}
	wg.Wait()
	for range subs {
		r := <-results
		if r.err != nil || len(r.seen) != pubs*msgs {
			t.Errorf("subscriber %d got %d of %d messages: %v", r.id, len(r.seen), pubs*msgs, r.err)
		}
	}
}

// TestDisconnect: the broker closes a client (a revoked certificate): an
// MQTT 5 client is told why; its will is sent.
func TestDisconnect(t *testing.T) {
	addr, s := startEngine(t, engine.Options{})
	var got []string
	go func() {
		time.Sleep(300 * time.Millisecond)
		if !s.Disconnect("revoked", mw.NotAuthorized) || s.Disconnect("nobody", mw.NotAuthorized) {
			t.Error("Disconnect: wrong answer")
		}
	}()
	got = runScript(t, addr, steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "dis/#", 0)), recv("s", 1),
		open("r", 5, connect("revoked", true, will("dis/will", "bye", 0, false))), until("r"), recv("s", 1)))
	want := []string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "r: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]",
		"r: DISCONNECT rc=0x87", "r: closed", `s: PUBLISH q0 dis/will "bye"`}
	if !slices.Equal(got, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// readerHooks lets user "alice" read everything and others nothing under
// private/.
type readerHooks struct{ engine.NopHooks }

func (readerHooks) MayRead(c *engine.Client, t string) bool {
	return c.Username == "alice" || !strings.HasPrefix(t, "private/")
}

// TestSessionNewUser: a persistent session taken by another user keeps
// only what that user may read, queued or in flight.
func TestSessionNewUser(t *testing.T) {
	check(t, engine.Options{Hooks: readerHooks{}}, steps(
		open("s", 4, connect("shared-id", false, user("alice"))), send("s", subscribe(1, "#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("private/1", "in flight", 1, false, 1)), recv("p", 1), recv("s", 1),
		drop("s"), pause(50*time.Millisecond),
		send("p", publish("private/2", "queued", 1, false, 2)), send("p", publish("public/3", "queued", 1, false, 3)), recv("p", 2),
		open("s", 4, connect("shared-id", false, user("mallory"))), recv("s", 1), send("s", ack(mw.PUBACK, 3)), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
			`s: PUBLISH q1 id=1 private/1 "in flight"`, "p: PUBACK id=2 rc=0x0", "p: PUBACK id=3 rc=0x0",
			"s: CONNACK sp=true rc=0x0", `s: PUBLISH q1 id=3 public/3 "queued"`})
}

// TestSubscribeFunc: an in-process client (a bridge) gets what matches
// but its own publishes, and network clients get its publishes.
func TestSubscribeFunc(t *testing.T) {
	addr, s := startEngine(t, engine.Options{})
	got := make(chan string, 10)
	if err := s.SubscribeFunc("bridge-local", "out/#", 1, func(m *engine.Message) { got <- m.Topic + " " + string(m.Payload) }); err != nil {
		t.Fatal(err)
	}
	if err := s.SubscribeFunc("bridge-local", "bad/#/x", 1, func(*engine.Message) {}); err == nil {
		t.Error("an invalid filter is accepted")
	}
	tr := runScript(t, addr, steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "out/#", 0)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("out/1", "to remote", 1, false, 1)), recv("p", 1), recv("s", 1),
		open("x", 4, connect("bridge-local", true)),
		step{do: func() {
			s.Publish(&engine.Message{Topic: "out/2", Payload: []byte("from remote"), QoS: 0, From: "bridge-local"})
		}},
		recv("s", 1)))
	want := []string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
		`s: PUBLISH q0 out/1 "to remote"`, "x: CONNACK sp=false rc=0x2", `s: PUBLISH q0 out/2 "from remote"`}
	if !slices.Equal(tr, want) {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(tr, "\n"), strings.Join(want, "\n"))
	}
	select {
	case m := <-got:
		if m != "out/1 to remote" {
			t.Errorf("in-process client got %q", m)
		}
	case <-time.After(time.Second):
		t.Error("in-process client got nothing")
	}
	select {
	case m := <-got:
		t.Errorf("in-process client got its own publish back: %q", m)
	default:
	}
	if !s.UnsubscribeFunc("bridge-local", "out/#") {
		t.Error("UnsubscribeFunc found nothing")
	}
}

// TestSlowSubscriber: a subscriber that reads nothing does not stop a
// publisher: its QoS 0 messages beyond MaxPending are dropped, and once a
// write to it has waited WriteTimeout it is disconnected.
func TestSlowSubscriber(t *testing.T) {
	addr, s := startEngine(t, engine.Options{WriteTimeout: 300 * time.Millisecond, MaxPending: 64 << 10})
	idleConnsV(t, addr, "slow", "slow/#") // never reads again
	pub := idleConnsV(t, addr, "fast", "")
	payload := make([]byte, 4096)
	var b []byte
	for range 5000 { // 20 MB: more than the sockets hold
		b = mw.AppendPublish(b[:0], 4, "slow/t", payload, 0, false, 0)
		_ = pub.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := pub.Write(b); err != nil {
			t.Fatalf("the publisher is blocked: %v", err)
		}
	}
	_, _ = pub.Write([]byte{mw.PINGREQ << 4, 0})
	_ = pub.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 2)
	if _, err := readFull(pub, got); err != nil || got[0] != mw.PINGRESP<<4 {
		t.Fatalf("the publisher got no PINGRESP: %x %v", got, err)
	}
	for deadline := time.Now().Add(5 * time.Second); s.Sessions() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the subscriber that reads nothing is still connected (%d sessions)", s.Sessions())
		}
	}
}

// TestCloseWhileBusy: Close while clients connect, subscribe and publish
// (under -race): it returns, MQTT 5 clients are told 0x8B, and Serve ends.
func TestCloseWhileBusy(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := engine.New(engine.Options{})
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln) }()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					return
				}
				b := (&mw.Packet{Type: mw.CONNECT, Version: 5, CleanStart: n%2 == 0, ClientID: fmt.Appendf(nil, "busy-%d", i%4)}).Append(nil)
				b = (&mw.Packet{Type: mw.SUBSCRIBE, Version: 5, ID: 1, Subs: []mw.Subscription{{Filter: []byte("busy/#"), QoS: 1}}}).Append(b)
				b = mw.AppendPublish(b, 5, "busy/t", []byte("x"), 1, false, 1)
				_, _ = c.Write(b)
				_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				_, _ = c.Read(make([]byte, 64))
				c.Close()
			}
		}()
	}
	time.Sleep(300 * time.Millisecond)
	v5, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer v5.Close()
	sc := &scriptClient{c: v5, r: bufio.NewReader(v5), v: 5}
	p := connect("watcher", true)
	p.Version = 5
	_, _ = v5.Write(p.Append(nil))
	readOne(sc, 3*time.Second)
	closed := make(chan struct{})
	go func() { s.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	close(stop)
	wg.Wait()
	if got := readOne(sc, 3*time.Second); got != "DISCONNECT rc=0x8b" {
		t.Errorf("an MQTT 5 client got %q at Close, want DISCONNECT 0x8B", got)
	}
	if err := <-served; !errors.Is(err, engine.ErrClosed) {
		t.Errorf("Serve: %v", err)
	}
}

// TestSessionExpiry: a disconnected MQTT 5 session ends after its expiry
// interval, sending a will whose delay is longer then.
func TestSessionExpiry(t *testing.T) {
	addr, s := startEngine(t, engine.Options{})
	var during int
	check := func() { during = s.Sessions() }
	got := runScript(t, addr, steps(open("s", 5, connect("sub", true)), send("s", subscribe(1, "se/#", 0)), recv("s", 1),
		open("e", 5, connect("short", false, sessionExpiry(1), will("se/will", "ended", 0, false), willDelay(30))),
		send("e", subscribe(1, "x/#", 0)), recv("e", 1), drop("e"), pause(300*time.Millisecond), step{do: check},
		recv("s", 1), open("e", 5, connect("short", false, sessionExpiry(1)))))
	want := []string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 00",
		"e: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "e: SUBACK id=1 00",
		`s: PUBLISH q0 se/will "ended"`, "e: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]"}
	if !slices.Equal(got, want) || during != 2 {
		t.Errorf("sessions while disconnected: %d (want 2)\ntranscript:\n%s\nwant:\n%s", during, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
