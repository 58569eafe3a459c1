package broker_test

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// start runs a broker from config text, with a short connect timeout.
func start(t *testing.T, conf string, timeout time.Duration) (*broker.Broker, *testutil.SyncBuffer) {
	t.Helper()
	c, err := confgen.Parse([]byte(conf), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	log := &testutil.SyncBuffer{}
	b := brokertest.Start(t, c, log, broker.Options{ConnectTimeout: timeout})
	return b, log
}

// closedByServer reports whether the server closes conn (EOF or reset)
// before the client's own 5-second limit.
func closedByServer(conn net.Conn) bool {
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := io.ReadAll(conn)
	var ne net.Error
	return !(errors.As(err, &ne) && ne.Timeout())
}

func TestConnectDeadline(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Hosts: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	plain, tlsPort := testutil.FreePort(t), testutil.FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nlistener %d 127.0.0.1\ncertfile %s\nkeyfile %s\n",
		plain, tlsPort, filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"))
	_, log := start(t, conf, 300*time.Millisecond)

	idle, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", plain))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if !closedByServer(idle) {
		t.Fatal("an idle TCP connection was not closed at the connect deadline")
	}
	stalled, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", tlsPort))
	if err != nil {
		t.Fatal(err)
	}
	defer stalled.Close()
	stalled.Write([]byte{0x16, 0x03, 0x01, 0x00}) // the start of a ClientHello, then nothing
	if !closedByServer(stalled) {
		t.Fatal("a stalled TLS handshake was not closed at the connect deadline")
	}
	// The log line may come just after the close the client saw.
	for i := 0; i < 100 && !strings.Contains(log.String(), "no TLS handshake within the connect timeout"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "no TLS handshake within the connect timeout") {
		t.Errorf("the log does not say why the handshake was dropped:\n%s", log.String())
	}
	// A client that connects in time keeps its connection past the deadline.
	m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", plain), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "ok", Clean: true}); err != nil || code != 0 {
		t.Fatalf("connect: %d %v", code, err)
	}
	time.Sleep(600 * time.Millisecond)
	if !m.Alive() {
		t.Fatal("a connected client was dropped at the connect deadline")
	}
}

func TestMaxConnectionsPerListener(t *testing.T) {
	a, b := testutil.FreePort(t), testutil.FreePort(t)
	conf := fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\nmax_connections 2\nlistener %d 127.0.0.1\n", a, b)
	start(t, conf, time.Second)
	connect := func(port int, id string) (*testutil.MQTT, error) {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), nil, 4)
		if err != nil {
			return nil, err
		}
		code, err := m.Connect(testutil.ConnectOptions{ClientID: id, Clean: true})
		if err != nil || code != 0 {
			m.Close()
			return nil, fmt.Errorf("code %d: %v", code, err)
		}
		return m, nil
	}
	c1, err := connect(a, "c1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := connect(a, "c2")
	if err != nil {
		t.Fatal(err)
	}
	if c3, err := connect(a, "c3"); err == nil {
		c3.Close()
		t.Fatal("a third client got past max_connections 2")
	}
	// The other listener has its own count.
	o, err := connect(b, "other")
	if err != nil {
		t.Fatalf("the limit leaked to another listener: %v", err)
	}
	o.Close()
	c1.Disconnect()
	time.Sleep(100 * time.Millisecond)
	c4, err := connect(a, "c4")
	if err != nil {
		t.Fatalf("a slot was not freed: %v", err)
	}
	c4.Close()
	c2.Close()
}

