package broker_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// bridgeFixture is a pki with a broker certificate (localhost), a bridge
// certificate (edge1) and a client (alice).
func bridgeFixture(t *testing.T) *brokertest.Fixture {
	t.Helper()
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}})
	if _, err := (&pki.Dir{Path: f.PKI}).Issue(pki.IssueOptions{Profile: pki.ProfileBridge, Name: "edge1", Hosts: []string{"edge1.example"}}); err != nil {
		t.Fatal(err)
	}
	return f
}

func mtlsListener(f *brokertest.Fixture, port int) *confgen.Listener {
	l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
	l.Set("cafile", filepath.Join(f.PKI, "ca.crt"))
	l.Set("certfile", filepath.Join(f.PKI, "server.crt"))
	l.Set("keyfile", filepath.Join(f.PKI, "server.key"))
	l.Set("require_certificate", "true")
	l.Set("use_identity_as_username", "true")
	return l
}

// bridgeSection adds a bridge from c to the mTLS listener at remotePort.
func bridgeSection(c *confgen.Config, f *brokertest.Fixture, remotePort int) {
	for _, kv := range [][2]string{
		{"connection", "central"},
		{"address", fmt.Sprintf("localhost:%d", remotePort)},
		{"topic", "# out 1 edge/ site1/"},
		{"topic", "cmd/# in 1 edge/ site1/"},
		{"bridge_cafile", filepath.Join(f.PKI, "ca.crt")},
		{"bridge_certfile", filepath.Join(f.PKI, "servers", "edge1.crt")},
		{"bridge_keyfile", filepath.Join(f.PKI, "servers", "edge1.key")},
		{"remote_clientid", "edge1-bridge"},
		{"cleansession", "false"},
		{"restart_timeout", "1 2"},
	} {
		c.Add(kv[0], kv[1])
	}
}

func plainListener(port int) *confgen.Listener {
	l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
	l.Set("allow_anonymous", "true")
	return l
}

// TestBridgeServeToMosquitto: serve bridges to a real mosquitto 2.0 over
// mutual TLS: messages go out and come in under their prefixes, the
// connection state is announced, and QoS 1 messages published locally
// while mosquitto is down arrive after it restarts.
func TestBridgeServeToMosquitto(t *testing.T) {
	f := bridgeFixture(t)
	ports := testutil.FreePorts(t, 2) // remote mosquitto, local serve
	remote := &confgen.Config{}
	remote.Set("persistence", "true")
	remote.Set("persistence_location", filepath.Join(f.Dir, "mdata")+"/")
	remote.Listener = append(remote.Listener, mtlsListener(f, ports[0]))
	mosq, mlog := testutil.StartMosquittoProcess(t, f.Dir, remote)

	local := &confgen.Config{}
	local.Listener = append(local.Listener, plainListener(ports[1]))
	bridgeSection(local, f, ports[0])
	slog := &testutil.SyncBuffer{}
	brokertest.Start(t, local, slog, broker.Options{})

	alice := testutil.ClientTLS(t, f.PKI, "alice")
	remoteClient := func(clean bool) *testutil.MQTT {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", ports[0]), alice, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: "hq", Clean: clean}); err != nil || code != 0 {
			t.Fatalf("remote connect: %d %v\n%s", code, err, mlog.String())
		}
		return m
	}
	localClient := func(id string) *testutil.MQTT {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", ports[1]), nil, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: id, Clean: true}); err != nil || code != 0 {
			t.Fatalf("local connect: %d %v", code, err)
		}
		return m
	}
	hq := remoteClient(false)
	if _, err := hq.Subscribe("site1/#", 1); err != nil {
		t.Fatal(err)
	}
	watcher := localClient("watcher")
	if _, err := watcher.Subscribe("edge/cmd/#", 1); err != nil {
		t.Fatal(err)
	}
	state := localClient("state")
	if _, err := state.Subscribe("$SYS/broker/connection/edge1-bridge/state", 1); err != nil {
		t.Fatal(err)
	}
	waitMsg := func(m *testutil.MQTT, topic, payload string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			msg, err := m.Receive(time.Until(deadline))
			if err == nil && msg.Topic == topic && msg.Payload == payload {
				return
			}
		}
		t.Fatalf("%s %q never arrived\nserve:\n%s\nmosquitto:\n%s", topic, payload, slog.String(), mlog.String())
	}
	waitMsg(state, "$SYS/broker/connection/edge1-bridge/state", "1")

	pub := localClient("sensor")
	if code, err := pub.Publish("edge/temp", []byte("21.5"), 1, false); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	waitMsg(hq, "site1/temp", "21.5")
	if code, err := hq.Publish("site1/cmd/reboot", []byte("now"), 1, false); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	waitMsg(watcher, "edge/cmd/reboot", "now")
	// The command came in by the bridge; it must not go back out (the #
	// out topic matches edge/cmd/reboot too).
	if msg, err := hq.Receive(time.Second); err == nil {
		t.Fatalf("the bridge sent a message back to where it came from: %+v", msg)
	}

	// The remote goes down; what is published meanwhile arrives after.
	_ = mosq.Process.Signal(syscall.SIGTERM)
	_, _ = mosq.Process.Wait()
	waitMsg(state, "$SYS/broker/connection/edge1-bridge/state", "0")
	for i := range 3 {
		if code, err := pub.Publish(fmt.Sprintf("edge/queued/%d", i), []byte("kept"), 1, false); err != nil || code != 0 {
			t.Fatal(code, err)
		}
	}
	_, mlog = testutil.StartMosquittoProcess(t, f.Dir, remote)
	hq = remoteClient(false)
	for i := range 3 {
		waitMsg(hq, fmt.Sprintf("site1/queued/%d", i), "kept")
	}
	if !strings.Contains(slog.String(), "bridge connection lost") {
		t.Errorf("the lost connection was not logged:\n%s", slog.String())
	}
}

