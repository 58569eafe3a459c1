package broker_test

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestWebSocketListeners: ws with a password and wss with a client
// certificate carry MQTT with the same authentication as MQTT listeners;
// a plain HTTP request, a text message and a silent connection are refused.
func TestWebSocketListeners(t *testing.T) {
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"},
		OtherClients: []string{"eve"}, Passwords: map[string]string{"web": "s3cret"}})
	ports := testutil.FreePorts(t, 2)
	_, log := start(t, fmt.Sprintf(`per_listener_settings true
listener %d 127.0.0.1
protocol websockets
password_file %s
listener %d 127.0.0.1
protocol websockets
cafile %s
certfile %s
keyfile %s
require_certificate true
use_identity_as_username true
`, ports[0], f.Passwd, ports[1], filepath.Join(f.PKI, "ca.crt"), filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key")), time.Second)
	ws := fmt.Sprintf("ws://127.0.0.1:%d/mqtt", ports[0])
	wss := fmt.Sprintf("wss://localhost:%d/any/path", ports[1])
	caPEM, _ := os.ReadFile(filepath.Join(f.PKI, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	clientTLS := func(dir, name string) *tls.Config {
		cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "clients", name+".crt"), filepath.Join(dir, "clients", name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		return &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{cert}}
	}
	connect := func(url string, conf *tls.Config, o testutil.ConnectOptions) (*testutil.MQTT, byte, error) {
		m, err := testutil.DialMQTTWS(url, conf, 4)
		if err != nil {
			return nil, 0, err
		}
		t.Cleanup(m.Close)
		code, err := m.Connect(o)
		return m, code, err
	}
	for _, tc := range []struct {
		name string
		url  string
		conf *tls.Config
		o    testutil.ConnectOptions
		code byte // CONNACK; 255: the connection fails
	}{
		{"ws with the right password", ws, nil, testutil.ConnectOptions{ClientID: "w1", Clean: true, Username: testutil.Str("web"), Password: testutil.Str("s3cret")}, 0},
		{"ws with a wrong password", ws, nil, testutil.ConnectOptions{ClientID: "w2", Clean: true, Username: testutil.Str("web"), Password: testutil.Str("nope")}, 5},
		{"ws anonymous", ws, nil, testutil.ConnectOptions{ClientID: "w3", Clean: true}, 5},
		{"wss with a client certificate", wss, clientTLS(f.PKI, "alice"), testutil.ConnectOptions{ClientID: "w4", Clean: true}, 0},
		{"wss with another CA's certificate", wss, clientTLS(f.Other, "eve"), testutil.ConnectOptions{ClientID: "w5", Clean: true}, 255},
		{"wss without a certificate", wss, &tls.Config{RootCAs: roots, ServerName: "localhost"}, testutil.ConnectOptions{ClientID: "w6", Clean: true}, 255},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, code, err := connect(tc.url, tc.conf, tc.o)
			if tc.code == 255 {
				if err == nil {
					t.Fatalf("connected (CONNACK %d)", code)
				}
				return
			}
			if err != nil || code != tc.code {
				t.Fatalf("CONNACK %d, %v; want %d", code, err, tc.code)
			}
		})
	}

	// A round trip over wss: the identity is the certificate's CN.
	sub, _, err := connect(wss, clientTLS(f.PKI, "alice"), testutil.ConnectOptions{ClientID: "sub", Clean: true})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := sub.Subscribe("web/#", 1); err != nil || code != 1 {
		t.Fatalf("SUBACK %d %v", code, err)
	}
	pub, _, err := connect(ws, nil, testutil.ConnectOptions{ClientID: "pub", Clean: true, Username: testutil.Str("web"), Password: testutil.Str("s3cret")})
	if err != nil {
		t.Fatal(err)
	}
	if code, err := pub.Publish("web/1", []byte(strings.Repeat("x", 70000)), 1, false); err != nil || code != 0 {
		t.Fatalf("PUBACK %d %v", code, err)
	}
	if m, err := sub.Receive(5 * time.Second); err != nil || m.Topic != "web/1" || len(m.Payload) != 70000 {
		t.Fatalf("received %q (%d bytes), %v", m.Topic, len(m.Payload), err)
	}
	if !strings.Contains(log.String(), "username=alice") {
		t.Errorf("the wss client did not log in as its certificate's CN:\n%s", log.String())
	}

	// Not a WebSocket: a plain HTTP GET gets 400 and a log line.
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/mqtt", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), "MQTT over WebSocket") {
		t.Errorf("plain GET: %s %s", resp.Status, body)
	}
	// A text message ends the connection.
	c, _, err := (&websocket.Dialer{Subprotocols: []string{"mqtt"}}).Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.WriteMessage(websocket.TextMessage, []byte("hello"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil {
		t.Error("a text message did not end the connection")
	}
	c.Close()
	// A silent TCP connection is closed at the connect deadline (1 s here).
	raw, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", ports[0]))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if !closedByServer(raw) {
		t.Error("a silent connection to the WebSocket listener was kept open")
	}
}

