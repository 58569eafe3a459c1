package broker_test

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// TestPlantedRetainedAnswerIsDeleted: a retained message published under
// $mqttctl/reply/ while no listener had renew_pki (the ACL file allowed
// it, as it would under mosquitto) is not served as an "answer" once the
// broker restarts with renew_pki on the same persistence: it is deleted
// at start and logged. Without the directive it stays, as in mosquitto.
func TestPlantedRetainedAnswerIsDeleted(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	d := &pki.Dir{Path: p}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"sensor-1", "mallory"}}); err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	ca.AppendCertsFromPEM(caPEM)
	acl := filepath.Join(dir, "acl")
	if err := os.WriteFile(acl, []byte("pattern readwrite $mqttctl/#\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	conf := func(directive string) string {
		return fmt.Sprintf("persistence true\npersistence_location %s/\nallow_anonymous false\nacl_file %s\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n%s",
			filepath.Join(dir, "data"), acl, port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), directive)
	}
	topic := broker.ReplyPrefix + "sensor-1"
	retained := func(c *v5) bool {
		if code := c.subscribe(topic); code > 2 {
			t.Fatalf("subscribe %s: %#x", topic, code)
		}
		return !c.quiet(500 * time.Millisecond)
	}

	b, log0 := start(t, conf(""), 5*time.Second)
	defer func() {
		if t.Failed() {
			t.Log(log0.String())
		}
	}()
	m, err := dialV5(t, port, ca, pair(t, p, "clients/mallory"))
	if err != nil {
		t.Fatal(err)
	}
	m.id++
	m.send(mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 1, Retain: true, ID: m.id, Topic: []byte(topic), Payload: []byte("-----BEGIN CERTIFICATE-----\nplanted")})
	// 0x10: no subscriber yet (as mosquitto answers); it is kept as retained.
	if ack := m.expect(mqttwire.PUBACK); ack.Reason != 0 && ack.Reason != mqttwire.NoMatchingSubscribers {
		t.Fatalf("the ACL file allows the retained publish without renew_pki: PUBACK %#x", byte(ack.Reason))
	}
	m.conn.Close()
	b.Close()

	// Restarted without the directive: the retained message is kept.
	b, _ = start(t, conf(""), 5*time.Second)
	dev, err := dialV5(t, port, ca, pair(t, p, "clients/sensor-1"))
	if err != nil {
		t.Fatal(err)
	}
	if !retained(dev) {
		t.Fatal("without renew_pki the retained message was lost across a restart (mosquitto keeps it)")
	}
	dev.conn.Close()
	b.Close()

	// With renew_pki: deleted at start, logged, and gone for good.
	b, log := start(t, conf("# mqttctl: renew_pki "+p+"\n"), 5*time.Second)
	dev, err = dialV5(t, port, ca, pair(t, p, "clients/sensor-1"))
	if err != nil {
		t.Fatal(err)
	}
	if retained(dev) {
		t.Fatal("a planted retained message under $mqttctl/reply/ reached the device as an answer")
	}
	if !strings.Contains(log.String(), "deleted at start") {
		t.Fatalf("the deletion is not logged:\n%s", log.String())
	}
	dev.conn.Close()
	b.Close()
	b, _ = start(t, conf(""), 5*time.Second)
	defer b.Close()
	dev, err = dialV5(t, port, ca, pair(t, p, "clients/sensor-1"))
	if err != nil {
		t.Fatal(err)
	}
	if retained(dev) {
		t.Fatal("the deleted retained message came back after another restart")
	}
}
