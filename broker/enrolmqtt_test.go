package broker_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

func csrPEM(t *testing.T, subj pkix.Name, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subj}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func pair(t *testing.T, p, rel string) tls.Certificate {
	t.Helper()
	c, err := tls.LoadX509KeyPair(filepath.Join(p, rel+".crt"), filepath.Join(p, rel+".key"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func withKey(chain []*x509.Certificate, key crypto.Signer) tls.Certificate {
	c := tls.Certificate{PrivateKey: key, Leaf: chain[0]}
	for _, x := range chain {
		c.Certificate = append(c.Certificate, x.Raw)
	}
	return c
}

type enrolFixture struct {
	dir    *pki.Dir
	ca     *x509.CertPool
	port   int // renew_pki and provision_by_claim
	plain  int // an mTLS listener without them
	log    *testutil.SyncBuffer
	client tls.Certificate // sensor-1
}

func newEnrolFixture(t *testing.T, acl string) *enrolFixture {
	t.Helper()
	return newEnrolFixtureWith(t, acl, "")
}

// newEnrolFixtureWith is newEnrolFixture with more lines in the enrolling
// listener.
func newEnrolFixtureWith(t *testing.T, acl, extra string) *enrolFixture {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	d := &pki.Dir{Path: p}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"sensor-1", "sensor-2"}}); err != nil {
		t.Fatal(err)
	}
	ca := x509.NewCertPool()
	caPEM, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	ca.AppendCertsFromPEM(caPEM)
	ports := testutil.FreePorts(t, 2)
	listener := func(port int) string {
		return fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
			port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"))
	}
	conf := "allow_anonymous false\n"
	if acl != "" {
		aclFile := filepath.Join(dir, "acl")
		if err := os.WriteFile(aclFile, []byte(acl), 0o600); err != nil {
			t.Fatal(err)
		}
		conf += "acl_file " + aclFile + "\n"
	}
	conf += listener(ports[0]) + "# mqttctl: renew_pki " + p + "\n# mqttctl: provision_by_claim on\n" + extra + listener(ports[1])
	_, log := start(t, conf, 5*time.Second)
	t.Cleanup(func() {
		if t.Failed() {
			t.Log(log.String())
		}
	})
	return &enrolFixture{dir: d, ca: ca, port: ports[0], plain: ports[1], log: log, client: pair(t, p, "clients/sensor-1")}
}

