package broker_test

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// TestWillFollowsThePublishRules: a will is sent only where the client
// could publish, as mosquitto checks it against the ACL when it sends it;
// a claim certificate's will, a will into the broker's own $mqttctl/
// namespace and a revoked client's will are never sent; a claim cannot
// take over a device's client id.
func TestWillFollowsThePublishRules(t *testing.T) {
	f := newEnrolFixture(t, "pattern readwrite sensors/%u/#\npattern read sensors/#\npattern read cmd/#\npattern readwrite $mqttctl/#\n")
	if _, err := f.dir.Issue(pki.IssueOptions{Profile: pki.ProfileClaim, Name: "factory-1", ClaimPrefix: "line1-"}); err != nil {
		t.Fatal(err)
	}
	spy, err := dialV5(t, f.port, f.ca, pair(t, f.dir.Path, "clients/sensor-2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, filter := range []string{"cmd/#", "sensors/#", broker.ReplyPrefix + "sensor-2"} {
		if code := spy.subscribe(filter); code > 2 {
			t.Fatalf("subscribe %s: %#x", filter, code)
		}
	}
	// willOf connects with a will to topic and drops the connection
	// without DISCONNECT.
	willOf := func(rel, topic string) {
		t.Helper()
		c, err := dialV5With(t, f.port, f.ca, pair(t, f.dir.Path, rel), willTo(topic, []byte("will of "+rel), 1, true))
		if err != nil {
			t.Fatalf("%s connects with a will to %s: %v", rel, topic, err)
		}
		c.conn.Close()
	}
	got := func() string {
		pk, err := spy.read(time.Second)
		if err != nil {
			return ""
		}
		return string(pk.Topic) + " " + string(pk.Payload)
	}

	willOf("clients/sensor-1", "sensors/sensor-1/status")
	if m := got(); !strings.HasPrefix(m, "sensors/sensor-1/status will of") {
		t.Fatalf("a will the ACL allows was not sent: %q", m)
	}
	for _, c := range []struct{ rel, topic string }{
		{"clients/sensor-1", "cmd/all/reboot"},                 // the ACL file denies it
		{"clients/sensor-1", broker.ReplyPrefix + "sensor-2"},  // the broker's own namespace
		{"claim/factory-1", "sensors/factory-1/x"},             // a claim publishes nothing
		{"claim/factory-1", broker.ReplyPrefix + "line1-0001"}, // nor plants an answer
		{"clients/sensor-1", "$SYS/broker/x"},                  // $SYS
	} {
		willOf(c.rel, c.topic)
		if m := got(); m != "" {
			t.Fatalf("%s's will to %s was sent: %q", c.rel, c.topic, m)
		}
		if !strings.Contains(f.log.String(), "will not sent") {
			t.Fatalf("the dropped will is not logged:\n%s", f.log.String())
		}
	}
	// No retained message was left by a denied retained will.
	late, err := dialV5(t, f.port, f.ca, pair(t, f.dir.Path, "clients/sensor-2"))
	if err != nil {
		t.Fatal(err)
	}
	for _, filter := range []string{"cmd/#", broker.ReplyPrefix + "line1-0001"} {
		if code := late.subscribe(filter); code > 2 {
			t.Fatalf("subscribe %s: %#x", filter, code)
		}
	}
	if !late.quiet(500 * time.Millisecond) {
		t.Fatal("a denied retained will was retained")
	}

	// A device with a persistent session; a claim using its client id is
	// refused and the device stays connected.
	dev, err := dialV5With(t, f.port, f.ca, pair(t, f.dir.Path, "clients/sensor-1"), withSession("line1-0001", false))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dialV5With(t, f.port, f.ca, pair(t, f.dir.Path, "claim/factory-1"), withSession("line1-0001", true)); err == nil || !strings.Contains(err.Error(), "133") {
		t.Fatalf("a claim took over a device's client id: %v", err)
	}
	if !dev.quiet(500 * time.Millisecond) {
		t.Fatal("the device was disconnected by the claim")
	}
}

// TestRevokedClientSendsNoWill: a client disconnected because the CRL now
// revokes its certificate sends no will (it is no longer who it claimed).
func TestRevokedClientSendsNoWill(t *testing.T) {
	d, ca, port, log := startCRLBroker(t, "alice", "bob")
	p := d.Path
	spy, err := dialV5(t, port, ca, pair(t, p, "clients/alice"))
	if err != nil {
		t.Fatal(err)
	}
	if code := spy.subscribe("status/#"); code > 2 {
		t.Fatalf("subscribe: %#x", code)
	}
	bob, err := dialV5With(t, port, ca, pair(t, p, "clients/bob"), willTo("status/bob", []byte("bob's will"), 0, false))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Revoke(pki.RevokeOptions{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(bob.conn) {
		t.Fatal("the revoked client stayed connected")
	}
	if !spy.quiet(time.Second) {
		t.Fatal("a revoked client's will was sent")
	}
	if !strings.Contains(log.String(), "will not sent") {
		t.Fatalf("the dropped will is not logged:\n%s", log.String())
	}
}

// TestRenewDays: renew_days sets the validity of the certificates renewed
// over MQTT; its bound is pki's.
func TestRenewDays(t *testing.T) {
	if confgen.MaxRenewDays != pki.LeafMaxDays {
		t.Fatalf("confgen.MaxRenewDays %d, pki.LeafMaxDays %d", confgen.MaxRenewDays, pki.LeafMaxDays)
	}
	f := newEnrolFixtureWith(t, "", "# mqttctl: renew_days 30\n")
	dev, err := dialV5(t, f.port, f.ca, f.client)
	if err != nil {
		t.Fatal(err)
	}
	subj := f.client.Leaf.Subject
	subj.Names = nil
	chain, refusal := dev.request(broker.RenewTopic, broker.ReplyPrefix+"sensor-1", csrPEM(t, subj, newKey(t)))
	if refusal != "" {
		t.Fatal(refusal)
	}
	if days := chain[0].NotAfter.Sub(chain[0].NotBefore).Hours() / 24; days < 29 || days > 31 {
		t.Fatalf("renewed for %.1f days, want 30", days)
	}
}

// TestDelayedWillCheckedWhenSent: a delayed will goes out when its delay
// or its session ends, whichever is first, with its user properties, and
// only if the client's rules still allow it then: a client revoked during
// the delay sends none (found by the second adversarial run); a client back
// before the delay sends none (MQTT-3.1.3-9); a will topic with a wildcard
// is refused at CONNECT, as mosquitto closes such a connection.
func TestDelayedWillCheckedWhenSent(t *testing.T) {
	d, ca, port, log := startCRLBroker(t, "alice", "bob", "carol", "dave")
	p := d.Path
	spy, err := dialV5(t, port, ca, pair(t, p, "clients/alice"))
	if err != nil {
		t.Fatal(err)
	}
	if code := spy.subscribe("status/#"); code > 2 {
		t.Fatalf("subscribe: %#x", code)
	}
	// withWill connects name with a will to status/NAME after delay, in a
	// session of expiry seconds, and drops the connection.
	withWill := func(name, id string, delay, expiry uint32) {
		t.Helper()
		m, err := dialV5With(t, port, ca, pair(t, p, "clients/"+name), func(pk *mqttwire.Packet) {
			withSession(id, expiry == 0)(pk)
			withSessionExpiry(expiry)(pk)
			willTo("status/"+name, []byte(name+" gone"), 0, false)(pk)
			pk.WillProps.WillDelay = delay
			pk.WillProps.Set(mqttwire.PropWillDelay)
			pk.WillProps.User = []mqttwire.UserProperty{{Key: []byte("k"), Value: []byte(name)}}
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		m.conn.Close()
	}
	next := func(wait time.Duration) (mqttwire.Packet, bool) {
		pk, err := spy.read(wait)
		return pk, err == nil
	}

	withWill("carol", "c-1", 1, 10)
	if pk, ok := next(300 * time.Millisecond); ok {
		t.Fatalf("carol's will came before its 1 s delay: %q", pk.Topic)
	}
	if pk, ok := next(3 * time.Second); !ok || string(pk.Topic) != "status/carol" || len(pk.Props.User) != 1 || string(pk.Props.User[0].Value) != "carol" {
		t.Fatalf("carol's delayed will: %v %q %q", ok, pk.Topic, pk.Props.User)
	}
	withWill("dave", "d-1", 30, 0) // the session ends at once: so does the delay
	if pk, ok := next(2 * time.Second); !ok || string(pk.Topic) != "status/dave" {
		t.Fatalf("dave's will at the end of his session: %v %q", ok, pk.Topic)
	}
	withWill("dave", "d-2", 1, 10)
	back, err := dialV5With(t, port, ca, pair(t, p, "clients/dave"), func(pk *mqttwire.Packet) {
		withSession("d-2", false)(pk)
		withSessionExpiry(10)(pk)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer back.conn.Close()
	if pk, ok := next(2 * time.Second); ok {
		t.Fatalf("a will was sent for a client back before its delay: %q", pk.Topic)
	}
	withWill("bob", "b-1", 2, 10)
	if _, _, err := d.Revoke(pki.RevokeOptions{Name: "bob"}); err != nil {
		t.Fatal(err)
	}
	if pk, ok := next(4 * time.Second); ok {
		t.Fatalf("a client revoked during its will's delay sent it: %q", pk.Topic)
	}
	if !strings.Contains(log.String(), "will not sent") {
		t.Fatalf("the dropped will is not logged:\n%s", log.String())
	}
	if _, err := dialV5With(t, port, ca, pair(t, p, "clients/carol"), willTo("status/#", []byte("x"), 0, false)); err == nil {
		t.Fatal("a will topic with a wildcard was accepted")
	}
}

// startCRLBroker runs serve on a mutual-TLS listener that reads crl.pem
// (rereading it every 100 ms) of a new pki with the client certificates
// names, until the test ends.
func startCRLBroker(t *testing.T, names ...string) (*pki.Dir, *x509.CertPool, int, *testutil.SyncBuffer) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pki")
	d := &pki.Dir{Path: p}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: names}); err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	ca.AppendCertsFromPEM(caPEM)
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ncrlfile %s\n",
		port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), filepath.Join(p, "crl.pem"))), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	log := &testutil.SyncBuffer{}
	brokertest.Start(t, c, log, broker.Options{WatchInterval: 100 * time.Millisecond})
	return d, ca, port, log
}

// TestRenewalsAreRateLimited: a device's renewal requests over MQTT, good
// or refused, count against renewBurst; the next is refused in words.
func TestRenewalsAreRateLimited(t *testing.T) {
	f := newEnrolFixture(t, "")
	dev, err := dialV5(t, f.port, f.ca, f.client)
	if err != nil {
		t.Fatal(err)
	}
	other := pkix.Name{CommonName: "sensor-2"}
	for i := 0; i < 5; i++ {
		if _, refusal := dev.request(broker.RenewTopic, fmt.Sprintf("%ssensor-1/%d", broker.ReplyPrefix, i), csrPEM(t, other, newKey(t))); strings.Contains(refusal, "too many") || refusal == "" {
			t.Fatalf("request %d: %q", i+1, refusal)
		}
	}
	if _, refusal := dev.request(broker.RenewTopic, broker.ReplyPrefix+"sensor-1/6", csrPEM(t, other, newKey(t))); !strings.Contains(refusal, "too many renewals of sensor-1") {
		t.Fatalf("the sixth request: %q", refusal)
	}
}
