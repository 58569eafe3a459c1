package engine_test

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
)

// extHooks implements the seam's optional parts for the tests below.
type extHooks struct {
	engine.NopHooks
	srv     *engine.Server
	mu      sync.Mutex
	refused []string
	hold    chan struct{} // Durable waits for it when not nil
	durable int           // Durable calls
}

func (h *extHooks) Intercepts(_ *engine.Client, t string) bool { return strings.HasPrefix(t, "$req/") }

// Intercept answers $req/ok on $reply/ (to the requester only, if it
// subscribed) and refuses the rest with a reason.
func (h *extHooks) Intercept(c *engine.Client, m *engine.Message) engine.Answer {
	if m.Topic != "$req/ok" {
		return engine.Answer{Code: mw.ImplementationSpecific, Reason: "no such request"}
	}
	if h.srv.Subscribed(c.ID, "$reply/"+c.ID) {
		h.srv.SendTo(c, &engine.Message{Topic: "$reply/" + c.ID, Payload: []byte("answer to " + string(m.Payload))})
	}
	return engine.Answer{}
}

func (h *extHooks) MaySubscribe(_ *engine.Client, f string) bool { return !strings.HasPrefix(f, "no/") }

func (h *extHooks) Refused(req *engine.ConnectRequest, code mw.ReasonCode, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	kind := "other"
	switch {
	case mw.CodeOf(err) == mw.PacketTooLarge:
		kind = "too-large"
	case errors.Is(err, engine.ErrNotMQTT):
		kind = "not-mqtt"
	case code != 0:
		kind = "connack"
	}
	h.refused = append(h.refused, kind)
}

func (h *extHooks) Durable(*engine.Client) {
	if h.hold != nil {
		<-h.hold
	}
	h.mu.Lock()
	h.durable++
	h.mu.Unlock()
}

func startExt(t *testing.T, h *extHooks, l engine.Listener) string {
	t.Helper()
	addrs, s := startEngineOn(t, engine.Options{Hooks: h}, l)
	h.srv = s
	return addrs[0]
}