// TestRenewOverMQTT: a client renews its certificate on its connection
// ($mqttctl/renew, an MQTT v5 request), gets the chain on its response
// topic with the correlation data, and connects with it; the renewal is
// in the index and the log says how it was authorised. It cannot renew
// another name, a replaced or revoked certificate cannot renew, a client
// that subscribed to every reply topic sees nothing of another's answer,
// and a request that cannot be answered is refused in its PUBACK.
func TestRenewOverMQTT(t *testing.T) {
	f := newEnrolFixture(t, "")
	dev, err := dialV5(t, f.port, f.ca, f.client)
	if err != nil {
		t.Fatal(err)
	}
	spy, err := dialV5(t, f.port, f.ca, pair(t, f.dir.Path, "clients/sensor-2"))
	if err != nil {
		t.Fatal(err)
	}
	if code := spy.subscribe(broker.ReplyPrefix + "#"); code > 2 {
		t.Fatalf("subscribe to every reply topic: %#x", code)
	}
	if code := spy.subscribe(broker.ReplyPrefix + "sensor-1"); code > 2 {
		t.Fatalf("subscribe to sensor-1's reply topic: %#x", code)
	}
	key := newKey(t)
	subj := f.client.Leaf.Subject
	subj.Names = nil
	chain, refusal := dev.request(broker.RenewTopic, broker.ReplyPrefix+"sensor-1", csrPEM(t, subj, key))
	if refusal != "" {
		t.Fatalf("renewal refused: %s", refusal)
	}
	if chain[0].Subject.CommonName != "sensor-1" || pki.FormatSerial(chain[0]) == pki.FormatSerial(f.client.Leaf) {
		t.Fatalf("renewed: %s serial %s", chain[0].Subject, pki.FormatSerial(chain[0]))
	}
	if !spy.quiet(500 * time.Millisecond) {
		t.Fatal("another client read the answer")
	}
	if _, err := dialV5(t, f.port, f.ca, withKey(chain, key)); err != nil {
		t.Fatalf("the renewed certificate does not connect: %v", err)
	}
	idx, err := pki.LoadIndex(f.dir.Path)
	if err != nil {
		t.Fatal(err)
	}
	if e := idx.Certificates; !strings.Contains(fmt.Sprint(e), pki.FormatSerial(chain[0])) {
		t.Fatalf("the renewed certificate is not in the index")
	}
	if log := f.log.String(); !strings.Contains(log, "issued over MQTT") || !strings.Contains(log, "authorised_by=current-certificate") {
		t.Fatalf("the log does not say how the renewal was authorised:\n%s", log)
	}

	// The replaced certificate, still connected, cannot renew again; the
	// new one cannot renew as another name.
	if _, refusal := dev.request(broker.RenewTopic, broker.ReplyPrefix+"sensor-1/b", csrPEM(t, subj, newKey(t))); !strings.Contains(refusal, "replaced") {
		t.Fatalf("a replaced certificate renewed: %q", refusal)
	}
	renewed, err := dialV5(t, f.port, f.ca, withKey(chain, key))
	if err != nil {
		t.Fatal(err)
	}
	other := subj
	other.CommonName = "sensor-2"
	if _, refusal := renewed.request(broker.RenewTopic, broker.ReplyPrefix+"x", csrPEM(t, other, newKey(t))); !strings.Contains(refusal, "is not the certificate's") {
		t.Fatalf("renewed as another name: %q", refusal)
	}
	// Unanswerable requests: no subscription, a response topic outside
	// the reply namespace.
	if ack := renewed.publish(broker.RenewTopic, csrPEM(t, subj, key), requestProps(broker.ReplyPrefix+"nobody", nil)); ack.Reason != 0x83 || !strings.Contains(string(ack.Props.ReasonString), "subscribe to the response topic") {
		t.Fatalf("a request without a subscription: %#x %q", byte(ack.Reason), ack.Props.ReasonString)
	}
	if renewed.subscribe("sensors/sensor-1") > 2 {
		t.Fatal("subscribe")
	}
	if ack := renewed.publish(broker.RenewTopic, csrPEM(t, subj, key), requestProps("sensors/sensor-1", nil)); ack.Reason != 0x83 {
		t.Fatalf("a response topic outside %s: %#x", broker.ReplyPrefix, byte(ack.Reason))
	}
	// Revoked: refused, and so says the answer.
	if _, _, err := f.dir.Revoke(pki.RevokeOptions{Name: "sensor-1"}); err != nil {
		t.Fatal(err)
	}
	if _, refusal := renewed.request(broker.RenewTopic, broker.ReplyPrefix+"sensor-1/c", csrPEM(t, subj, newKey(t))); !strings.Contains(refusal, "revoked") {
		t.Fatalf("a revoked certificate renewed: %q", refusal)
	}
	// The listener without renew_pki: the namespace is the broker's own.
	plain, err := dialV5(t, f.plain, f.ca, pair(t, f.dir.Path, "clients/sensor-2"))
	if err != nil {
		t.Fatal(err)
	}
	if ack := plain.publish(broker.RenewTopic, csrPEM(t, subj, key), requestProps(broker.ReplyPrefix+"x", nil)); ack.Reason != 0x87 {
		t.Fatalf("a request on a listener without renew_pki: %#x", byte(ack.Reason))
	}
}

// TestProvisionByClaim: a claim certificate provisions devices (with a
// device's one-time token; alone for a name under its prefix) that then
// connect with their own certificates; it publishes and subscribes to
// nothing else whatever the ACL file grants; a token is used once; a
// second client of the same claim does not see the first's answer; a
// listener without provision_by_claim refuses the claim; a claim revoked
// while connected gets nothing more, and the devices it provisioned stay.
// TestClaimPacketLimit: a claim client's packets are bounded by the
// request limit before they are read (told in its CONNACK); a device on
// the same listener keeps max_packet_size.
func TestClaimPacketLimit(t *testing.T) {
	f := newEnrolFixture(t, "pattern readwrite #\n")
	if _, err := f.dir.Issue(pki.IssueOptions{Profile: pki.ProfileClaim, Name: "factory-2", ClaimPrefix: "line2-"}); err != nil {
		t.Fatal(err)
	}
	dev, err := dialV5(t, f.port, f.ca, pair(t, f.dir.Path, "clients/sensor-1"))
	if err != nil {
		t.Fatal(err)
	}
	if got := dev.connack.Props.MaximumPacketSize; got != broker.DefaultMaxPacketSize {
		t.Errorf("a device is told Maximum Packet Size %d, want max_packet_size %d", got, broker.DefaultMaxPacketSize)
	}
	claim, err := dialV5(t, f.port, f.ca, pair(t, f.dir.Path, "claim/factory-2"))
	if err != nil {
		t.Fatal(err)
	}
	if got := claim.connack.Props.MaximumPacketSize; got != broker.MaxClaimPacket {
		t.Fatalf("a claim client is told Maximum Packet Size %d, want %d", got, broker.MaxClaimPacket)
	}
	claim.send(mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 0, Topic: []byte(broker.ProvisionTopic), Payload: bytes.Repeat([]byte("A"), broker.MaxClaimPacket)})
	pk, err := claim.read(5 * time.Second)
	if err != nil || pk.Type != mqttwire.DISCONNECT || pk.Reason != mqttwire.PacketTooLarge {
		t.Fatalf("a claim client's oversized packet: got type %d reason %#x (%v), want DISCONNECT 0x95", pk.Type, byte(pk.Reason), err)
	}
}

