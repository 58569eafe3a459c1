package broker_test

// The differential test: one pki, password file, ACL and config, run by the
// real mosquitto and by the bundled broker; every client case must get the
// same decision and codes from both.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

type fixture struct {
	dir, pki, other string
	passwd, acl     string
	roots           *x509.CertPool
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fx := brokertest.NewFixture(t, brokertest.FixtureOptions{
		Hosts: []string{"localhost", "127.0.0.1"}, Clients: []string{"alice", "admin"}, Expired: "expired", Future: "future",
		OtherClients: []string{"mallory"}, Passwords: map[string]string{"alice": "alice-pw", "admin": "admin-pw"},
		ACL: "user alice\ntopic readwrite alice/#\ntopic read shared/#\ntopic write $SYS/broker/connection/alice-site/state\n\nuser admin\ntopic readwrite #\n\n" +
			"user CN=alice,OU=MQTT Clients,O=mqttctl\ntopic readwrite subject/#\n",
	})
	f := &fixture{dir: fx.Dir, pki: fx.PKI, other: fx.Other, passwd: fx.Passwd, acl: fx.ACL}
	writeNoCNClient(t, f.pki)
	ca, err := os.ReadFile(filepath.Join(f.pki, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	f.roots = x509.NewCertPool()
	f.roots.AppendCertsFromPEM(ca)
	return f
}

// writeNoCNClient issues clients/nocn.crt, a client certificate from the
// CA whose subject has no CN (other tools make such certificates; mqttctl
// does not).
func writeNoCNClient(t *testing.T, dir string) {
	t.Helper()
	ca, caKey := readCA(t, dir)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(4242), Subject: pkix.Name{Organization: []string{"No CN Inc"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, key.Public(), caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	os.WriteFile(filepath.Join(dir, "clients", "nocn.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	os.WriteFile(filepath.Join(dir, "clients", "nocn.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
}

// Listener roles, in config order.
const (
	lMTLS     = iota // mutual TLS, use_identity_as_username, ACL
	lPasswd          // one-way TLS, password_file, ACL
	lAnon            // one-way TLS 1.3 only, anonymous allowed
	lIdentity        // TLS, use_identity_as_username without require_certificate
	lSubject         // mutual TLS, use_subject_as_username, ACL
	nListeners
)

// config builds the shared config for the given ports.
func (f *fixture) config(ports []int) *confgen.Config {
	p := func(n string) string { return filepath.Join(f.pki, n) }
	c := &confgen.Config{}
	c.Set("per_listener_settings", "true")
	c.Set("persistence", "false")
	tlsL := func(port int) *confgen.Listener {
		l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
		l.Set("cafile", p("ca.crt"))
		l.Set("certfile", p("server.crt"))
		l.Set("keyfile", p("server.key"))
		return l
	}
	l := tlsL(ports[lMTLS])
	l.Set("require_certificate", "true")
	l.Set("use_identity_as_username", "true")
	l.Set("allow_anonymous", "false")
	l.Set("acl_file", f.acl)
	c.Listener = append(c.Listener, l)
	l = tlsL(ports[lPasswd])
	l.Set("allow_anonymous", "false")
	l.Set("password_file", f.passwd)
	l.Set("acl_file", f.acl)
	c.Listener = append(c.Listener, l)
	l = tlsL(ports[lAnon])
	l.Set("tls_version", "tlsv1.3")
	l.Set("allow_anonymous", "true")
	c.Listener = append(c.Listener, l)
	l = tlsL(ports[lIdentity])
	l.Set("use_identity_as_username", "true")
	l.Set("allow_anonymous", "false")
	c.Listener = append(c.Listener, l)
	l = tlsL(ports[lSubject])
	l.Set("require_certificate", "true")
	l.Set("use_subject_as_username", "true")
	l.Set("allow_anonymous", "false")
	l.Set("acl_file", f.acl)
	c.Listener = append(c.Listener, l)
	return c
}

// target is one broker under test.
type target struct {
	name  string
	ports []int
}

func (f *fixture) tlsConf(client string, otherCA bool, maxVersion uint16) *tls.Config {
	conf := &tls.Config{RootCAs: f.roots, ServerName: "localhost", MaxVersion: maxVersion}
	dir := f.pki
	if otherCA {
		dir = f.other
	}
	var certFile, keyFile string
	switch client {
	case "":
		return conf
	case "server":
		certFile, keyFile = filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	default:
		certFile, keyFile = filepath.Join(dir, "clients", client+".crt"), filepath.Join(dir, "clients", client+".key")
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		panic(err)
	}
	conf.Certificates = []tls.Certificate{cert}
	return conf
}

type connectCase struct {
	name     string
	listener int
	cert     string
	otherCA  bool
	maxTLS   uint16
	version  byte
	user, pw *string
}

// connect runs a connect case and describes the outcome.
func (f *fixture) connect(tg target, c connectCase) (string, *testutil.MQTT) {
	v := c.version
	if v == 0 {
		v = 4
	}
	m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", tg.ports[c.listener]), f.tlsConf(c.cert, c.otherCA, c.maxTLS), v)
	if err != nil {
		return "refused in TLS handshake", nil
	}
	code, err := m.Connect(testutil.ConnectOptions{ClientID: "c-" + strings.ReplaceAll(c.name, " ", "-"), Username: c.user, Password: c.pw, Clean: true})
	if err != nil {
		m.Close()
		return "refused in TLS handshake", nil // TLS 1.3 reports a refused certificate at the first read
	}
	if code != 0 {
		m.Close()
		return fmt.Sprintf("CONNACK %d", code), nil
	}
	return "CONNACK 0", m
}

var s = testutil.Str

func connectCases() []connectCase {
	return []connectCase{
		{name: "valid client certificate", listener: lMTLS, cert: "alice"},
		{name: "no client certificate", listener: lMTLS},
		{name: "another CA's certificate", listener: lMTLS, cert: "mallory", otherCA: true},
		{name: "expired certificate", listener: lMTLS, cert: "expired"},
		{name: "not yet valid certificate", listener: lMTLS, cert: "future"},
		{name: "server certificate as client", listener: lMTLS, cert: "server"},
		{name: "client certificate without a CN", listener: lMTLS, cert: "nocn"},
		{name: "client certificate without a CN, v5", listener: lMTLS, cert: "nocn", version: 5},
		{name: "spoofed CONNECT username", listener: lMTLS, cert: "alice", user: s("admin"), pw: s("admin-pw")},
		{name: "right password", listener: lPasswd, user: s("alice"), pw: s("alice-pw")},
		{name: "wrong password", listener: lPasswd, user: s("alice"), pw: s("nope")},
		{name: "wrong password v5", listener: lPasswd, user: s("alice"), pw: s("nope"), version: 5},
		{name: "missing password", listener: lPasswd, user: s("alice")},
		{name: "unknown user", listener: lPasswd, user: s("bob"), pw: s("x")},
		{name: "anonymous refused", listener: lPasswd},
		{name: "anonymous allowed", listener: lAnon},
		{name: "TLS 1.2 client on a TLS 1.3 listener", listener: lAnon, maxTLS: tls.VersionTLS12},
		{name: "identity without a certificate", listener: lIdentity, user: s("alice"), pw: s("alice-pw")},
		{name: "identity without a certificate v5", listener: lIdentity, version: 5},
	}
}

type pubsubCase struct {
	name    string
	as      connectCase // the acting client
	action  string      // publish or subscribe
	topic   string
	qos     byte
	retain  bool
	version byte
}

func pubsubCases() []pubsubCase {
	alice := connectCase{name: "alice", listener: lPasswd, user: s("alice"), pw: s("alice-pw")}
	aliceCert := connectCase{name: "alice-cert", listener: lMTLS, cert: "alice", user: s("admin"), pw: s("admin-pw")}
	aliceSubject := connectCase{name: "alice-subject", listener: lSubject, cert: "alice"}
	anon := connectCase{name: "anon", listener: lAnon}
	admin := connectCase{name: "admin", listener: lPasswd, user: s("admin"), pw: s("admin-pw")}
	return []pubsubCase{
		{name: "ACL-allowed publish", as: alice, action: "publish", topic: "alice/t", qos: 1},
		{name: "ACL-denied publish v3.1.1", as: alice, action: "publish", topic: "ops/t", qos: 1},
		{name: "ACL-denied publish v5", as: alice, action: "publish", topic: "ops/t", qos: 1, version: 5},
		{name: "ACL-denied publish QoS 0", as: alice, action: "publish", topic: "ops/t0", qos: 0},
		{name: "publish to $SYS", as: alice, action: "publish", topic: "$SYS/broker/fake", qos: 1},
		// A bridge's notification (issue 22): mosquitto lets any client
		// publish $SYS/broker/connection/+/state, subject to the ACL, and
		// refuses every other $SYS topic; a '$sys' topic is not $SYS.
		{name: "bridge state notification, no ACL", as: anon, action: "publish", topic: "$SYS/broker/connection/site1/state", qos: 1},
		{name: "bridge state notification, retained", as: anon, action: "publish", topic: "$SYS/broker/connection/site2/state", qos: 1, retain: true},
		{name: "bridge state notification, QoS 0", as: anon, action: "publish", topic: "$SYS/broker/connection/site3/state", qos: 0},
		{name: "bridge state notification, v5", as: anon, action: "publish", topic: "$SYS/broker/connection/site4/state", qos: 1, version: 5},
		{name: "bridge state notification, ACL without it", as: alice, action: "publish", topic: "$SYS/broker/connection/alice/state", qos: 1},
		{name: "bridge state notification, ACL grants it", as: alice, action: "publish", topic: "$SYS/broker/connection/alice-site/state", qos: 1},
		{name: "bridge state notification, ACL #", as: admin, action: "publish", topic: "$SYS/broker/connection/site5/state", qos: 1},
		{name: "other $SYS connection topic", as: anon, action: "publish", topic: "$SYS/broker/connection/site1/other", qos: 1},
		{name: "lower-case $sys topic", as: anon, action: "publish", topic: "$sys/broker/fake", qos: 1},
		{name: "identity ACL ignores spoofed username", as: aliceCert, action: "publish", topic: "ops/spoof", qos: 1},
		{name: "identity ACL allows the CN's topics", as: aliceCert, action: "publish", topic: "alice/cert", qos: 1},
		{name: "subject as username: allowed topic", as: aliceSubject, action: "publish", topic: "subject/x", qos: 1},
		{name: "subject as username: CN's topic denied", as: aliceSubject, action: "publish", topic: "alice/x", qos: 1},
		{name: "ACL-allowed subscribe", as: alice, action: "subscribe", topic: "shared/news", qos: 1},
		{name: "ACL-denied subscribe", as: alice, action: "subscribe", topic: "ops/secret", qos: 1},
		{name: "ACL-denied wildcard subscribe", as: alice, action: "subscribe", topic: "ops/#", qos: 1},
	}
}

// observer is anonymous on the listener without an ACL, subscribed to
// everything ('#' and, for a topic starting with '$', which '#' does not
// match, that topic).
func (f *fixture) observer(t *testing.T, tg target, dollar string) *testutil.MQTT {
	t.Helper()
	out, m := f.connect(tg, connectCase{name: "observer", listener: lAnon})
	if m == nil {
		t.Fatalf("%s: observer: %s", tg.name, out)
	}
	if code, err := m.Subscribe("#", 1); err != nil || code != 1 {
		t.Fatalf("%s: observer subscribe: %d %v", tg.name, code, err)
	}
	if strings.HasPrefix(dollar, "$") {
		if code, err := m.Subscribe(dollar, 1); err != nil || code != 1 {
			t.Fatalf("%s: observer subscribe %s: %d %v", tg.name, dollar, code, err)
		}
	}
	return m
}

func (f *fixture) pubsub(t *testing.T, tg target, c pubsubCase, i int) string {
	c.as.version = c.version
	c.as.name = fmt.Sprintf("%s-%d", c.as.name, i)
	out, m := f.connect(tg, c.as)
	if m == nil {
		return "connect: " + out
	}
	defer m.Disconnect()
	obs := f.observer(t, tg, c.topic)
	defer obs.Disconnect()
	payload := fmt.Sprintf("%s-%d", tg.name, i)
	switch c.action {
	case "publish":
		code, err := m.Publish(c.topic, []byte(payload), c.qos, c.retain)
		if err != nil {
			return "publish error: " + err.Error()
		}
		got, err := obs.Receive(700 * time.Millisecond)
		delivered := err == nil && got.Payload == payload
		out := fmt.Sprintf("ack %d, delivered %v, still connected %v", code, delivered, m.Alive())
		if c.retain {
			late := f.observer(t, tg, c.topic)
			defer late.Disconnect()
			got, err := late.Receive(700 * time.Millisecond)
			out += fmt.Sprintf(", retained %v", err == nil && got.Payload == payload)
		}
		return out
	default:
		code, err := m.Subscribe(c.topic, c.qos)
		if err != nil {
			return "subscribe error: " + err.Error()
		}
		pubTopic := strings.ReplaceAll(strings.ReplaceAll(c.topic, "#", "x"), "+", "y")
		if _, err := obs.Publish(pubTopic, []byte(payload), 1, false); err != nil {
			return "observer publish: " + err.Error()
		}
		got, err := m.Receive(700 * time.Millisecond)
		delivered := err == nil && got.Payload == payload
		return fmt.Sprintf("suback %d, delivered %v", code, delivered)
	}
}

func TestDifferentialAgainstMosquitto(t *testing.T) {
	f := newFixture(t)
	// run runs every case against one broker and describes each outcome.
	run := func(t *testing.T, tg target) (names, got []string) {
		for _, c := range connectCases() {
			out, m := f.connect(tg, c)
			if m != nil {
				m.Disconnect()
			}
			names, got = append(names, c.name), append(got, out)
		}
		for i, c := range pubsubCases() {
			names, got = append(names, c.name), append(got, f.pubsub(t, tg, c, i))
		}
		return names, got
	}
	// serve runs the cases once; each mosquitto version (at the same time:
	// the cases mostly wait) is compared with that.
	bp := testutil.FreePorts(t, nListeners)
	var blog testutil.SyncBuffer
	brokertest.Start(t, f.config(bp), &blog, broker.Options{})
	names, served := run(t, target{"mqttctl", bp})
	testutil.EachMosquittoParallel(t, func(t *testing.T, mq testutil.Mosquitto) {
		mp := testutil.FreePorts(t, nListeners)
		dir := filepath.Join(f.dir, mq.Name()) // its own mosquitto.conf
		if err := os.Mkdir(dir, 0o711); err != nil {
			t.Fatal(err)
		}
		mlog := mq.Start(t, dir, f.config(mp))
		_, got := run(t, target{mq.Name(), mp})
		for i, name := range names {
			t.Logf("%-40s %s: %-40s mqttctl: %s", name, mq.Name(), got[i], served[i])
			if got[i] != served[i] {
				t.Errorf("%s: %s %q, mqttctl %q", name, mq.Name(), got[i], served[i])
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s\nmqttctl log:\n%s", mq.Name(), mlog.String(), blog.String())
		}
		t.Logf("%d cases compared", len(names))
	})
}

// writeCRLAt writes a CRL signed by the CA of pkiDir with the given
// validity, revoking serials.
func writeCRLAt(t *testing.T, pkiDir, path string, thisUpdate, nextUpdate time.Time, serials ...*big.Int) {
	t.Helper()
	ca, caKey := readCA(t, pkiDir)
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: thisUpdate,
		NextUpdate: nextUpdate, RevokedCertificateEntries: entries}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDifferentialRevocation: the CRL cases where OpenSSL refuses clients
// wholesale, run by mosquitto and serve: (a) crlfile has no CRL from the
// issuer of the client's certificate (two CAs in cafile, a CRL from one),
// (b) a CRL whose thisUpdate is in the future, (c) an expired CRL.
func TestDifferentialRevocation(t *testing.T) {
	f := newFixture(t)
	now := time.Now()
	both := filepath.Join(f.dir, "both-cas.crt")
	var cas []byte
	for _, d := range []string{f.pki, f.other} {
		b, err := os.ReadFile(filepath.Join(d, "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		cas = append(cas, b...)
	}
	if err := os.WriteFile(both, cas, 0o644); err != nil {
		t.Fatal(err)
	}
	current, future, expired := filepath.Join(f.dir, "current.crl"), filepath.Join(f.dir, "future.crl"), filepath.Join(f.dir, "expired.crl")
	writeCRLAt(t, f.pki, current, now.Add(-time.Hour), now.Add(24*time.Hour))
	writeCRLAt(t, f.pki, future, now.Add(24*time.Hour), now.Add(48*time.Hour))
	writeCRLAt(t, f.pki, expired, now.Add(-72*time.Hour), now.Add(-24*time.Hour))
	const (
		lTwoCAs = iota
		lFuture
		lExpired
		lCurrent
	)
	config := func(ports []int) *confgen.Config {
		c := &confgen.Config{}
		c.Set("persistence", "false")
		for i, crl := range []string{current, future, expired, current} {
			l := &confgen.Listener{Port: ports[i], Bind: "127.0.0.1"}
			cafile := filepath.Join(f.pki, "ca.crt")
			if i == lTwoCAs {
				cafile = both
			}
			l.Set("cafile", cafile)
			l.Set("certfile", filepath.Join(f.pki, "server.crt"))
			l.Set("keyfile", filepath.Join(f.pki, "server.key"))
			l.Set("require_certificate", "true")
			l.Set("use_identity_as_username", "true")
			l.Set("crlfile", crl)
			c.Listener = append(c.Listener, l)
		}
		return c
	}
	cases := []struct {
		c    connectCase
		want string
	}{
		{connectCase{name: "two CAs, a CRL from one: its client", listener: lTwoCAs, cert: "alice"}, "CONNACK 0"},
		{connectCase{name: "two CAs, a CRL from one: the other CA's client", listener: lTwoCAs, cert: "mallory", otherCA: true}, "refused in TLS handshake"},
		{connectCase{name: "CRL not valid yet (thisUpdate tomorrow)", listener: lFuture, cert: "alice"}, "refused in TLS handshake"},
		{connectCase{name: "expired CRL", listener: lExpired, cert: "alice"}, "refused in TLS handshake"},
		{connectCase{name: "current CRL", listener: lCurrent, cert: "alice"}, "CONNACK 0"},
	}
	testutil.EachMosquitto(t, func(t *testing.T, mq testutil.Mosquitto) {
		mp, bp := testutil.FreePorts(t, 4), testutil.FreePorts(t, 4)
		mlog := mq.Start(t, f.dir, config(mp))
		var blog testutil.SyncBuffer
		brokertest.Start(t, config(bp), &blog, broker.Options{})
		targets := []target{{mq.Name(), mp}, {"mqttctl", bp}}
		for _, tc := range cases {
			var got [2]string
			for i, tg := range targets {
				out, m := f.connect(tg, tc.c)
				if m != nil {
					m.Disconnect()
				}
				got[i] = out
			}
			t.Logf("%-50s %s: %-26s mqttctl: %s", tc.c.name, mq.Name(), got[0], got[1])
			if got[0] != got[1] || got[1] != tc.want {
				t.Errorf("%s: %s %q, mqttctl %q, want %q", tc.c.name, mq.Name(), got[0], got[1], tc.want)
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s\nmqttctl log:\n%s", mq.Name(), mlog.String(), blog.String())
		}
	})
}