// TestBridgeMosquittoToServe: a real mosquitto 2.0 bridges to serve over
// mutual TLS with its defaults (try_private true: it says it is a bridge
// with protocol level 0x84); messages flow both ways under their prefixes,
// and serve does not echo the bridge's own publishes back to it.
func TestBridgeMosquittoToServe(t *testing.T) {
	f := bridgeFixture(t)
	ports := testutil.FreePorts(t, 2) // remote serve, local mosquitto
	remote := &confgen.Config{}
	remote.Set("per_listener_settings", "false")
	remote.Listener = append(remote.Listener, mtlsListener(f, ports[0]))
	slog := &testutil.SyncBuffer{}
	brokertest.Start(t, remote, slog, broker.Options{})

	local := &confgen.Config{}
	local.Listener = append(local.Listener, plainListener(ports[1]))
	bridgeSection(local, f, ports[0])
	local.Add("topic", "echo/# both 1")
	_, mlog := testutil.StartMosquittoProcess(t, f.Dir, local)

	alice := testutil.ClientTLS(t, f.PKI, "alice")
	hq, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", ports[0]), alice, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer hq.Close()
	if code, err := hq.Connect(testutil.ConnectOptions{ClientID: "hq", Clean: true}); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	if _, err := hq.Subscribe("site1/#", 1); err != nil {
		t.Fatal(err)
	}
	edge, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", ports[1]), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer edge.Close()
	if code, err := edge.Connect(testutil.ConnectOptions{ClientID: "edge-app", Clean: true}); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	if _, err := edge.Subscribe("edge/cmd/#", 1); err != nil {
		t.Fatal(err)
	}
	recv := func(m *testutil.MQTT, topic, payload string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			msg, err := m.Receive(time.Until(deadline))
			if err == nil && msg.Topic == topic && msg.Payload == payload {
				return
			}
		}
		t.Fatalf("%s %q never arrived\nserve:\n%s\nmosquitto:\n%s", topic, payload, slog.String(), mlog.String())
	}
	// The bridge connects (mosquitto retries every few seconds).
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(slog.String(), "edge1-bridge") && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // its subscriptions
	if code, err := edge.Publish("edge/temp", []byte("19"), 1, false); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	recv(hq, "site1/temp", "19")
	if code, err := hq.Publish("site1/cmd/stop", []byte("now"), 1, false); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	recv(edge, "edge/cmd/stop", "now")
	if !strings.Contains(slog.String(), "username=edge1 ") || strings.Contains(slog.String(), "unsupported protocol version") {
		t.Errorf("the bridge did not log in at once (as its certificate's CN):\n%s", slog.String())
	}
	// echo/# both: a local publish goes to serve and is not echoed back.
	if code, err := edge.Subscribe("echo/#", 1); err != nil || code > 2 {
		t.Fatalf("SUBACK %d %v", code, err)
	}
	// QoS 0: Publish returns at once, so the copy mosquitto delivers locally
	// is read by recv (a QoS 1 Publish would skip it while awaiting PUBACK).
	if _, err := edge.Publish("echo/1", []byte("once"), 0, false); err != nil {
		t.Fatal(err)
	}
	recv(edge, "echo/1", "once")
	if m, err := edge.Receive(1500 * time.Millisecond); err == nil {
		t.Errorf("serve sent the bridge's own publish back: %+v", m)
	}
}

