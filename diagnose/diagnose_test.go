package diagnose_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/diagnose"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// Listeners of the shared config.
const (
	lMTLS  = iota // mutual TLS, identity, ACL
	lPass         // one-way TLS, passwords, ACL
	lTLS13        // TLS 1.3 only, anonymous
	lPlain        // plain, anonymous
	lWSS          // websockets over mutual TLS, identity, ACL
	lWS           // websockets, plain, anonymous
	nL
)

type env struct {
	dir, pki, other string
	passwd, acl     string
}

func setup(t *testing.T) *env {
	// The broker certificate names 127.0.0.1 only: dialling localhost is a name mismatch.
	fx := brokertest.NewFixture(t, brokertest.FixtureOptions{
		Hosts: []string{"127.0.0.1"}, Clients: []string{"alice", "bob"}, Expired: "old", OtherClients: []string{"mallory"},
		Passwords: map[string]string{"alice": "alice-pw"}, ACL: "user alice\ntopic readwrite alice/#\n",
	})
	return &env{dir: fx.Dir, pki: fx.PKI, other: fx.Other, passwd: fx.Passwd, acl: fx.ACL}
}

func (e *env) config(ports []int) *confgen.Config {
	c := &confgen.Config{}
	c.Set("per_listener_settings", "true")
	tl := func(port int) *confgen.Listener {
		l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
		l.Set("cafile", filepath.Join(e.pki, "ca.crt"))
		l.Set("certfile", filepath.Join(e.pki, "server.crt"))
		l.Set("keyfile", filepath.Join(e.pki, "server.key"))
		return l
	}
	l := tl(ports[lMTLS])
	l.Set("require_certificate", "true")
	l.Set("use_identity_as_username", "true")
	l.Set("acl_file", e.acl)
	c.Listener = append(c.Listener, l)
	l = tl(ports[lPass])
	l.Set("password_file", e.passwd)
	l.Set("acl_file", e.acl)
	c.Listener = append(c.Listener, l)
	l = tl(ports[lTLS13])
	l.Set("tls_version", "tlsv1.3")
	l.Set("allow_anonymous", "true")
	c.Listener = append(c.Listener, l)
	l = &confgen.Listener{Port: ports[lPlain], Bind: "127.0.0.1"}
	l.Set("allow_anonymous", "true")
	c.Listener = append(c.Listener, l)
	l = tl(ports[lWSS])
	l.Set("protocol", "websockets")
	l.Set("require_certificate", "true")
	l.Set("use_identity_as_username", "true")
	l.Set("acl_file", e.acl)
	c.Listener = append(c.Listener, l)
	l = &confgen.Listener{Port: ports[lWS], Bind: "127.0.0.1"}
	l.Set("protocol", "websockets")
	l.Set("allow_anonymous", "true")
	l.Set(confgen.ExtPrefix+"http_origin", "https://app.test") // serve only: a comment to mosquitto
	c.Listener = append(c.Listener, l)
	return c
}

type checkCase struct {
	name     string
	listener int
	host     string // default 127.0.0.1
	scheme   string // default mqtts
	client   string // alice, bob, old, mallory (other CA), "": none
	key      string // key of another client
	user, pw string
	tlsVer   string
	topic    string
	fromPage string
	want     string // problem code; "" = OK
	mosq     string // mosquitto's, where it differs ("-": OK)
}

func (e *env) options(c checkCase, port int) diagnose.Options {
	host, scheme := c.host, c.scheme
	if host == "" {
		host = "127.0.0.1"
	}
	if scheme == "" {
		scheme = "mqtts"
	}
	path := ""
	if strings.HasPrefix(scheme, "ws") {
		path = "/mqtt"
	}
	o := diagnose.Options{URL: fmt.Sprintf("%s://%s:%d%s", scheme, host, port, path), CAFile: filepath.Join(e.pki, "ca.crt"),
		Username: c.user, TLSVersion: c.tlsVer, Topic: c.topic, PKIDir: e.pki, Timeout: 2 * time.Second, FromPage: c.fromPage}
	if c.pw != "" {
		o.Password = []byte(c.pw)
	}
	if c.client != "" {
		dir := e.pki
		if c.client == "mallory" {
			dir = e.other
		}
		o.CertFile = filepath.Join(dir, "clients", c.client+".crt")
		key := c.client
		if c.key != "" {
			key = c.key
		}
		o.KeyFile = filepath.Join(dir, "clients", key+".key")
	}
	return o
}