// TestInterceptor: a publish the Interceptor takes is answered with its
// code (MQTT 5: and reason string), routed nowhere, and SendTo writes the
// answer to the requester only; another client subscribed to the same
// topics sees nothing.
func TestInterceptor(t *testing.T) {
	addr := startExt(t, &extHooks{}, engine.Listener{})
	got := runScript(t, addr, steps(
		open("spy", 5, connect("spy", true)), send("spy", subscribe(1, "$req/#", 1)), recv("spy", 1),
		send("spy", subscribe(2, "$reply/#", 1)), recv("spy", 1),
		open("a", 5, connect("a", true)), send("a", subscribe(1, "$reply/a", 1)), recv("a", 1),
		send("a", publish("$req/ok", "r1", 1, false, 7)), recv("a", 2),
		send("a", publish("$req/nope", "r2", 1, false, 8)), recv("a", 1),
		send("a", publish("$req/nope", "r3", 2, false, 9)), recv("a", 1),
		send("a", publish("$req/nope", "r4", 0, false, 0)),
		open("v4", 4, connect("v4", true)), send("v4", publish("$req/nope", "r5", 1, false, 3)), recv("v4", 1),
		quiet("spy"), quiet("a")))
	want := []string{
		"spy: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "spy: SUBACK id=1 01", "spy: SUBACK id=2 01",
		"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: SUBACK id=1 01",
		`a: PUBLISH q0 $reply/a "answer to r1"`, "a: PUBACK id=7 rc=0x0",
		"a: PUBACK id=8 rc=0x83 [reason=no such request]", "a: PUBREC id=9 rc=0x83 [reason=no such request]",
		"v4: CONNACK sp=false rc=0x0", "v4: PUBACK id=3 rc=0x0",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestSubscribeChecker: a refused filter gets SUBACK 0x87 (3.1.1: 0x80)
// and delivers nothing.
func TestSubscribeChecker(t *testing.T) {
	addr := startExt(t, &extHooks{}, engine.Listener{})
	got := runScript(t, addr, steps(
		open("a", 5, connect("a", true)), send("a", subscribe(1, "no/x", 1)), recv("a", 1),
		open("b", 4, connect("b", true)), send("b", subscribe(1, "no/#", 1)), recv("b", 1),
		send("b", publish("no/x", "m", 0, false, 0)), quiet("a"), quiet("b")))
	want := []string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: SUBACK id=1 87",
		"b: CONNACK sp=false rc=0x0", "b: SUBACK id=1 80"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestListenerVersions: accept_protocol_versions 5 refuses 3.1.1 with
// CONNACK 1 and lets MQTT 5 in; the refusal is reported.
func TestListenerVersions(t *testing.T) {
	h := &extHooks{}
	addr := startExt(t, h, engine.Listener{Versions: 1 << 5})
	got := runScript(t, addr, steps(open("a", 4, connect("a", true)), open("b", 5, connect("b", true))))
	want := []string{"a: CONNACK sp=false rc=0x1", "b: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if strings.Join(h.refused, " ") != "connack" {
		t.Errorf("refusals reported: %v", h.refused)
	}
}

// TestMaxConnectSize: a CONNECT announcing more than MaxConnectSize is
// refused at its header (no CONNACK, the body never waited for), a first
// packet that is not a CONNECT at its first byte; both are reported.
func TestMaxConnectSize(t *testing.T) {
	h := &extHooks{}
	addr := startExt(t, h, engine.Listener{})
	for _, b := range [][]byte{{0x10, 0xa1, 0x8d, 0x06}, []byte("GET / HTTP/1.1\r\n")} { // 100001
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(b)
		c.SetReadDeadline(time.Now().Add(3 * time.Second))
		n, err := c.Read(make([]byte, 8))
		c.Close()
		if n != 0 || err == nil || isTimeout(err) {
			t.Errorf("% x: read %d bytes, %v; want the connection closed at once", b[:4], n, err)
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		h.mu.Lock()
		r := strings.Join(h.refused, " ")
		h.mu.Unlock()
		if r == "too-large not-mqtt" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("refusals reported: %q", r)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDurableBeforeAck: a QoS 1 publish is acknowledged only after
// Durable returns.
func TestDurableBeforeAck(t *testing.T) {
	h := &extHooks{hold: make(chan struct{})}
	addr := startExt(t, h, engine.Listener{})
	released := make(chan struct{})
	go func() {
		time.Sleep(quietFor + 200*time.Millisecond)
		close(released)
		close(h.hold)
	}()
	got := runScript(t, addr, steps(open("p", 4, connect("p", true)), send("p", publish("t", "m", 1, false, 5)), quiet("p"), recv("p", 1)))
	select {
	case <-released:
	default:
		t.Fatal("the PUBACK came before Durable returned")
	}
	if got[len(got)-1] != "p: PUBACK id=5 rc=0x0" {
		t.Errorf("transcript: %v", got)
	}
}

// TestDurableOncePerBatch: QoS 1 publishes that arrive together are made
// durable together (fewer Durable calls than publishes) and acknowledged
// in order; a PINGREQ behind them is answered after their PUBACKs.
func TestDurableOncePerBatch(t *testing.T) {
	h := &extHooks{}
	addr := startExt(t, h, engine.Listener{})
	var raw []byte
	for i := 1; i <= 10; i++ {
		p := publish("t", "m", 1, false, uint16(i))
		p.Version = 4
		raw = p.Append(raw)
	}
	raw = (&mw.Packet{Type: mw.PINGREQ, Version: 4}).Append(raw)
	got := runScript(t, addr, steps(open("p", 4, connect("p", true)), step{who: "p", raw: raw}, recv("p", 11)))
	want := []string{"p: CONNACK sp=false rc=0x0"}
	for i := 1; i <= 10; i++ {
		want = append(want, fmt.Sprintf("p: PUBACK id=%d rc=0x0", i))
	}
	want = append(want, "p: PINGRESP")
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.durable == 0 || h.durable >= 10 {
		t.Errorf("%d Durable calls for 10 publishes sent together: want one per batch", h.durable)
	}
}