func TestProvisionByClaim(t *testing.T) {
	f := newEnrolFixture(t, "pattern readwrite #\n")
	if _, err := f.dir.Issue(pki.IssueOptions{Profile: pki.ProfileClaim, Name: "factory-1", ClaimPrefix: "line1-"}); err != nil {
		t.Fatal(err)
	}
	toks, err := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"dev-7"}})
	if err != nil {
		t.Fatal(err)
	}
	claim := pair(t, f.dir.Path, "claim/factory-1")
	a, err := dialV5(t, f.port, f.ca, claim)
	if err != nil {
		t.Fatal(err)
	}
	b, err := dialV5(t, f.port, f.ca, claim)
	if err != nil {
		t.Fatal(err)
	}
	if code := b.subscribe(broker.ReplyPrefix + "dev-7"); code > 2 {
		t.Fatalf("a claim client may subscribe to a reply topic: %#x", code)
	}
	key := newKey(t)
	req := append([]byte(toks[0].Secret+"\n"), csrPEM(t, pkix.Name{CommonName: "dev-7"}, key)...)
	chain, refusal := a.request(broker.ProvisionTopic, broker.ReplyPrefix+"dev-7", req)
	if refusal != "" {
		t.Fatalf("provisioning with a token: %s", refusal)
	}
	if !b.quiet(500 * time.Millisecond) {
		t.Fatal("the second claim client read the first's answer")
	}
	dev, err := dialV5(t, f.port, f.ca, withKey(chain, key))
	if err != nil {
		t.Fatalf("the provisioned device does not connect: %v", err)
	}
	// Nobody subscribes to sensors/dev-7: mosquitto 2.0.11 and 2.1.2 (and
	// the engine) answer 0x10, no matching subscribers; mochi said 0.
	if ack := dev.publish("sensors/dev-7", []byte("hi"), mqttwire.Properties{}); ack.Reason != mqttwire.Success && ack.Reason != mqttwire.NoMatchingSubscribers {
		t.Fatalf("the provisioned device is not an ordinary client: %#x", byte(ack.Reason))
	}
	if _, refusal := a.request(broker.ProvisionTopic, broker.ReplyPrefix+"dev-7/again", append([]byte(toks[0].Secret+"\n"), csrPEM(t, pkix.Name{CommonName: "dev-7"}, newKey(t))...)); !strings.Contains(refusal, "wrong, used, revoked or expired") {
		t.Fatalf("a token used twice: %q", refusal)
	}
	key2 := newKey(t)
	chain2, refusal := a.request(broker.ProvisionTopic, broker.ReplyPrefix+"line1-0001", csrPEM(t, pkix.Name{CommonName: "line1-0001"}, key2))
	if refusal != "" {
		t.Fatalf("provisioning by prefix: %s", refusal)
	}
	if _, err := dialV5(t, f.port, f.ca, withKey(chain2, key2)); err != nil {
		t.Fatalf("the device provisioned by prefix does not connect: %v", err)
	}
	if _, refusal := a.request(broker.ProvisionTopic, broker.ReplyPrefix+"x", csrPEM(t, pkix.Name{CommonName: "line2-1"}, newKey(t))); !strings.Contains(refusal, "does not start with") {
		t.Fatalf("a name outside the prefix: %q", refusal)
	}
	if log := f.log.String(); !strings.Contains(log, "authorised_by=claim-certificate+token") || !strings.Contains(log, "authorised_by=claim-certificate+prefix") {
		t.Fatalf("the log does not say how the devices were authorised:\n%s", log)
	}

	// Nothing else, whatever the ACL file grants.
	for _, topic := range []string{"sensors/dev-7", broker.RenewTopic, broker.ReplyPrefix + "dev-7", "$mqttctl/other"} {
		if ack := a.publish(topic, []byte("x"), requestProps(broker.ReplyPrefix+"dev-7", nil)); ack.Reason != 0x87 {
			t.Errorf("the claim client published to %s: %#x", topic, byte(ack.Reason))
		}
	}
	for _, filter := range []string{"#", "+/+", "sensors/dev-7", broker.RenewTopic, broker.ProvisionTopic, broker.ReplyPrefix + "#", "$mqttctl/#"} {
		if code := a.subscribe(filter); code != 0x87 {
			t.Errorf("the claim client subscribed to %s: %#x", filter, code)
		}
	}
	if !b.quiet(200 * time.Millisecond) {
		t.Error("a claim client was sent a publish")
	}
	// A device may not provision.
	if ack := dev.publish(broker.ProvisionTopic, csrPEM(t, pkix.Name{CommonName: "line1-9"}, newKey(t)), mqttwire.Properties{}); ack.Reason != 0x87 {
		t.Errorf("a device published a provisioning request: %#x", byte(ack.Reason))
	}
	// A listener without provision_by_claim refuses the claim.
	if _, err := dialV5(t, f.plain, f.ca, claim); err == nil {
		t.Error("a listener without provision_by_claim let the claim in")
	}

	// Revoked while connected: nothing more; the devices stay.
	if _, _, err := f.dir.Revoke(pki.RevokeOptions{Name: "factory-1"}); err != nil {
		t.Fatal(err)
	}
	if _, refusal := a.request(broker.ProvisionTopic, broker.ReplyPrefix+"line1-0002", csrPEM(t, pkix.Name{CommonName: "line1-0002"}, newKey(t))); !strings.Contains(refusal, "revoked") {
		t.Fatalf("a revoked claim provisioned: %q", refusal)
	}
	if _, err := dialV5(t, f.port, f.ca, withKey(chain2, key2)); err != nil {
		t.Fatalf("a device of the revoked claim no longer connects: %v", err)
	}
}