// TestGeneratedWebSocketsOnMosquittoAndServe: the wss listener `config
// mosquitto --websockets` writes runs on real mosquitto and on serve, and
// both give the same answers to a browser-like client.
func TestGeneratedWebSocketsOnMosquittoAndServe(t *testing.T) {
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Passwords: map[string]string{"web": "s3cret"}})
	caPEM, _ := os.ReadFile(filepath.Join(f.PKI, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	run := func(t *testing.T, which string, start func(c *confgen.Config) *testutil.SyncBuffer) {
		ports := testutil.FreePorts(t, 2)
		c, err := confgen.GenerateMosquitto(confgen.MosquittoOptions{PKIDir: f.PKI, Mode: "tls", PasswordFile: f.Passwd,
			Listen: fmt.Sprintf("127.0.0.1:%d", ports[0]), WebSockets: fmt.Sprintf("127.0.0.1:%d", ports[1])})
		if err != nil {
			t.Fatal(err)
		}
		log := start(c)
		url := fmt.Sprintf("wss://localhost:%d/mqtt", ports[1])
		testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", ports[1]), 5*time.Second)
		conf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
		for _, tc := range []struct {
			pw   string
			code byte
		}{{"s3cret", 0}, {"wrong", 5}} {
			m, err := testutil.DialMQTTWS(url, conf, 4)
			if err != nil {
				t.Fatalf("%s: %v\n%s", which, err, log.String())
			}
			code, err := m.Connect(testutil.ConnectOptions{ClientID: "b-" + tc.pw, Clean: true, Username: testutil.Str("web"), Password: testutil.Str(tc.pw)})
			m.Close()
			if err != nil || code != tc.code {
				t.Errorf("%s, password %q: CONNACK %d (%v), want %d\n%s", which, tc.pw, code, err, tc.code, log.String())
			}
		}
	}
	t.Run("serve", func(t *testing.T) {
		run(t, "serve", func(c *confgen.Config) *testutil.SyncBuffer {
			log := &testutil.SyncBuffer{}
			brokertest.Start(t, c, log, broker.Options{})
			return log
		})
	})
	testutil.EachMosquitto(t, func(t *testing.T, mq testutil.Mosquitto) {
		run(t, mq.Name(), func(c *confgen.Config) *testutil.SyncBuffer { return mq.Start(t, f.Dir, c) })
	})
}

// TestWebSocketOrigin: "# mqttctl: http_origin" lets browsers from the
// listed page origins in and refuses others; clients without an Origin
// (not browsers) are let through; without the option any origin is.
func TestWebSocketOrigin(t *testing.T) {
	ports := testutil.FreePorts(t, 2)
	_, log := start(t, fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\nprotocol websockets\n# mqttctl: http_origin https://app.example.com\n"+
		"listener %d 127.0.0.1\nprotocol websockets\n", ports[0], ports[1]), 5*time.Second)
	for _, tc := range []struct {
		port   int
		origin string
		ok     bool
	}{
		{ports[0], "https://app.example.com", true},
		{ports[0], "https://evil.example", false},
		{ports[0], "", true},
		{ports[1], "https://evil.example", true},
		// exactly, as mosquitto 2.1 compares (the adversarial run found
		// serve letting in what mosquitto refuses)
		{ports[0], "HTTPS://APP.EXAMPLE.COM", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		d := websocket.Dialer{Subprotocols: []string{"mqtt"}}
		c, resp, err := d.Dial(fmt.Sprintf("ws://127.0.0.1:%d/mqtt", tc.port), h)
		if err == nil {
			c.Close()
		}
		if (err == nil) != tc.ok {
			status := ""
			if resp != nil {
				status = resp.Status
			}
			t.Errorf("port %d, origin %q: connected=%v (%v %s), want %v", tc.port, tc.origin, err == nil, err, status, tc.ok)
		}
	}
	// The one refusal logs one line, naming the origin (issue 22: a second
	// line called it "not a WebSocket upgrade").
	var refused []string
	for _, line := range strings.Split(log.String(), "\n") {
		if strings.Contains(line, "refused") && !strings.Contains(line, "no valid CONNECT") { // the others' hang-ups
			refused = append(refused, line)
		}
	}
	if len(refused) != 2 || !strings.Contains(refused[0], "origin=https://evil.example") || !strings.Contains(refused[0], "http_origin") {
		t.Errorf("each origin refusal should log one line naming the origin and http_origin, got %d:\n%s", len(refused), strings.Join(refused, "\n"))
	}
	for _, bad := range []string{
		fmt.Sprintf("listener %d\n# mqttctl: http_origin https://a.example\n", ports[0]),                // not websockets
		fmt.Sprintf("listener %d\nprotocol websockets\n# mqttctl: http_origin app.example\n", ports[0]), // not an origin
		"# mqttctl: http_origin https://a.example\n",                                                    // outside a listener
		fmt.Sprintf("listener %d\n# mqttctl: origin https://a.example\n", ports[0]),                     // unknown
	} {
		c, err := confgen.Parse([]byte(bad), "bad.conf")
		if err == nil {
			_, ds := c.Resolve()
			if !confgen.HasErrors(ds) {
				t.Errorf("accepted:\n%s", bad)
			}
		}
	}
}

// TestWebSocketConnectDeadline: on ws and wss listeners every connection
// completes the upgrade and CONNECT within the connect deadline or is
// closed, freeing its max_connections slot: a request answered 400 (the
// HTTP server kept it alive, with no deadline, before), a partial request,
// an upgrade with no CONNECT after it.
func TestWebSocketConnectDeadline(t *testing.T) {
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}})
	var ports []int
	// Each case gets its own broker: a slot freed by the previous case's
	// last client may not be free yet when the next case dials.
	startBroker := func(t *testing.T) {
		ports = testutil.FreePorts(t, 2)
		start(t, fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\nmax_connections 1\n"+
			"listener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\nmax_connections 1\ncertfile %s\nkeyfile %s\n",
			ports[0], ports[1], filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key")), 300*time.Millisecond)
	}
	caPEM, _ := os.ReadFile(filepath.Join(f.PKI, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	conf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	dial := func(t *testing.T, secure bool) net.Conn {
		port := ports[0]
		if secure {
			port = ports[1]
		}
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			t.Fatal(err)
		}
		if secure {
			tc := tls.Client(c, conf)
			if err := tc.Handshake(); err != nil {
				t.Fatal(err)
			}
			c = tc
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	cases := []struct {
		name string
		send func(t *testing.T, c net.Conn)
	}{
		{"GET / answered 400", func(t *testing.T, c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}},
		{"a partial request", func(t *testing.T, c net.Conn) {
			io.WriteString(c, "GET / HTTP/1.1\r\n")
		}},
		{"an upgrade and no CONNECT", func(t *testing.T, c net.Conn) {
			d := websocket.Dialer{NetDial: func(string, string) (net.Conn, error) { return c, nil }}
			if _, _, err := d.Dial("ws://x/mqtt", http.Header{"Sec-WebSocket-Protocol": {"mqtt"}}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, secure := range []bool{false, true} {
		for _, tc := range cases {
			name := map[bool]string{false: "ws", true: "wss"}[secure] + "/" + strings.ReplaceAll(tc.name, " ", "_")
			t.Run(name, func(t *testing.T) {
				startBroker(t)
				c := dial(t, secure)
				tc.send(t, c)
				if !closedByServer(c) {
					t.Fatal("the connection was not closed at the connect deadline")
				}
				// Its slot (max_connections 1) is free again.
				scheme, port := "ws", ports[0]
				if secure {
					scheme, port = "wss", ports[1]
				}
				var m *testutil.MQTT
				var err error
				for i := 0; i < 50; i++ { // the slot is freed just after the close the client saw
					if m, err = testutil.DialMQTTWS(fmt.Sprintf("%s://localhost:%d/mqtt", scheme, port), conf, 4); err == nil {
						var code byte
						if code, err = m.Connect(testutil.ConnectOptions{ClientID: "after", Clean: true}); err == nil && code == 0 {
							break
						}
						m.Close()
					}
					time.Sleep(20 * time.Millisecond)
				}
				if err != nil {
					t.Fatalf("the slot was not freed: %v", err)
				}
				m.Disconnect()
			})
		}
	}
}

// TestListeningLogNamesProtocol: serve's "listening" line says ws or wss,
// not only mode=tls/mtls, for websockets listeners.
func TestListeningLogNamesProtocol(t *testing.T) {
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}})
	ports := testutil.FreePorts(t, 3)
	_, log := start(t, fmt.Sprintf("per_listener_settings true\nlistener %d 127.0.0.1\nallow_anonymous true\n"+
		"listener %d 127.0.0.1\nprotocol websockets\nallow_anonymous true\n"+
		"listener %d 127.0.0.1\nprotocol websockets\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		ports[0], ports[1], ports[2], filepath.Join(f.PKI, "ca.crt"), filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key")), time.Second)
	for i, want := range []string{"mode=plain protocol=mqtt", "mode=plain protocol=ws", "mode=mtls protocol=wss"} {
		line := fmt.Sprintf("address=127.0.0.1:%d %s", ports[i], want)
		if !strings.Contains(log.String(), line) {
			t.Errorf("the log lacks %q:\n%s", line, log.String())
		}
	}
}
