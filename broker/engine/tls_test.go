package engine_test

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
)

// testPKI is a CA, a server certificate for 127.0.0.1 and a client
// certificate with CN "device-1", written as PEM files into dir.
func testPKI(t testing.TB, dir string) (server, client *tls.Config) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey := key()
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) (tls.Certificate, []byte, []byte) {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name}, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			KeyUsage: x509.KeyUsageDigitalSignature, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
		if usage == x509.ExtKeyUsageServerAuth {
			tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kd, _ := x509.MarshalECPrivateKey(k)
		certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
		keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})
		c, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		return c, certPEM, keyPEM
	}
	sc, _, _ := leaf("127.0.0.1", 2, x509.ExtKeyUsageServerAuth)
	cc, ccPEM, ckPEM := leaf("device-1", 3, x509.ExtKeyUsageClientAuth)
	for name, b := range map[string][]byte{"ca.crt": pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), "client.crt": ccPEM, "client.key": ckPEM} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	server = &tls.Config{Certificates: []tls.Certificate{sc}, ClientCAs: pool, ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}
	client = &tls.Config{Certificates: []tls.Certificate{cc}, RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// identityHooks is use_identity_as_username: the certificate's CN is the
// username, and it may publish under its own name only.
type identityHooks struct{ engine.NopHooks }

func (identityHooks) Authenticate(r *engine.ConnectRequest) engine.Verdict {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return engine.Verdict{Code: mw.BadUsernameOrPassword}
	}
	return engine.Verdict{SetUsername: true, Username: r.TLS.PeerCertificates[0].Subject.CommonName, HasUsername: true}
}

func (identityHooks) MayPublish(c *engine.Client, t string) bool {
	return strings.HasPrefix(t, c.Username+"/")
}