func TestCRLRefusesRevokedClient(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	caCert, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	bobPEM, _ := os.ReadFile(filepath.Join(p, "clients/bob.crt"))
	bob, _ := pki.ParseCerts(bobPEM, "bob")
	crl := filepath.Join(dir, "ca.crl")
	writeCRL(t, p, crl, bob[0].SerialNumber)
	port := testutil.FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ncrlfile %s\n",
		port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), crl)
	_, log := start(t, conf, time.Second)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caCert)
	try := func(name string) error {
		cert, err := tls.LoadX509KeyPair(filepath.Join(p, "clients", name+".crt"), filepath.Join(p, "clients", name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{cert}}, 4)
		if err != nil {
			return err
		}
		defer m.Close()
		code, err := m.Connect(testutil.ConnectOptions{ClientID: name, Clean: true})
		if err == nil && code != 0 {
			err = fmt.Errorf("CONNACK %d", code)
		}
		return err
	}
	if err := try("alice"); err != nil {
		t.Fatalf("alice refused: %v", err)
	}
	if err := try("bob"); err == nil {
		t.Fatal("revoked bob was accepted")
	}
	// The log line may come just after the close the client saw.
	for i := 0; i < 100 && !strings.Contains(log.String(), "revoked"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "revoked") {
		t.Errorf("the log does not say bob is revoked:\n%s", log.String())
	}
}

func TestParseCiphers(t *testing.T) {
	ids, err := broker.ParseCiphers("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES256-GCM-SHA384")
	if err != nil || len(ids) != 2 || ids[0] != tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 {
		t.Fatalf("%v %v", ids, err)
	}
	for _, bad := range []string{"HIGH:!aNULL", "DES-CBC3-SHA", ""} {
		if _, err := broker.ParseCiphers(bad); err == nil {
			t.Errorf("ParseCiphers(%q) accepted", bad)
		}
	}
}

func TestMaxPacketSize(t *testing.T) {
	port := testutil.FreePort(t)
	start(t, fmt.Sprintf("max_packet_size 200\nallow_anonymous true\nlistener %d 127.0.0.1\n", port), time.Second)
	m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "big", Clean: true}); err != nil || code != 0 {
		t.Fatal(code, err)
	}
	if _, err := m.Publish("t", make([]byte, 100), 1, false); err != nil {
		t.Fatalf("a packet under the limit: %v", err)
	}
	m.Publish("t", make([]byte, 500), 1, false)
	if m.Alive() {
		t.Fatal("a packet over max_packet_size did not end the connection")
	}
}

func TestNewRejectsBadFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Hosts: []string{"localhost"}, CAKeyPassword: []byte("pw")}); err != nil {
		t.Fatal(err)
	}
	for name, conf := range map[string]string{
		"encrypted key": fmt.Sprintf("listener 8883\ncertfile %s\nkeyfile %s\n", filepath.Join(p, "ca.crt"), filepath.Join(p, "ca.key")),
		"missing cert":  fmt.Sprintf("listener 8883\ncertfile %s\nkeyfile %s\n", filepath.Join(p, "nope.crt"), filepath.Join(p, "server.key")),
		"bad cipher":    fmt.Sprintf("listener 8883\ncertfile %s\nkeyfile %s\nciphers HIGH\n", filepath.Join(p, "server.crt"), filepath.Join(p, "server.key")),
		"missing acl":   "listener 1883\nacl_file /nonexistent/acl\n",
	} {
		c, err := confgen.Parse([]byte(conf), "t.conf")
		if err != nil {
			t.Fatal(err)
		}
		r, _ := c.Resolve()
		if _, err := broker.New(r, broker.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}); err == nil {
			t.Errorf("%s: New accepted it", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

func TestServedChainIncludesIntermediate(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Hosts: []string{"localhost"}, Intermediate: true}); err != nil {
		t.Fatal(err)
	}
	// certfile with the leaf only; the intermediate is in cafile, as with
	// mosquitto set-ups where OpenSSL completes the chain from cafile.
	full, _ := os.ReadFile(filepath.Join(p, "server.crt"))
	certs, _ := pki.ParseCerts(full, "server.crt")
	leafOnly := filepath.Join(dir, "leaf.crt")
	os.WriteFile(leafOnly, pki.EncodeCerts(certs[0]), 0o644)
	root, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	inter, _ := os.ReadFile(filepath.Join(p, "intermediate.crt"))
	bundle := filepath.Join(dir, "cabundle.crt")
	os.WriteFile(bundle, append(append([]byte{}, root...), inter...), 0o644)
	for name, files := range map[string][2]string{
		"chain in certfile":      {filepath.Join(p, "server.crt"), filepath.Join(p, "ca.crt")},
		"intermediate in cafile": {leafOnly, bundle},
	} {
		t.Run(name, func(t *testing.T) {
			port := testutil.FreePort(t)
			start(t, fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\ncertfile %s\nkeyfile %s\ncafile %s\n", port, files[0], filepath.Join(p, "server.key"), files[1]), time.Second)
			roots := x509.NewCertPool()
			roots.AppendCertsFromPEM(root) // the client trusts the root only
			c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: "localhost"})
			if err != nil {
				t.Fatalf("client trusting only the root: %v", err)
			}
			if n := len(c.ConnectionState().PeerCertificates); n != 2 {
				t.Errorf("served %d certificates, want leaf and intermediate", n)
			}
			c.Close()
		})
	}
}