func cases() []checkCase {
	return []checkCase{
		{name: "everything works (mutual TLS)", listener: lMTLS, client: "alice", topic: "alice/check"},
		{name: "everything works (password)", listener: lPass, user: "alice", pw: "alice-pw", topic: "alice/check"},
		{name: "name mismatch", listener: lMTLS, host: "localhost", client: "alice", topic: "alice/check", want: "name-mismatch"},
		{name: "client certificate required", listener: lMTLS, want: "client-cert-required"},
		{name: "client CA not trusted", listener: lMTLS, client: "mallory", want: "unknown-client-ca"},
		{name: "expired client certificate", listener: lMTLS, client: "old", want: "expired"},
		{name: "key does not match", listener: lMTLS, client: "alice", key: "bob", want: "key-mismatch"},
		{name: "TLS version refused", listener: lTLS13, tlsVer: "1.2", want: "tls-version"},
		{name: "bad password", listener: lPass, user: "alice", pw: "wrong", want: "not-authorised"},
		{name: "anonymous refused", listener: lPass, want: "not-authorised"},
		{name: "not authorised for the topic", listener: lMTLS, client: "alice", topic: "ops/x", want: "not-delivered"},
		{name: "plain MQTT to a TLS port", listener: lPass, scheme: "mqtt", want: "plain-on-tls"},
		{name: "TLS to a plain port", listener: lPlain, want: "tls-on-plain"},
		{name: "everything works (wss, mutual TLS)", listener: lWSS, scheme: "wss", client: "alice", topic: "alice/check"},
		{name: "everything works (ws)", listener: lWS, scheme: "ws"},
		{name: "wss needs the client certificate too", listener: lWSS, scheme: "wss", want: "client-cert-required"},
		{name: "ws from a page the listener lists", listener: lWS, scheme: "ws", fromPage: "https://app.test/index.html"},
		{name: "ws from a page the listener lists, port 443", listener: lWS, scheme: "ws", fromPage: "HTTPS://App.Test:443/"},
		{name: "ws from a page of another origin", listener: lWS, scheme: "ws", fromPage: "https://evil.test/", want: "origin-refused", mosq: "-"},
		{name: "ws to a wss port", listener: lWSS, scheme: "ws", want: "ws-on-tls"},
		{name: "ws:// from an https page", listener: lWS, scheme: "ws", host: "mqtt.test", fromPage: "https://app.test/", want: "mixed-content"},
		{name: "mqtts to a websockets port", listener: lWSS, client: "alice", want: "not-mqtt"},
		{name: "wss to an MQTT port", listener: lMTLS, scheme: "wss", client: "alice", want: "not-websocket"},
	}
}

func TestCheckExplainsFailures(t *testing.T) {
	e := setup(t)
	ports := testutil.FreePorts(t, 2*nL) // one call: two calls may hand out the same port
	mp, bp := ports[:nL], ports[nL:]
	testutil.StartMosquitto(t, e.dir, e.config(mp))
	brokertest.Start(t, e.config(bp), nil, broker.Options{})
	for _, tg := range []struct {
		name  string
		ports []int
	}{{"mqttctl", bp}, {"mosquitto", mp}} {
		for _, c := range cases() {
			rep, err := diagnose.Check(context.Background(), e.options(c, tg.ports[c.listener]))
			if err != nil {
				t.Fatalf("%s %s: %v", tg.name, c.name, err)
			}
			got := ""
			if len(rep.Problems) > 0 {
				got = rep.Problems[0].Code
			}
			if tg.name == "mosquitto" && c.mosq != "" {
				c.want = strings.TrimPrefix(c.mosq, "-")
			}
			if got != c.want {
				t.Errorf("%s / %s: first problem %q, want %q: %+v", tg.name, c.name, got, c.want, rep.Problems)
				continue
			}
			if c.want != "" && rep.Problems[0].Fix == "" {
				t.Errorf("%s / %s: no fix given", tg.name, c.name)
			}
			if c.want == "" && (!rep.RoundTrip || (rep.TLS && (!rep.ChainVerified || !rep.NameMatches))) {
				t.Errorf("%s / %s: incomplete success report %+v", tg.name, c.name, rep)
			}
		}
	}
	// The name mismatch names what the certificate has and how to fix it.
	rep, _ := diagnose.Check(context.Background(), e.options(cases()[2], bp[lMTLS]))
	if p := rep.Problems[0]; !strings.Contains(p.Message, "127.0.0.1") || !strings.Contains(p.Fix, "--host localhost") {
		t.Errorf("name mismatch explanation: %+v", p)
	}
}

