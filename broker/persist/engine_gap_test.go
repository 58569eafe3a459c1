package persist

import (
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// TestDisconnectExpiryPersisted: an MQTT 5 client that changes its
// session expiry in DISCONNECT (3.14.2.2.2) changes what is stored: to 0,
// the session ends and must not come back after a restart.
func TestDisconnectExpiryPersisted(t *testing.T) {
	path := dbPath(t)
	b := startBroker(t, path, nil, nil)
	c := dial(t, b.addr, 5)
	c.connect("dev5", true, 3600)
	c.subscribe("d/#", 1, 0)
	d := &mqttwire.Packet{Type: mqttwire.DISCONNECT}
	d.Props.SessionExpiry = 0
	d.Props.Set(mqttwire.PropSessionExpiry)
	c.send(d)
	c.nc.Close()
	time.Sleep(100 * time.Millisecond)
	if n := b.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions in the engine after DISCONNECT with session expiry 0", n)
	}
	b.stop()
	b = startBroker(t, path, nil, nil)
	if n := b.srv.Sessions(); n != 0 {
		t.Fatalf("%d sessions restored: the engine ended the session without DeleteSession", n)
	}
}

// TestQueuedQoSAfterRestart: a QoS 2 message queued for a QoS 1
// subscription is delivered at QoS 1 (the minimum, MQTT-3.8.4-8), also
// after a restart. SaveQueued gets the message, not the delivery's QoS,
// and RestoreSession queues it at the message's QoS.
func TestQueuedQoSAfterRestart(t *testing.T) {
	path := dbPath(t)
	b := startBroker(t, path, nil, nil)
	c := dial(t, b.addr, 4)
	c.connect("dev1", false, 0)
	c.subscribe("q/#", 1, 0)
	c.disconnect()
	pub := dial(t, b.addr, 4)
	pub.connect("pub", true, 0)
	pub.send(&mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 2, ID: 1, Topic: []byte("q/2"), Payload: []byte("x")})
	pub.expect(mqttwire.PUBREC)
	pub.send(&mqttwire.Packet{Type: mqttwire.PUBREL, ID: 1})
	pub.expect(mqttwire.PUBCOMP)
	b.stop()
	b = startBroker(t, path, nil, nil)
	c = dial(t, b.addr, 4)
	c.connect("dev1", false, 0)
	if p := c.expect(mqttwire.PUBLISH); p.QoS != 1 {
		t.Fatalf("delivered at QoS %d to a QoS 1 subscription after the restart", p.QoS)
	}
}

// TestSessionExpiryAcrossRestart: a session's expiry runs from when its
// client disconnected, also while the broker is stopped: one whose
// interval has passed by the restart is gone (with what it was owed), one
// whose interval has not is restored.
func TestSessionExpiryAcrossRestart(t *testing.T) {
	path := dbPath(t)
	b := startBroker(t, path, nil, nil)
	for _, c := range []struct {
		id     string
		expiry uint32
	}{{"short", 1}, {"long", 3600}} {
		cl := dial(t, b.addr, 5)
		cl.connect(c.id, true, c.expiry)
		cl.subscribe("x/#", 1, 0)
		cl.disconnect()
	}
	time.Sleep(100 * time.Millisecond)
	b.stop()
	time.Sleep(1200 * time.Millisecond) // "short"'s second passes while stopped
	b = startBroker(t, path, nil, nil)
	defer b.stop()
	if n := b.srv.Sessions(); n != 1 {
		t.Fatalf("%d sessions restored, want 1 (the one whose expiry has not passed)", n)
	}
	c := dial(t, b.addr, 5)
	if !c.connect("long", false, 3600) {
		t.Fatal("the session with an hour left was not restored")
	}
}

// TestQoS2ResendAfterRestartRoutedOnce: a persistent publisher that got
// PUBREC for a QoS 2 message and resends it (DUP, same id) after the
// broker restarted, as it must when it is not sure of the PUBREC, does
// not make it delivered twice: the received id is kept across restarts.
func TestQoS2ResendAfterRestartRoutedOnce(t *testing.T) {
	path := dbPath(t)
	b := startBroker(t, path, nil, nil)
	sub := dial(t, b.addr, 4)
	sub.connect("sub", false, 0)
	sub.subscribe("q2/#", 1, 0)
	sub.disconnect()
	pub := dial(t, b.addr, 4)
	pub.connect("pub", false, 0)
	pub.send(&mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 2, ID: 7, Topic: []byte("q2/x"), Payload: []byte("once")})
	pub.expect(mqttwire.PUBREC)
	b.stop()
	b = startBroker(t, path, nil, nil)
	defer b.stop()
	pub = dial(t, b.addr, 4)
	pub.connect("pub", false, 0)
	pub.send(&mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 2, ID: 7, Dup: true, Topic: []byte("q2/x"), Payload: []byte("once")})
	pub.expect(mqttwire.PUBREC)
	pub.send(&mqttwire.Packet{Type: mqttwire.PUBREL, ID: 7})
	pub.expect(mqttwire.PUBCOMP)
	sub = dial(t, b.addr, 4)
	sub.connect("sub", false, 0)
	p := sub.expect(mqttwire.PUBLISH)
	sub.send(&mqttwire.Packet{Type: mqttwire.PUBACK, ID: p.ID})
	if again, err := sub.tryRead(500 * time.Millisecond); err == nil && again.Type == mqttwire.PUBLISH {
		t.Fatalf("delivered twice: %q then %q", p.Payload, again.Payload)
	}
}