func TestSysTopics(t *testing.T) {
	port := testutil.FreePort(t)
	c, _ := confgen.Parse([]byte(fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\n", port)), "t")
	brokertest.Start(t, c, nil, broker.Options{SysInterval: time.Second})
	m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	m.Connect(testutil.ConnectOptions{ClientID: "sys", Clean: true})
	if _, err := m.Subscribe("$SYS/broker/uptime", 0); err != nil {
		t.Fatal(err)
	}
	msg, err := m.Receive(5 * time.Second)
	if err != nil || msg.Topic != "$SYS/broker/uptime" {
		t.Fatalf("no $SYS/broker/uptime: %+v %v", msg, err)
	}
}

// TestConnectionLogLines: a client leaving, a peer that speaks no MQTT and
// a connection that stays idle are logged at info level; a port probe that
// closes at once is not.
func TestConnectionLogLines(t *testing.T) {
	port := testutil.FreePort(t)
	_, log := start(t, fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port), 300*time.Millisecond)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	m, err := testutil.DialMQTT(addr, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "leaver", Clean: true}); err != nil || code != 0 {
		t.Fatalf("connect: %d %v", code, err)
	}
	m.Disconnect()
	for _, probe := range [][]byte{{0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5}, []byte("GET / HTTP/1.1\r\n\r\n"), nil} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		c.Write(probe)
		if probe != nil {
			closedByServer(c)
		}
		c.Close()
	}
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	closedByServer(idle)
	idle.Close()
	for i := 0; i < 100 && !strings.Contains(log.String(), "no CONNECT within the connect timeout"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	for _, w := range []string{`level=INFO msg="client disconnected"`, "client=leaver", `reason="client sent DISCONNECT"`,
		`level=INFO msg="client refused: no valid CONNECT"`, "not MQTT (a TLS client on a plain port", "no CONNECT within the connect timeout"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
	if n := strings.Count(log.String(), "no valid CONNECT"); n != 3 {
		t.Errorf("%d 'no valid CONNECT' lines, want 3 (TLS, HTTP, idle; not the probe that closed at once):\n%s", n, log.String())
	}
}

// TestReloadSaysWhatNeedsARestart: options a reload does not apply are
// named in a warning, not silently left at their old values.
func TestReloadSaysWhatNeedsARestart(t *testing.T) {
	port := testutil.FreePort(t)
	conf := func(extra string) string {
		return fmt.Sprintf("max_keepalive 30\nlistener %d 127.0.0.1\nallow_anonymous true\n%s", port, extra)
	}
	b, log := start(t, conf(""), time.Second)
	c, err := confgen.Parse([]byte(strings.Replace(conf("mount_point site/\n"), "max_keepalive 30", "max_keepalive 60", 1)), "new.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, ds := c.Resolve()
	if confgen.HasErrors(ds) {
		t.Fatal(ds)
	}
	if err := b.Reload(r); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"need a restart", "max_keepalive", "mount_point (listener 127.0.0.1:"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log lacks %q:\n%s", w, log.String())
		}
	}
}