// TestBridgeClientGetsNoEcho: a client that connects as a bridge (protocol
// level 0x84, mosquitto's try_private) is served as 3.1.1, does not get its
// own publishes back, and gets the retain flag as published (mosquitto's
// handle_subscribe gives a bridge's 3.1.1 subscription no-local and
// retain-as-published); an ordinary client gets its echo and retain 0 on
// a live message. The same under serve, mosquitto 2.0.11 and 2.1.2 (issue 22: a
// retained command published on a central serve reached the site
// unretained, found by running the README's bridge walk-through).
func TestBridgeClientGetsNoEcho(t *testing.T) {
	run := func(t *testing.T, start func(t *testing.T, port int)) {
		port := testutil.FreePort(t)
		start(t, port)
		dial := func(level byte, id string) *testutil.MQTT {
			t.Helper()
			m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), nil, 4)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(m.Close)
			if _, err := m.Conn.Write(mqttwire.AppendConnect(nil, mqttwire.Connect{Version: level, ClientID: id, Clean: true})); err != nil {
				t.Fatal(err)
			}
			head, body, err := m.Read(5 * time.Second)
			if err != nil || head>>4 != mqttwire.CONNACK || body[1] != 0 {
				t.Fatalf("level %#x: CONNACK %v %v", level, body, err)
			}
			return m
		}
		other := dial(4, "other")
		for _, tc := range []struct {
			level        byte
			echo, retain bool
		}{{0x84, false, true}, {4, true, false}} {
			id := fmt.Sprintf("c%x", tc.level)
			m := dial(tc.level, id)
			for _, f := range []string{"echo/" + id + "/#", "r/" + id + "/#"} {
				if _, err := m.Subscribe(f, 1); err != nil {
					t.Fatal(err)
				}
			}
			// QoS 0: Publish returns at once, so the echo is read by
			// Receive (a QoS 1 Publish would skip it awaiting PUBACK).
			if _, err := m.Publish("echo/"+id+"/x", []byte("me"), 0, false); err != nil {
				t.Fatal(err)
			}
			_, err := m.Receive(time.Second)
			if got := err == nil; got != tc.echo {
				t.Errorf("level %#x: got its own publish back = %v, want %v", tc.level, got, tc.echo)
			}
			if code, err := other.Publish("r/"+id+"/x", []byte("kept"), 1, true); err != nil || code != 0 {
				t.Fatal(code, err)
			}
			msg, err := m.Receive(5 * time.Second)
			if err != nil || msg.Retain != tc.retain {
				t.Errorf("level %#x: a live retained publish arrived with retain=%v (%v), want %v", tc.level, msg.Retain, err, tc.retain)
			}
			m.Disconnect()
		}
	}
	t.Run("serve", func(t *testing.T) {
		run(t, func(t *testing.T, port int) {
			start(t, fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\n", port), 5*time.Second)
		})
	})
	testutil.EachMosquitto(t, func(t *testing.T, mq testutil.Mosquitto) {
		run(t, func(t *testing.T, port int) {
			c := &confgen.Config{}
			c.Set("allow_anonymous", "true")
			c.Listener = append(c.Listener, plainListener(port))
			mq.Start(t, t.TempDir(), c)
			testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		})
	})
}