// TestCheckExplainsExpiredCRL: a broker whose CRL has expired refuses every
// client certificate; check says so, with the fix, instead of blaming the
// client's certificate: from the pki directory's crl.pem when it has one,
// and from mosquitto's "certificate expired" alert for a valid certificate.
func TestCheckExplainsExpiredCRL(t *testing.T) {
	e := setup(t)
	if _, err := (&pki.Dir{Path: e.pki, Now: func() time.Time { return time.Now().Add(-40 * 24 * time.Hour) }}).WriteCRL(0); err != nil {
		t.Fatal(err)
	}
	config := func(port int) *confgen.Config {
		c := &confgen.Config{}
		l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
		l.Set("cafile", filepath.Join(e.pki, "ca.crt"))
		l.Set("certfile", filepath.Join(e.pki, "server.crt"))
		l.Set("keyfile", filepath.Join(e.pki, "server.key"))
		l.Set("require_certificate", "true")
		l.Set("use_identity_as_username", "true")
		l.Set("crlfile", filepath.Join(e.pki, "crl.pem"))
		c.Listener = append(c.Listener, l)
		return c
	}
	twoPorts := testutil.FreePorts(t, 2)
	mp, bp := twoPorts[0], twoPorts[1]
	testutil.StartMosquitto(t, e.dir, config(mp))
	brokertest.Start(t, config(bp), nil, broker.Options{})
	c := checkCase{client: "alice", topic: "alice/check"}
	for _, tt := range []struct {
		name   string
		port   int
		pkiDir string
	}{
		{"mosquitto, the pki directory at hand", mp, e.pki},
		{"mqttctl serve, the pki directory at hand", bp, e.pki},
		{"mosquitto, another pki directory", mp, e.other},
	} {
		o := e.options(c, tt.port)
		o.PKIDir = tt.pkiDir
		// TLS 1.2: the alert comes in the handshake (with 1.3 it comes at
		// the first read, and mosquitto's close sometimes loses it).
		o.TLSVersion = "1.2"
		rep, err := diagnose.Check(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) == 0 || rep.Problems[0].Code != "crl-expired" || !strings.Contains(rep.Problems[0].Fix, "mqttctl pki crl --dir "+tt.pkiDir) {
			t.Errorf("%s: problems %+v, want crl-expired with the fix", tt.name, rep.Problems)
		}
	}
}

// TestCheckExplainsFullListener: a listener at max_connections accepts and
// closes at once (mosquitto and serve alike); check says the listener is
// most likely full instead of "TLS handshake failed: EOF".
func TestCheckExplainsFullListener(t *testing.T) {
	e := setup(t)
	config := func(ports []int) *confgen.Config {
		c := e.config(ports)
		for _, l := range c.Listener {
			l.Set("max_connections", "1")
		}
		return c
	}
	ports := testutil.FreePorts(t, 2*nL) // one call: two calls may hand out the same port
	mp, bp := ports[:nL], ports[nL:]
	testutil.StartMosquitto(t, e.dir, config(mp))
	brokertest.Start(t, config(bp), nil, broker.Options{})
	for _, tg := range []struct {
		name  string
		ports []int
	}{{"mqttctl", bp}, {"mosquitto", mp}} {
		for _, c := range []checkCase{
			{name: "mqtts", listener: lTLS13},
			{name: "mqtt", listener: lPlain, scheme: "mqtt"},
			{name: "ws", listener: lWS, scheme: "ws"},
		} {
			if tg.name == "mosquitto" && c.scheme == "ws" {
				continue // mosquitto 2.0.11 lets a second ws client in past max_connections 1 (seen here)
			}
			// The one slot is taken by a connected client.
			hold := connectedClient(t, c, tg.ports[c.listener], e)
			rep, err := diagnose.Check(context.Background(), e.options(c, tg.ports[c.listener]))
			hold.Close()
			time.Sleep(100 * time.Millisecond) // until the broker has freed the slot
			if err != nil {
				t.Fatal(err)
			}
			if len(rep.Problems) == 0 || rep.Problems[0].Code != "closed-at-once" || !strings.Contains(rep.Problems[0].Message, "max_connections") {
				t.Errorf("%s / %s: problems %+v, want closed-at-once naming max_connections", tg.name, c.name, rep.Problems)
			}
		}
	}
}