// readCA reads the root CA certificate and key of a pki directory.
func readCA(t *testing.T, pkiDir string) (*x509.Certificate, crypto.Signer) {
	t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	cas, err := pki.ParseCerts(caPEM, "ca.crt")
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := pki.ReadKey(filepath.Join(pkiDir, "ca.key"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return cas[0], caKey
}

// writeCRL writes a CRL signed by the CA of pkiDir, revoking serials.
func writeCRL(t *testing.T, pkiDir, path string, serials ...*big.Int) {
	t.Helper()
	ca, caKey := readCA(t, pkiDir)
	var entries []x509.RevocationListEntry
	for _, s := range serials {
		entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: time.Now()})
	}
	der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{Number: big.NewInt(1), ThisUpdate: time.Now().Add(-time.Minute),
		NextUpdate: time.Now().Add(24 * time.Hour), RevokedCertificateEntries: entries}, ca, caKey)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}), 0o644)
}

// TestCRLOfAnotherCAIsRefused: a CRL the listener's CA did not sign would be
// skipped at every handshake, so every certificate it lists would get in.
func TestCRLOfAnotherCAIsRefused(t *testing.T) {
	dir := t.TempDir()
	p, other := filepath.Join(dir, "pki"), filepath.Join(dir, "other")
	for _, d := range []string{p, other} {
		if _, err := (&pki.Dir{Path: d}).Init(pki.InitOptions{Hosts: []string{"localhost"}, CAName: filepath.Base(d) + " CA"}); err != nil {
			t.Fatal(err)
		}
	}
	crl := filepath.Join(dir, "other.crl")
	writeCRL(t, other, crl)
	conf := fmt.Sprintf("listener 8883 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ncrlfile %s\n",
		filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), crl)
	c, err := confgen.Parse([]byte(conf), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Resolve()
	errs := broker.Check(r)
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "t.conf:6:") || !strings.Contains(errs[0].Error(), "not signed by any CA") {
		t.Fatalf("Check = %v, want one error at t.conf:6 about the CRL's signer", errs)
	}
	writeCRL(t, p, crl) // the right CA's CRL is taken
	if errs := broker.Check(r); len(errs) != 0 {
		t.Fatalf("the listener CA's own CRL: %v", errs)
	}
}