// TestGeneratedBridge: the bridge section `config mosquitto --bridge-to`
// writes starts on mosquitto, and on serve carries messages to the remote.
func TestGeneratedBridge(t *testing.T) {
	f := bridgeFixture(t)
	ports := testutil.FreePorts(t, 3) // remote serve, local serve, local mosquitto
	remote := &confgen.Config{}
	remote.Listener = append(remote.Listener, mtlsListener(f, ports[0]))
	brokertest.Start(t, remote, nil, broker.Options{})
	gen := func(port int) *confgen.Config {
		c, err := confgen.GenerateMosquitto(confgen.MosquittoOptions{PKIDir: f.PKI, Mode: "mtls", Listen: fmt.Sprintf("127.0.0.1:%d", port),
			BridgeTo: fmt.Sprintf("localhost:%d", ports[0]), BridgeName: "edge1", BridgeTopics: []string{`sensors/# out 1 "" site1/`}})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	mc := gen(ports[2])
	mc.Add("remote_clientid", "mosquitto-edge1") // not the serve bridge's session
	testutil.StartMosquitto(t, f.Dir, mc)
	slog := &testutil.SyncBuffer{}
	brokertest.Start(t, gen(ports[1]), slog, broker.Options{})

	alice := testutil.ClientTLS(t, f.PKI, "alice")
	dial := func(port int) *testutil.MQTT {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), alice, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: fmt.Sprint("c", port), Clean: true}); err != nil || code != 0 {
			t.Fatal(code, err)
		}
		return m
	}
	hq := dial(ports[0])
	if _, err := hq.Subscribe("site1/#", 1); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(slog.String(), "bridge connected") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if code, err := dial(ports[1]).Publish("sensors/t", []byte("7"), 1, false); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	for time.Now().Before(deadline) {
		m, err := hq.Receive(time.Until(deadline))
		if err == nil && m.Topic == "site1/sensors/t" && m.Payload == "7" {
			return
		}
	}
	t.Fatalf("site1/sensors/t never reached the remote:\n%s", slog.String())
}