// TestRenewPKIRefusedAtItsLine: a renew_pki directory serve cannot issue
// with, or whose CA the listener does not trust, is refused at its line,
// by config check and at start.
func TestRenewPKIRefusedAtItsLine(t *testing.T) {
	dir := t.TempDir()
	p, other := filepath.Join(dir, "pki"), filepath.Join(dir, "other")
	for _, d := range []string{p, other} {
		if _, err := (&pki.Dir{Path: d}).Init(pki.InitOptions{Hosts: []string{"localhost"}}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct{ renew, want string }{
		{filepath.Join(dir, "nopki"), "cannot"},
		{other, "cafile/capath does not hold"},
	} {
		port := testutil.FreePort(t)
		conf := fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\n# mqttctl: renew_pki %s\n",
			port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), c.renew)
		cf, err := confgen.Parse([]byte(conf), "test.conf")
		if err != nil {
			t.Fatal(err)
		}
		r, ds := cf.Resolve()
		if confgen.HasErrors(ds) {
			t.Fatal(ds)
		}
		errs := broker.Check(r)
		if len(errs) != 1 || !strings.Contains(errs[0].Error(), "test.conf:6: renew_pki") || !strings.Contains(errs[0].Error(), c.want) {
			t.Fatalf("config check of renew_pki %s: %v", c.renew, errs)
		}
		if _, err := broker.New(r, broker.Options{}); err == nil || !strings.Contains(err.Error(), "test.conf:6: renew_pki") {
			t.Fatalf("start with renew_pki %s: %v", c.renew, err)
		}
	}
}

// TestOneRequestAtATime: while a connection's request waits (here for the
// pki directory's lock), a second one is refused at once; the first is
// answered when the lock is free.
func TestOneRequestAtATime(t *testing.T) {
	f := newEnrolFixture(t, "")
	dev, err := dialV5(t, f.port, f.ca, f.client)
	if err != nil {
		t.Fatal(err)
	}
	reply := broker.ReplyPrefix + "sensor-1"
	if code := dev.subscribe(reply); code > 2 {
		t.Fatalf("subscribe: %#x", code)
	}
	subj := f.client.Leaf.Subject
	subj.Names = nil
	unlock, err := fsx.LockDir(f.dir.Path)
	if err != nil {
		t.Fatal(err)
	}
	for i, corr := range []string{"first", "second"} {
		dev.send(mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 1, ID: uint16(100 + i), Topic: []byte(broker.RenewTopic),
			Payload: csrPEM(t, subj, newKey(t)), Props: requestProps(reply, []byte(corr))})
	}
	answer := func() (string, string) {
		pk := dev.expect(mqttwire.PUBLISH)
		return string(pk.Props.CorrelationData), string(pk.Payload)
	}
	if corr, body := answer(); corr != "second" || !strings.Contains(body, "a request is already being answered on this connection") {
		t.Fatalf("while the first waits: %s %q", corr, body)
	}
	unlock()
	if corr, body := answer(); corr != "first" || !strings.Contains(body, "BEGIN CERTIFICATE") {
		t.Fatalf("the first: %s %q", corr, body)
	}
	// A request over MaxEnrolRequest is refused unread.
	dev.send(mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 1, ID: 102, Topic: []byte(broker.RenewTopic),
		Payload: bytes.Repeat([]byte("A"), broker.MaxEnrolRequest+1), Props: requestProps(reply, []byte("big"))})
	if corr, body := answer(); corr != "big" || !strings.Contains(body, fmt.Sprintf("at most %d", broker.MaxEnrolRequest)) {
		t.Fatalf("an oversized request: %s %q", corr, body)
	}
}