// TestCheckReportsCRLThatRefusesClients: config check reports, at the
// crlfile line, a CRL that makes mosquitto and serve refuse clients
// wholesale: expired or not yet valid (errors, with the fix), or no CRL
// from a CA of cafile (a warning: its clients are refused).
func TestCheckReportsCRLThatRefusesClients(t *testing.T) {
	dir := t.TempDir()
	p, other := filepath.Join(dir, "pki"), filepath.Join(dir, "other")
	for _, d := range []string{p, other} {
		if _, err := (&pki.Dir{Path: d}).Init(pki.InitOptions{Hosts: []string{"localhost"}, CAName: filepath.Base(d) + " CA"}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	b, _ := os.ReadFile(filepath.Join(other, "ca.crt"))
	both := filepath.Join(dir, "both.crt")
	os.WriteFile(both, append(a, b...), 0o644)
	now := time.Now()
	crl := filepath.Join(dir, "ca.crl")
	tests := []struct {
		name       string
		from, to   time.Time
		cafile     string
		want       string
		warning    bool
		fixCommand string
	}{
		{"current CRL", now.Add(-time.Hour), now.Add(time.Hour), filepath.Join(p, "ca.crt"), "", false, ""},
		{"expired CRL", now.Add(-48 * time.Hour), now.Add(-24 * time.Hour), filepath.Join(p, "ca.crt"), "expired on", false, "mqttctl pki crl"},
		{"CRL not valid yet", now.Add(24 * time.Hour), now.Add(48 * time.Hour), filepath.Join(p, "ca.crt"), "not valid before", false, "clocks"},
		{"no CRL from the second CA of cafile", now.Add(-time.Hour), now.Add(time.Hour), both, "holds no CRL from CN=other CA", true, "unable to get certificate CRL"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			writeCRLAt(t, p, crl, tt.from, tt.to)
			conf := fmt.Sprintf("listener 8883 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ncrlfile %s\n",
				tt.cafile, filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), crl)
			c, err := confgen.Parse([]byte(conf), "t.conf")
			if err != nil {
				t.Fatal(err)
			}
			r, _ := c.Resolve()
			errs := broker.Check(r)
			if tt.want == "" {
				if len(errs) != 0 {
					t.Fatalf("Check = %v, want nothing", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("Check = %v, want one problem", errs)
			}
			d := confgen.DiagnosticOf(errs[0])
			if d.Pos.Line != 6 || d.Warning != tt.warning || !strings.Contains(d.Msg, tt.want) || !strings.Contains(d.Msg, tt.fixCommand) {
				t.Errorf("Check = %s, want at t.conf:6 (warning %v) %q and %q", d, tt.warning, tt.want, tt.fixCommand)
			}
		})
	}
}

// TestReloadSaysCAFileIsNotReloaded: a SIGHUP after cafile changed says
// that the new CAs are not applied, instead of only "reloaded".
func TestReloadSaysCAFileIsNotReloaded(t *testing.T) {
	dir := t.TempDir()
	p, other := filepath.Join(dir, "pki"), filepath.Join(dir, "other")
	for _, d := range []string{p, other} {
		if _, err := (&pki.Dir{Path: d}).Init(pki.InitOptions{Hosts: []string{"localhost"}, CAName: filepath.Base(d) + " CA"}); err != nil {
			t.Fatal(err)
		}
	}
	cafile := filepath.Join(dir, "cas.crt")
	a, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	os.WriteFile(cafile, a, 0o644)
	port := testutil.FreePort(t)
	conf := fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		port, cafile, filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"))
	b, log := start(t, conf, time.Second)
	c, err := confgen.Parse([]byte(conf), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Resolve()
	if err := b.Reload(r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "cafile or capath changed") {
		t.Fatalf("a reload with the same cafile warned:\n%s", log.String())
	}
	o, _ := os.ReadFile(filepath.Join(other, "ca.crt"))
	os.WriteFile(cafile, append(a, o...), 0o644)
	if err := b.Reload(r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "cafile or capath changed, but a reload does not apply it") || !strings.Contains(log.String(), "not cafile or capath") {
		t.Errorf("the log does not say the new cafile is not applied:\n%s", log.String())
	}
}

// TestUnusablePasswordLineRefusedWithoutItsText: a password_file line that
// is not a user and a hash makes serve refuse the file, as mosquitto 2.1
// does, at start and on reload (a failed Reload keeps the old state); the
// error names the line by its number, never its text (a mangled file may
// hold a secret before its ':').
func TestUnusablePasswordLineRefusedWithoutItsText(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	good, err := confgen.HashPassword([]byte("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	bad := []byte("alice:" + good + "\nSECRET_TOKEN=hunter2:not-a-hash\n")
	if err := os.WriteFile(pw, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\npassword_file %s\n", testutil.FreePort(t), pw)), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Resolve()
	var log bytes.Buffer
	b, err := broker.New(r, broker.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err == nil {
		b.Close()
		t.Fatal("serve started on a password file with an unusable line")
	}
	for _, text := range []string{err.Error(), log.String()} {
		if strings.Contains(text, "hunter2") || strings.Contains(text, "SECRET_TOKEN") {
			t.Fatalf("the line's text is shown:\n%s", text)
		}
	}
	if !strings.Contains(err.Error(), pw+":2: unusable hash") {
		t.Errorf("the error does not name the line: %v", err)
	}
	// On reload the old users stay.
	if err := os.WriteFile(pw, []byte("alice:"+good+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	b, err = broker.New(r, broker.Options{Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := os.WriteFile(pw, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := b.Reload(r); err == nil || !strings.Contains(err.Error(), ":2: unusable hash") {
		t.Errorf("reload with an unusable line: %v", err)
	}
}

// TestOversizedConnectRefused: a client that has not logged in cannot make
// the broker allocate a large CONNECT (`10 ff ff ff 7f` announces 256 MB;
// the engine allocated it as soon as it read the length). The connection
// is closed at once, the broker's allocations stay far below the announced
// size (counted, not timed), and a large but legal CONNECT and packets
// after CONNECT keep their limits.
func TestOversizedConnectRefused(t *testing.T) {
	port := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	_, log := start(t, fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\n", port), 30*time.Second)

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{0x10, 0xff, 0xff, 0xff, 0x7f, 0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(conn) {
		t.Fatal("a CONNECT announcing 256 MB left the connection open (waiting for the rest)")
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 64<<20 {
		t.Errorf("the broker allocated %d MB for a refused CONNECT", d>>20)
	}
	// The log line is written after the connection is closed: wait for it.
	waitLog(t, log, "CONNECT larger than")

	// A legal CONNECT with a 60000-byte will, then a 300 KB publish.
	m, err := testutil.DialMQTT(addr, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "big-will", Clean: true, WillTopic: "w", WillPayload: strings.Repeat("x", 60000)}); err != nil || code != 0 {
		t.Fatalf("a 60 KB CONNECT: code %d, %v", code, err)
	}
	if _, err := m.Publish("t", make([]byte, 300000), 1, false); err != nil {
		t.Fatalf("a 300 KB publish after CONNECT: %v", err)
	}
}

// TestTakeoverDropsQueuedMessagesAcrossRestart: a persistent session
// restored from the persistence store and resumed under another username
// loses the queued messages that user may not read (as mosquitto does at
// connect), and they are gone from the store too: the first owner does
// not get them back after another restart.
func TestTakeoverDropsQueuedMessagesAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	h, err := confgen.HashPassword([]byte("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "passwd"), []byte("alice:"+h+"\nbob:"+h+"\n"), 0o600)
	os.WriteFile(filepath.Join(dir, "acl"), []byte("user alice\ntopic write b/1\ntopic read x/y\n\nuser bob\ntopic read b/#\n"), 0o644)
	port := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	c, err := confgen.Parse([]byte(fmt.Sprintf("persistence true\npersistence_location %[1]s/data/\nlistener %[2]d 127.0.0.1\nallow_anonymous false\npassword_file %[1]s/passwd\nacl_file %[1]s/acl\n", dir, port)), "test.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, ds := c.Resolve()
	if confgen.HasErrors(ds) {
		t.Fatal(ds)
	}
	run := func(step func()) {
		t.Helper()
		b, err := broker.New(r, broker.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		defer b.Close()
		step()
	}
	as := func(user string, clean bool) *testutil.MQTT {
		t.Helper()
		m, err := testutil.DialMQTT(addr, nil, 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: "bobsess", Clean: clean, Username: testutil.Str(user), Password: testutil.Str("pw")}); err != nil || code != 0 {
			t.Fatalf("%s: code %d, %v", user, code, err)
		}
		return m
	}
	run(func() {
		m := as("bob", false)
		if _, err := m.Subscribe("b/#", 1); err != nil {
			t.Fatal(err)
		}
		m.Disconnect()
		p, err := testutil.DialMQTT(addr, nil, 4)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if code, err := p.Connect(testutil.ConnectOptions{ClientID: "pub", Clean: true, Username: testutil.Str("alice"), Password: testutil.Str("pw")}); err != nil || code != 0 {
			t.Fatal(code, err)
		}
		if _, err := p.Publish("b/1", []byte("secret-for-bob"), 1, false); err != nil {
			t.Fatal(err)
		}
	})
	run(func() {
		m := as("alice", false)
		if msg, err := m.Receive(time.Second); err == nil {
			t.Errorf("alice, resuming bob's restored session, got %s %q", msg.Topic, msg.Payload)
		}
		m.Disconnect()
	})
	run(func() {
		m := as("bob", false)
		if msg, err := m.Receive(time.Second); err == nil {
			t.Errorf("bob got %s %q back from the store after alice's take-over dropped it", msg.Topic, msg.Payload)
		}
	})
}
