package broker_test

// The websockets differential: the fixture of diff_test.go behind ws and
// wss listeners (password, mutual TLS), run by the real mosquitto (2.0.11
// with libwebsockets, 2.1.2 with its own websockets code) and by serve;
// every case must give the same answers.

import (
	"crypto/tls"
	"fmt"
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

// websockets listener roles, in config order.
const (
	wsPasswd  = iota // ws, password_file, ACL
	wssPasswd        // wss (one-way TLS), password_file, ACL
	wssMTLS          // wss, require_certificate, use_identity_as_username, ACL
	wsMQTT           // plain MQTT (mosquitto 2.0.11 does not start on websockets listeners alone)
	nWS
)

func (f *fixture) wsConfig(ports []int) *confgen.Config {
	p := func(n string) string { return filepath.Join(f.pki, n) }
	c := &confgen.Config{}
	c.Set("per_listener_settings", "true")
	c.Set("persistence", "false")
	for i, port := range ports {
		l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
		if i != wsMQTT {
			l.Set("protocol", "websockets")
		}
		if i == wssPasswd || i == wssMTLS {
			l.Set("cafile", p("ca.crt"))
			l.Set("certfile", p("server.crt"))
			l.Set("keyfile", p("server.key"))
		}
		l.Set("allow_anonymous", "false")
		switch i {
		case wsPasswd, wssPasswd:
			l.Set("password_file", f.passwd)
			l.Set("acl_file", f.acl)
		case wssMTLS:
			l.Set("require_certificate", "true")
			l.Set("use_identity_as_username", "true")
			l.Set("acl_file", f.acl)
		}
		c.Listener = append(c.Listener, l)
	}
	return c
}

// wsCase is one client over a websockets listener.
type wsCase struct {
	name     string
	listener int
	cert     string // client certificate (wss)
	otherCA  bool
	version  byte
	user, pw *string
}

// wsConnect dials and connects; it describes the outcome and returns the
// client when it got CONNACK 0.
func (f *fixture) wsConnect(ports []int, c wsCase, id string) (string, *testutil.MQTT) {
	v := c.version
	if v == 0 {
		v = 4
	}
	url := fmt.Sprintf("ws://127.0.0.1:%d/mqtt", ports[c.listener])
	var conf *tls.Config
	if c.listener == wssPasswd || c.listener == wssMTLS {
		url = fmt.Sprintf("wss://localhost:%d/mqtt", ports[c.listener])
		conf = f.tlsConf(c.cert, c.otherCA, 0)
	}
	m, err := testutil.DialMQTTWS(url, conf, v)
	if err != nil {
		return "refused before MQTT", nil
	}
	code, err := m.Connect(testutil.ConnectOptions{ClientID: id, Username: c.user, Password: c.pw, Clean: true})
	if err != nil {
		m.Close()
		return "refused before MQTT", nil // TLS 1.3 reports a refused certificate at the first read
	}
	if code != 0 {
		m.Close()
		return fmt.Sprintf("CONNACK %d", code), nil
	}
	return "CONNACK 0", m
}

func wsCases() []wsCase {
	return []wsCase{
		{name: "ws, right password", listener: wsPasswd, user: s("alice"), pw: s("alice-pw")},
		{name: "ws, right password v5", listener: wsPasswd, user: s("alice"), pw: s("alice-pw"), version: 5},
		{name: "ws, wrong password", listener: wsPasswd, user: s("alice"), pw: s("nope")},
		{name: "ws, wrong password v5", listener: wsPasswd, user: s("alice"), pw: s("nope"), version: 5},
		{name: "ws, unknown user", listener: wsPasswd, user: s("bob"), pw: s("x")},
		{name: "ws, anonymous", listener: wsPasswd},
		{name: "wss, right password", listener: wssPasswd, user: s("admin"), pw: s("admin-pw")},
		{name: "wss, wrong password", listener: wssPasswd, user: s("admin"), pw: s("alice-pw")},
		{name: "wss mTLS, valid client certificate", listener: wssMTLS, cert: "alice"},
		{name: "wss mTLS, valid certificate, spoofed username", listener: wssMTLS, cert: "alice", user: s("admin"), pw: s("admin-pw")},
		{name: "wss mTLS, no client certificate", listener: wssMTLS},
		{name: "wss mTLS, another CA's certificate", listener: wssMTLS, cert: "mallory", otherCA: true},
		{name: "wss mTLS, expired certificate", listener: wssMTLS, cert: "expired"},
		{name: "wss mTLS, not yet valid certificate", listener: wssMTLS, cert: "future"},
		{name: "wss mTLS, server certificate as client", listener: wssMTLS, cert: "server"},
		{name: "wss mTLS, certificate without a CN", listener: wssMTLS, cert: "nocn"},
		{name: "wss mTLS, certificate without a CN v5", listener: wssMTLS, cert: "nocn", version: 5},
	}
}

// wsPubSub is one ACL decision over websockets, seen by an observer
// (admin, ACL '#', on the ws listener).
type wsPubSub struct {
	name    string
	as      wsCase
	action  string // publish or subscribe
	topic   string
	payload int // payload size; 0: a short one
}

func wsPubSubs() []wsPubSub {
	alice := wsCase{listener: wsPasswd, user: s("alice"), pw: s("alice-pw")}
	alice5 := alice
	alice5.version = 5
	aliceCert := wsCase{listener: wssMTLS, cert: "alice"}
	return []wsPubSub{
		{name: "ws: ACL-allowed publish", as: alice, action: "publish", topic: "alice/ws"},
		{name: "ws: ACL-denied publish", as: alice, action: "publish", topic: "ops/ws"},
		{name: "ws: ACL-denied publish v5", as: alice5, action: "publish", topic: "ops/ws5"},
		{name: "ws: ACL-allowed subscribe", as: alice, action: "subscribe", topic: "shared/ws"},
		{name: "ws: ACL-denied subscribe", as: alice, action: "subscribe", topic: "ops/ws/secret"},
		{name: "ws: ACL-denied subscribe v5", as: alice5, action: "subscribe", topic: "ops/ws/secret5"},
		{name: "wss mTLS: the certificate's CN's topics", as: aliceCert, action: "publish", topic: "alice/wss"},
		{name: "wss mTLS: another user's topic", as: aliceCert, action: "publish", topic: "ops/wss"},
		{name: "wss mTLS: a 70,000-byte publish (frames of any size)", as: aliceCert, action: "publish", topic: "alice/big", payload: 70000},
		{name: "wss mTLS: ACL-allowed subscribe", as: aliceCert, action: "subscribe", topic: "alice/wss/in"},
	}
}

func (f *fixture) wsPubSub(t *testing.T, name string, ports []int, c wsPubSub, i int) string {
	id := fmt.Sprintf("ws%d", i)
	out, m := f.wsConnect(ports, c.as, id)
	if m == nil {
		return "connect: " + out
	}
	defer m.Disconnect()
	out, obs := f.wsConnect(ports, wsCase{listener: wsPasswd, user: s("admin"), pw: s("admin-pw")}, id+"-obs")
	if obs == nil {
		t.Fatalf("%s: observer: %s", name, out)
	}
	defer obs.Disconnect()
	if code, err := obs.Subscribe("#", 1); err != nil || code != 1 {
		t.Fatalf("%s: observer subscribe: %d %v", name, code, err)
	}
	payload := fmt.Sprintf("%s-%d", name, i)
	if c.payload > 0 {
		payload += strings.Repeat("x", c.payload-len(payload))
	}
	switch c.action {
	case "publish":
		code, err := m.Publish(c.topic, []byte(payload), 1, false)
		if err != nil {
			return "publish error: " + err.Error()
		}
		wait := 700 * time.Millisecond
		if c.payload > 0 {
			wait = 5 * time.Second // 2.0.11's libwebsockets takes more than 700 ms to pass 70 KB on
		}
		got, err := obs.Receive(wait)
		delivered := err == nil && got.Payload == payload
		return fmt.Sprintf("ack %d, delivered %v, still connected %v", code, delivered, m.Alive())
	default:
		code, err := m.Subscribe(c.topic, 1)
		if err != nil {
			return "subscribe error: " + err.Error()
		}
		if _, err := obs.Publish(c.topic, []byte(payload), 1, false); err != nil {
			return "observer publish: " + err.Error()
		}
		got, err := m.Receive(700 * time.Millisecond)
		return fmt.Sprintf("suback %d, delivered %v", code, err == nil && got.Payload == payload)
	}
}

// TestDifferentialWebSockets: CONNECT/CONNACK, SUBSCRIBE/SUBACK, a publish
// round trip and the refusals (password, certificate, ACL) over ws and wss
// (mutual TLS too), serve against mosquitto 2.0.11 and 2.1.2 on the same
// file. The Origin check is not here: mosquitto reads mqttctl's
// "# mqttctl: http_origin" as a comment, and 2.1's websockets_origin is not
// an option serve reads yet.
func TestDifferentialWebSockets(t *testing.T) {
	f := newFixture(t)
	bp := testutil.FreePorts(t, nWS)
	var blog testutil.SyncBuffer
	brokertest.Start(t, f.wsConfig(bp), &blog, broker.Options{})
	var served []string
	for _, c := range wsCases() {
		out, m := f.wsConnect(bp, c, "c-"+strings.NewReplacer(" ", "-", ",", "").Replace(c.name))
		if m != nil {
			m.Disconnect()
		}
		served = append(served, out)
	}
	for i, c := range wsPubSubs() {
		served = append(served, f.wsPubSub(t, "mqttctl", bp, c, i))
	}
	testutil.EachMosquittoParallel(t, func(t *testing.T, mq testutil.Mosquitto) {
		mp := testutil.FreePorts(t, nWS)
		dir := filepath.Join(f.dir, mq.Name()) // its own mosquitto.conf
		if err := os.Mkdir(dir, 0o711); err != nil {
			t.Fatal(err)
		}
		mlog := mq.Start(t, dir, f.wsConfig(mp))
		var got, names []string
		for _, c := range wsCases() {
			out, m := f.wsConnect(mp, c, "c-"+strings.NewReplacer(" ", "-", ",", "").Replace(c.name))
			if m != nil {
				m.Disconnect()
			}
			got, names = append(got, out), append(names, c.name)
		}
		for i, c := range wsPubSubs() {
			got, names = append(got, f.wsPubSub(t, mq.Name(), mp, c, i)), append(names, c.name)
		}
		for j, name := range names {
			t.Logf("%-55s %s: %-40s mqttctl: %s", name, mq.Name(), got[j], served[j])
			if got[j] != served[j] {
				t.Errorf("%s: %s %q, mqttctl %q", name, mq.Name(), got[j], served[j])
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s\nmqttctl log:\n%s", mq.Name(), mlog.String(), blog.String())
		}
	})
}