// TestBridgeFailuresExplained: a remote that is not listening, and one whose
// certificate bridge_cafile does not trust, are logged in plain words and
// retried, and the broker keeps serving.
func TestBridgeFailuresExplained(t *testing.T) {
	f := bridgeFixture(t)
	ports := testutil.FreePorts(t, 3) // nothing, remote with another CA, local
	other := &confgen.Config{}
	ol := &confgen.Listener{Port: ports[1], Bind: "127.0.0.1"}
	ol.Set("certfile", filepath.Join(f.Other, "server.crt"))
	ol.Set("keyfile", filepath.Join(f.Other, "server.key"))
	ol.Set("allow_anonymous", "true")
	other.Listener = append(other.Listener, ol)
	brokertest.Start(t, other, nil, broker.Options{})

	local := &confgen.Config{}
	local.Listener = append(local.Listener, plainListener(ports[2]))
	for i, port := range ports[:2] {
		for _, kv := range [][2]string{{"connection", fmt.Sprint("b", i)}, {"address", fmt.Sprintf("localhost:%d", port)}, {"topic", "# out"},
			{"bridge_cafile", filepath.Join(f.PKI, "ca.crt")}, {"restart_timeout", "1"}} {
			local.Add(kv[0], kv[1])
		}
	}
	log := &testutil.SyncBuffer{}
	brokertest.Start(t, local, log, broker.Options{})
	deadline := time.Now().Add(10 * time.Second)
	want := []string{"nothing listens at the remote address", "not signed by bridge_cafile"}
	for time.Now().Before(deadline) {
		if strings.Contains(log.String(), want[0]) && strings.Contains(log.String(), want[1]) && strings.Count(log.String(), "bridge cannot connect") >= 4 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, w := range want {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
	if n := strings.Count(log.String(), "bridge cannot connect"); n < 4 {
		t.Errorf("%d failed attempts logged, want retries:\n%s", n, log.String())
	}
	m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", ports[2]), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "still", Clean: true}); err != nil || code != 0 {
		t.Fatalf("the broker stopped serving: %d %v", code, err)
	}
}

// TestBridgeDropsLogOnceAnEpisode: while the remote is down and the queue
// is full, dropped messages give one line when dropping starts and one
// with the count when it ends (the remote is back and the queue has room),
// not one per message (29k lines for 30k messages before).
func TestBridgeDropsLogOnceAnEpisode(t *testing.T) {
	ports := testutil.FreePorts(t, 2) // remote (down at first), local
	local := &confgen.Config{}
	local.Set("max_queued_messages", "5")
	local.Listener = append(local.Listener, plainListener(ports[1]))
	for _, kv := range [][2]string{{"connection", "central"}, {"address", fmt.Sprintf("127.0.0.1:%d", ports[0])}, {"topic", "# out 0"}, {"restart_timeout", "1 1"}} {
		local.Add(kv[0], kv[1])
	}
	log := &testutil.SyncBuffer{}
	brokertest.Start(t, local, log, broker.Options{})
	m := connected(t, fmt.Sprintf("127.0.0.1:%d", ports[1]), 4, testutil.ConnectOptions{ClientID: "pub", Clean: true})
	const n = 200
	for i := range n {
		if _, err := m.Publish(fmt.Sprintf("t/%d", i), []byte("x"), 0, false); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := m.Publish("sync", []byte("x"), 1, false); err != nil { // the QoS 0 ones are handled once this is acknowledged
		t.Fatal(err)
	}
	if c := strings.Count(log.String(), "dropping local messages"); c != 1 {
		t.Fatalf("%d 'dropping' lines for one episode, want 1:\n%s", c, log.String())
	}
	remote := &confgen.Config{}
	remote.Listener = append(remote.Listener, plainListener(ports[0]))
	brokertest.Start(t, remote, nil, broker.Options{})
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(log.String(), "bridge dropped local messages") && time.Now().Before(deadline) {
		_, _ = m.Publish("after", []byte("x"), 1, false) // takes the queue's room once the bridge has drained it
		time.Sleep(100 * time.Millisecond)
	}
	out := log.String()
	if strings.Count(out, "bridge dropped local messages") != 1 || strings.Count(out, "dropping local messages") != 1 || !strings.Contains(out, "dropped=") {
		t.Fatalf("want one line when dropping starts and one with the count when it ends:\n%s", out)
	}
	lines := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "drop") {
			lines++
		}
	}
	if lines != 2 {
		t.Errorf("%d lines about dropped messages, want 2:\n%s", lines, out)
	}
}

// TestCheckWarnsBridgeToItself: config check warns, at the address line,
// about a bridge whose address is one of the broker's own listeners.
func TestCheckWarnsBridgeToItself(t *testing.T) {
	tests := []struct {
		name, listener, address string
		loop                    bool
	}{
		{"loopback address, listener on all interfaces", "listener 18830", "127.0.0.1:18830", true},
		{"localhost, listener on loopback", "listener 18830 127.0.0.1", "localhost:18830", true},
		{"IPv6 loopback", "listener 18830", "[::1]:18830", true},
		{"another port", "listener 18830", "127.0.0.1:18831", false},
		{"a remote host", "listener 18830", "192.0.2.1:18830", false},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			c, err := confgen.Parse([]byte(tt.listener+"\nallow_anonymous true\nconnection self\naddress "+tt.address+"\ntopic # out\n"), "t.conf")
			if err != nil {
				t.Fatal(err)
			}
			r, ds := c.Resolve()
			if confgen.HasErrors(ds) {
				t.Fatal(ds)
			}
			errs := broker.Check(r)
			if !tt.loop {
				if len(errs) != 0 {
					t.Fatalf("Check = %v, want nothing", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("Check = %v, want one warning", errs)
			}
			if d := confgen.DiagnosticOf(errs[0]); !d.Warning || d.Pos.Line != 4 || !strings.Contains(d.Msg, "a listener of this same broker") {
				t.Errorf("Check = %s, want a warning at t.conf:4 about the loop", d)
			}
		})
	}
}
