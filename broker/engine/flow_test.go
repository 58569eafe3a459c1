package engine_test

import (
	"bufio"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
)

// TestStalledSubscriberDoesNotHoldThePublisher: a subscriber that reads
// nothing does not make a QoS 0 publisher wait in its write (the write is
// the subscriber's own goroutine's), and a subscriber that reads gets the
// messages meanwhile. WriteTimeout is far longer than the reads here.
func TestStalledSubscriberDoesNotHoldThePublisher(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{WriteTimeout: time.Minute, MaxPending: 64 << 10})
	idleConnsV(t, addr, "stalled", "s/#") // never reads
	good := idleConnsV(t, addr, "good", "s/#")
	pub := idleConnsV(t, addr, "pub", "")
	go func() { // the good subscriber reads whatever comes
		r := bufio.NewReader(good)
		for {
			if _, err := r.ReadByte(); err != nil {
				return
			}
		}
	}()
	payload := make([]byte, 4096)
	var b []byte
	for range 2000 { // 8 MB: far more than the stalled subscriber's socket holds
		b = mw.AppendPublish(b[:0], 4, "s/t", payload, 0, false, 0)
		_ = pub.SetWriteDeadline(time.Now().Add(20 * time.Second))
		if _, err := pub.Write(b); err != nil {
			t.Fatalf("the publisher is held: %v", err)
		}
	}
	_, _ = pub.Write([]byte{mw.PINGREQ << 4, 0})
	_ = pub.SetReadDeadline(time.Now().Add(20 * time.Second))
	got := make([]byte, 2)
	if _, err := readFull(pub, got); err != nil || got[0] != mw.PINGRESP<<4 {
		t.Fatalf("the publisher got no PINGRESP while a subscriber reads nothing: %x %v", got, err)
	}
}

// TestTrickleAcknowledgerDoesNotSetThePace: a subscriber whose queue is
// full and that acknowledges one message now and then is stalled after
// one slow wait, instead of making every publisher wait for each of its
// acknowledgements (FlowWait each).
func TestTrickleAcknowledgerDoesNotSetThePace(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{MaxQueued: 10, MaxInflight: 1, FlowWait: time.Second})
	slow := idleConnsV(t, addr, "slow", "tr/#")
	go func() { // acknowledges one message every 300 ms
		r := mw.NewReader(bufio.NewReader(slow), 0)
		r.Version = 4
		var p mw.Packet
		for {
			if err := r.Read(&p); err != nil {
				return
			}
			if p.Type == mw.PUBLISH && p.QoS == 1 {
				time.Sleep(300 * time.Millisecond)
				_, _ = slow.Write((&mw.Packet{Type: mw.PUBACK, Version: 4, ID: p.ID}).Append(nil))
			}
		}
	}()
	pub := idleConnsV(t, addr, "pub", "")
	r := mw.NewReader(bufio.NewReader(pub), 0)
	r.Version = 4
	start := time.Now()
	var p mw.Packet
	for i := 1; i <= 100; i++ {
		_ = pub.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := pub.Write(mw.AppendPublish(nil, 4, "tr/x", []byte("m"), 1, false, uint16(i))); err != nil {
			t.Fatal(err)
		}
		if err := r.Read(&p); err != nil || p.Type != mw.PUBACK {
			t.Fatalf("PUBACK %d: %v", i, err)
		}
	}
	// Waiting for each acknowledgement would take 90 * 300 ms = 27 s.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("100 publishes took %v: the trickling subscriber set the publisher's pace", d)
	}
}

// readHooks lets a test change what MayRead answers.
type readHooks struct {
	engine.NopHooks
	deny atomic.Bool
}

func (h *readHooks) MayRead(*engine.Client, string) bool { return !h.deny.Load() }

// TestQueuedReadCheckedWhenSent: a message queued for an offline session
// while the ACL let its client read it is not sent once the ACL no longer
// does (a reload, or the session resumed on another listener), queued or
// in flight, as mosquitto checks at sending.
func TestQueuedReadCheckedWhenSent(t *testing.T) {
	h := &readHooks{}
	addr, _ := startEngine(t, engine.Options{Hooks: h})
	got := runScript(t, addr, steps(
		open("s", 4, connect("sub", false)), send("s", subscribe(1, "a/#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("a/1", "in flight", 1, false, 1)), recv("p", 1), recv("s", 1),
		drop("s"), pause(50*time.Millisecond),
		send("p", publish("a/2", "queued", 1, false, 2)), recv("p", 1),
		step{do: func() { h.deny.Store(true) }},
		open("s", 4, connect("sub", false)), quiet("s")))
	want := []string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
		`s: PUBLISH q1 id=1 a/1 "in flight"`, "p: PUBACK id=2 rc=0x0", "s: CONNACK sp=true rc=0x0"}
	if len(got) != len(want) {
		t.Fatalf("transcript:\n%v\nwant:\n%v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("transcript:\n%v\nwant:\n%v", got, want)
		}
	}
}

// TestQoS2RoutedAtPublish: a QoS 2 message is routed when PUBREC is sent
// (so that nothing acknowledged waits for PUBREL in memory only), once:
// a resend before PUBREL is not routed again.
func TestQoS2RoutedAtPublish(t *testing.T) {
	check(t, engine.Options{}, steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "q2/#", 0)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("q2/1", "m", 2, false, 5)), recv("p", 1), recv("s", 1),
		send("p", publish("q2/1", "m", 2, false, 5, func(p *mw.Packet) { p.Dup = true })), recv("p", 1), quiet("s"),
		send("p", ack(mw.PUBREL, 5)), recv("p", 1), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "p: CONNACK sp=false rc=0x0", "p: PUBREC id=5 rc=0x0",
			`s: PUBLISH q0 q2/1 "m"`, "p: PUBREC id=5 rc=0x0", "p: PUBCOMP id=5 rc=0x0"})
}

// TestStuckSubscribersShareOneWait: many subscribers that read nothing
// cost a QoS 1 publisher one FlowWait in all, not one each (they are
// stalled together).
func TestStuckSubscribersShareOneWait(t *testing.T) {
	addr, _ := startEngine(t, engine.Options{MaxQueued: 5, MaxInflight: 1, FlowWait: time.Second})
	for i := range 8 {
		idleConnsV(t, addr, "stuck"+string(rune('a'+i)), "st/#") // never read nor acknowledge
	}
	pub := idleConnsV(t, addr, "pub", "")
	r := mw.NewReader(bufio.NewReader(pub), 0)
	r.Version = 4
	start := time.Now()
	var p mw.Packet
	for i := 1; i <= 30; i++ {
		_ = pub.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := pub.Write(mw.AppendPublish(nil, 4, "st/x", []byte("m"), 1, false, uint16(i))); err != nil {
			t.Fatal(err)
		}
		if err := r.Read(&p); err != nil || p.Type != mw.PUBACK {
			t.Fatalf("PUBACK %d: %v", i, err)
		}
	}
	// One second each would be 8 s.
	if d := time.Since(start); d > 4*time.Second {
		t.Fatalf("30 publishes took %v with 8 stuck subscribers: each made the publisher wait", d)
	}
}
