package diagnose_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/diagnose"
	"github.com/mqttctl/mqttctl/internal/testbroker"
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
	fx := testbroker.NewFixture(t, testbroker.FixtureOptions{
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
		{name: "ws:// from an https page", listener: lWS, scheme: "ws", host: "mqtt.test", fromPage: "https://app.test/", want: "mixed-content"},
		{name: "mqtts to a websockets port", listener: lWSS, client: "alice", want: "not-mqtt"},
		{name: "wss to an MQTT port", listener: lMTLS, scheme: "wss", client: "alice", want: "not-websocket"},
	}
}

func TestCheckExplainsFailures(t *testing.T) {
	e := setup(t)
	mp, bp := testutil.FreePorts(t, nL), testutil.FreePorts(t, nL)
	testutil.StartMosquitto(t, e.dir, e.config(mp))
	testbroker.Start(t, e.config(bp), nil, broker.Options{})
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
	mp, bp := testutil.FreePort(t), testutil.FreePort(t)
	testutil.StartMosquitto(t, e.dir, config(mp))
	testbroker.Start(t, config(bp), nil, broker.Options{})
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
		rep, err := diagnose.Check(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Problems) == 0 || rep.Problems[0].Code != "crl-expired" || !strings.Contains(rep.Problems[0].Fix, "mqttctl pki crl --dir "+tt.pkiDir) {
			t.Errorf("%s: problems %+v, want crl-expired with the fix", tt.name, rep.Problems)
		}
	}
}