// connectedClient connects an MQTT client (CONNACK 0) as c describes.
func connectedClient(t *testing.T, c checkCase, port int, e *env) *testutil.MQTT {
	t.Helper()
	var m *testutil.MQTT
	var err error
	switch c.scheme {
	case "ws":
		m, err = testutil.DialMQTTWS(fmt.Sprintf("ws://127.0.0.1:%d/mqtt", port), nil, 4)
	case "mqtt":
		m, err = testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), nil, 4)
	default:
		caPEM, _ := os.ReadFile(filepath.Join(e.pki, "ca.crt"))
		roots := x509.NewCertPool()
		roots.AppendCertsFromPEM(caPEM)
		m, err = testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}, 4)
	}
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "holder", Clean: true}); err != nil || code != 0 {
		t.Fatalf("holder: %d %v", code, err)
	}
	return m
}

// TestCheckExplainsMissingCRL: mosquitto with two CAs in cafile and a CRL
// from one answers the other CA's client "unknown CA" (OpenSSL: unable to
// get certificate CRL); mosquitto does not name the CAs it trusts, so
// check cannot tell that from an untrusted CA, and says both.
func TestCheckExplainsMissingCRL(t *testing.T) {
	e := setup(t)
	both := filepath.Join(e.dir, "both.crt")
	a, _ := os.ReadFile(filepath.Join(e.pki, "ca.crt"))
	b, _ := os.ReadFile(filepath.Join(e.other, "ca.crt"))
	if err := os.WriteFile(both, append(a, b...), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &confgen.Config{}
	port := testutil.FreePort(t)
	l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
	l.Set("cafile", both)
	l.Set("certfile", filepath.Join(e.pki, "server.crt"))
	l.Set("keyfile", filepath.Join(e.pki, "server.key"))
	l.Set("require_certificate", "true")
	l.Set("use_identity_as_username", "true")
	l.Set("crlfile", filepath.Join(e.pki, "crl.pem"))
	c.Listener = append(c.Listener, l)
	testutil.StartMosquitto(t, e.dir, c)
	o := e.options(checkCase{client: "mallory"}, port)
	o.TLSVersion = "1.2" // the alert comes in the handshake
	rep, err := diagnose.Check(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 || rep.Problems[0].Code != "unknown-client-ca" || !strings.Contains(rep.Problems[0].Message, "crlfile holds no CRL") ||
		!strings.Contains(rep.Problems[0].Fix, "add that CA's CRL") {
		t.Errorf("problems %+v, want unknown-client-ca that also names a missing CRL", rep.Problems)
	}
}

// TestCheckSameNameOtherCA: --cafile holds a CA with the broker's issuer's
// name but another key (every mqttctl CA is "CN=mqttctl Root CA"): check
// says "a different CA with the same name" with both key ids, and stops
// before CONNECT with or without a password (issue 22: without one it
// connected and published first).
func TestCheckSameNameOtherCA(t *testing.T) {
	e := setup(t)
	same := filepath.Join(t.TempDir(), "same")
	if _, err := (&pki.Dir{Path: same}).Init(pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	load := func(path string) *x509.Certificate {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		cs, err := pki.ParseCerts(data, path)
		if err != nil {
			t.Fatal(err)
		}
		return cs[0]
	}
	ours, theirs := load(filepath.Join(same, "ca.crt")), load(filepath.Join(e.pki, "ca.crt"))
	if ours.Subject.String() != theirs.Subject.String() {
		t.Fatalf("the two CAs should share a name: %s, %s", ours.Subject, theirs.Subject)
	}
	id := func(b []byte) string { return strings.ToUpper(strings.ReplaceAll(fmt.Sprintf("% x", b), " ", ":")) }
	ports := testutil.FreePorts(t, nL)
	brokertest.Start(t, e.config(ports), nil, broker.Options{})
	for _, c := range []checkCase{
		{name: "with a password", listener: lPass, user: "alice", pw: "alice-pw", topic: "alice/check"},
		{name: "without a password", listener: lTLS13},
	} {
		o := e.options(c, ports[c.listener])
		o.CAFile = filepath.Join(same, "ca.crt")
		rep, err := diagnose.Check(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) == 0 {
			t.Fatalf("%s: no problem reported: %+v", c.name, rep)
		}
		p := rep.Problems[0]
		for _, want := range []string{"a different CA with the same name", id(ours.SubjectKeyId), id(theirs.SubjectKeyId)} {
			if !strings.Contains(p.Message, want) {
				t.Errorf("%s: %q not in %q", c.name, want, p.Message)
			}
		}
		if rep.Connack != nil || rep.RoundTrip {
			t.Errorf("%s: CONNECT sent to an unverified broker (CONNACK %v, round trip %v)", c.name, rep.Connack != nil, rep.RoundTrip)
		}
	}
}