// TestMutualTLS: the seam gets the connection's TLS state before the
// session: the client certificate's CN becomes the username the ACL sees.
func TestMutualTLS(t *testing.T) {
	sconf, cconf := testPKI(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := engine.New(engine.Options{Hooks: identityHooks{}})
	go s.Serve(tls.NewListener(ln, sconf))
	defer s.Close()
	c, err := tls.Dial("tcp", ln.Addr().String(), cconf)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc := &scriptClient{c: c, r: bufio.NewReader(c), v: 5}
	var got []string
	for _, p := range []*mw.Packet{connect("anything", true, user("ignored")), publish("device-1/t", "mine", 1, false, 1), publish("device-2/t", "theirs", 1, false, 2)} {
		p.Version = 5
		if _, err := c.Write(p.Append(nil)); err != nil {
			t.Fatal(err)
		}
		got = append(got, readOne(sc, 3*time.Second))
	}
	want := []string{"CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "PUBACK id=1 rc=0x10", "PUBACK id=2 rc=0x87"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without a client certificate the handshake fails.
	noCert := cconf.Clone()
	noCert.Certificates = nil
	if c2, err := tls.Dial("tcp", ln.Addr().String(), noCert); err == nil {
		_ = c2.SetReadDeadline(time.Now().Add(3 * time.Second))
		if _, err := c2.Read(make([]byte, 1)); err == nil {
			t.Error("a client without a certificate was served")
		}
		c2.Close()
	}
}

// TestIdleMemoryTLS prints what the engine holds per idle mutual-TLS
// connection (TLS 1.3, ECDSA P-256 certificates): 2000 clients in a child
// process connect, CONNECT and subscribe; this process's heap and stack,
// and its RSS, are read before and after (go test -run TestIdleMemoryTLS
// -v ./broker/engine). It fails only above 40 KB per connection.
func TestIdleMemoryTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2000 TLS connections")
	}
	const n = 2000
	dir := t.TempDir()
	sconf, _ := testPKI(t, dir)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := engine.New(engine.Options{})
	go s.Serve(tls.NewListener(ln, sconf))
	defer s.Close()
	// A first connection warms the pools and the TLS machinery.
	child := func(count int) (*exec.Cmd, func()) {
		cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientsHelper$")
		cmd.Env = append(os.Environ(), "ENGINE_IDLE_ADDR="+ln.Addr().String(), "ENGINE_IDLE_DIR="+dir, "ENGINE_IDLE_N="+strconv.Itoa(count))
		stdin, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for sc.Scan() && !strings.Contains(sc.Text(), "ready") {
		}
		return cmd, func() { stdin.Close(); _ = cmd.Wait() }
	}
	_, stop := child(1)
	stop()
	time.Sleep(200 * time.Millisecond)
	heap0, rss0 := memInUse(), rss()
	_, stop = child(n)
	defer stop()
	time.Sleep(500 * time.Millisecond)
	heap1, rss1 := memInUse(), rss()
	if f := os.Getenv("ENGINE_HEAP_PROFILE"); f != "" {
		pf, _ := os.Create(f)
		_ = pprof.WriteHeapProfile(pf)
		pf.Close()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	perHeap := float64(heap1-heap0) / n
	t.Logf("%d idle mutual-TLS MQTT 3.1.1 connections (subscribed): %.0f B of heap and stack each (goroutine stacks %.0f B each), RSS %.0f B each (RSS moves with the GC: the heap figure is the one to compare); %d sessions",
		n, perHeap, float64(ms.StackInuse)/float64(runtime.NumGoroutine()), (float64(rss1)-float64(rss0))/n, s.Sessions())
	if s.Sessions() != n {
		t.Errorf("%d sessions, want %d", s.Sessions(), n)
	}
	if perHeap > 40<<10 {
		t.Errorf("%.0f B per idle TLS connection", perHeap)
	}
}

// rss is this process's resident set size (bytes).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// TestIdleClientsHelper is TestIdleMemoryTLS's child: it holds
// ENGINE_IDLE_N mutual-TLS clients until its standard input closes.
func TestIdleClientsHelper(t *testing.T) {
	addr := os.Getenv("ENGINE_IDLE_ADDR")
	if addr == "" {
		t.Skip("the child of TestIdleMemoryTLS")
	}
	dir := os.Getenv("ENGINE_IDLE_DIR")
	n, _ := strconv.Atoi(os.Getenv("ENGINE_IDLE_N"))
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.crt"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: "127.0.0.1"}
	var conns []net.Conn
	for i := range n {
		c, err := tls.Dial("tcp", addr, conf)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		b := (&mw.Packet{Type: mw.CONNECT, Version: 4, CleanStart: true, Keepalive: 60, ClientID: fmt.Appendf(nil, "tls-%d", i)}).Append(nil)
		b = (&mw.Packet{Type: mw.SUBSCRIBE, Version: 4, ID: 1, Subs: []mw.Subscription{{Filter: fmt.Appendf(nil, "idle/%d", i), QoS: 1}}}).Append(b)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 9)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := readFull(c, got); err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	fmt.Println("ready")
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	for _, c := range conns {
		c.Close()
	}
}

// TestTLSIdleWait: the idle wait below crypto/tls keeps every behaviour:
// packets pipelined in one record and in many, keepalive, takeover.
func TestTLSIdleWait(t *testing.T) {
	sconf, cconf := testPKI(t, t.TempDir())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := engine.New(engine.Options{})
	go s.Serve(tls.NewListener(ln, sconf))
	defer s.Close()
	dial := func() (*tls.Conn, *scriptClient) {
		c, err := tls.Dial("tcp", ln.Addr().String(), cconf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c, &scriptClient{c: c, r: bufio.NewReader(c), v: 5}
	}
	write := func(c *tls.Conn, ps ...*mw.Packet) {
		var b []byte
		for _, p := range ps {
			q := *p
			q.Version = 5
			b = q.Append(b)
		}
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	a, ra := dial()
	write(a, connect("tls-a", true))
	got = append(got, "a: "+readOne(ra, 3*time.Second))
	time.Sleep(50 * time.Millisecond) // idle: the reader waits on the socket
	// Three packets in one record.
	write(a, subscribe(1, "tw/#", 0), publish("tw/1", "one record", 0, false, 0), pingreq)
	for range 3 {
		got = append(got, "a: "+readOne(ra, 3*time.Second))
	}
	// Three records in a row.
	write(a, publish("tw/2", "r1", 0, false, 0))
	write(a, publish("tw/2", "r2", 0, false, 0))
	write(a, pingreq)
	for range 3 {
		got = append(got, "a: "+readOne(ra, 3*time.Second))
	}
	// A record with more than the read buffer holds, then a packet.
	write(a, publish("tw/3", strings.Repeat("x", 10000), 0, false, 0), pingreq)
	for range 2 {
		l := readOne(ra, 3*time.Second)
		if len(l) > 40 {
			l = l[:40]
		}
		got = append(got, "a: "+l)
	}
	// Keepalive while waiting on the socket.
	k, rk := dial()
	write(k, connect("tls-k", true, keepalive(1)))
	got = append(got, "k: "+readOne(rk, 3*time.Second), "k: "+readOne(rk, 5*time.Second))
	// Takeover of a connection waiting on the socket.
	b, rb := dial()
	write(b, connect("tls-a", true))
	got = append(got, "b: "+readOne(rb, 3*time.Second), "a: "+readOne(ra, 3*time.Second), "a: "+readOne(ra, 3*time.Second))
	want := []string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: SUBACK id=1 00", `a: PUBLISH q0 tw/1 "one record"`,
		"a: PINGRESP", `a: PUBLISH q0 tw/2 "r1"`, `a: PUBLISH q0 tw/2 "r2"`, "a: PINGRESP",
		`a: PUBLISH q0 tw/3 "xxxxxxxxxxxxxxxxxxxxxxx`, "a: PINGRESP",
		"k: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "k: closed",
		"b: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: DISCONNECT rc=0x8e", "a: closed"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
