package broker_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// TestLiveRevocationAndRenewal: with no signal sent, a revoked client is
// disconnected and cannot come back, a renewed server certificate is served
// to new handshakes while connected clients stay, and an unreadable CRL
// lets nobody new in until it is fixed.
func TestLiveRevocationAndRenewal(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	d := &pki.Dir{Path: p}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice", "bob"}}); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ncrlfile %s\n",
		port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), filepath.Join(p, "crl.pem"))), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	log := &testutil.SyncBuffer{}
	brokertest.Start(t, c, log, broker.Options{WatchInterval: 100 * time.Millisecond})
	caPEM, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	var lastServerSerial string
	n := 0
	dial := func(name string) (*testutil.MQTT, error) {
		cert, err := tls.LoadX509KeyPair(filepath.Join(p, "clients", name+".crt"), filepath.Join(p, "clients", name+".key"))
		if err != nil {
			t.Fatal(err)
		}
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: roots, ServerName: "localhost", Certificates: []tls.Certificate{cert}}, 4)
		if err != nil {
			return nil, err
		}
		lastServerSerial = m.Conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Text(16)
		n++
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: fmt.Sprintf("%s-%d", name, n), Clean: true}); err != nil || code != 0 {
			m.Close()
			return nil, fmt.Errorf("CONNACK %d, %v", code, err)
		}
		return m, nil
	}
	alice, err := dial("alice")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	bob, err := dial("bob")
	if err != nil {
		t.Fatal(err)
	}
	defer bob.Close()
	firstSerial := lastServerSerial

	if _, _, err := d.Revoke(pki.RevokeOptions{Name: "bob", Reason: "keyCompromise"}); err != nil {
		t.Fatal(err)
	}
	if !closedByServer(bob.Conn) {
		t.Fatal("revoked bob stayed connected")
	}
	if !alice.Alive() {
		t.Fatal("alice was disconnected by bob's revocation")
	}
	if _, err := dial("bob"); err == nil {
		t.Fatal("revoked bob connected again")
	}
	waitLog(t, log, "its certificate is revoked")

	// Renewal: the new certificate is served at once; alice stays.
	if _, err := d.Renew(pki.RenewOptions{Name: "server", Rekey: true}); err != nil {
		t.Fatal(err)
	}
	waitLog(t, log, "certificate reloaded")
	m, err := dial("alice")
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	if lastServerSerial == firstSerial {
		t.Error("a new handshake still got the old server certificate")
	}
	if !alice.Alive() {
		t.Error("the renewal disconnected alice")
	}

	// A broken CRL: nobody new gets in, loudly; a good one lets them in.
	if err := os.WriteFile(filepath.Join(p, "crl.pem"), []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, log, "CRL unusable")
	if _, err := dial("alice"); err == nil {
		t.Error("a client got in while the CRL was unreadable")
	}
	// The fix pki crl gives for a damaged crl.pem: move it away (it would
	// not write a CRL over one it cannot read), then write a new one.
	if _, err := d.WriteCRL(0); err == nil || !strings.Contains(err.Error(), "move it away") {
		t.Fatalf("pki crl over a damaged crl.pem: %v, want a refusal saying to move it away", err)
	}
	if err := os.Rename(filepath.Join(p, "crl.pem"), filepath.Join(p, "crl.pem.bad")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.WriteCRL(0); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 50; i++ {
		if m, err = dial("alice"); err == nil {
			m.Close()
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Errorf("alice refused after the CRL was fixed: %v\n%s", err, log.String())
	}
}

func waitLog(t *testing.T, log *testutil.SyncBuffer, text string) {
	t.Helper()
	for i := 0; i < 250 && !strings.Contains(log.String(), text); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), text) {
		t.Fatalf("log lacks %q:\n%s", text, log.String())
	}
}

// TestRevokedClientCannotResume: a client that resumes a TLS session (a
// ticket from before its revocation) is refused like a full handshake.
func TestRevokedClientCannotResume(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	d := &pki.Dir{Path: p}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"carol"}}); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ncrlfile %s\n",
		port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), filepath.Join(p, "crl.pem"))), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, c, nil, broker.Options{WatchInterval: 100 * time.Millisecond})
	clientTLS := testutil.ClientTLS(t, p, "carol")
	cache := tls.NewLRUClientSessionCache(4)
	dial := func(cache tls.ClientSessionCache) (resumed bool, err error) {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), withCache(clientTLS, cache), 4)
		if err != nil {
			return false, err
		}
		defer m.Close()
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: "carol", Clean: true}); err != nil || code != 0 {
			return false, fmt.Errorf("CONNACK %d, %v", code, err)
		}
		return m.Conn.(*tls.Conn).ConnectionState().DidResume, nil
	}
	if _, err := dial(cache); err != nil {
		t.Fatal(err)
	}
	if resumed, err := dial(cache); err != nil || !resumed {
		t.Fatalf("a second connection did not resume (resumed=%v, %v)", resumed, err)
	}
	if _, _, err := d.Revoke(pki.RevokeOptions{Name: "carol"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ { // until the broker has read the new CRL
		if _, err := dial(nil); err != nil {
			break
		}
		if i == 100 {
			t.Fatal("carol is still let in with a full handshake")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if resumed, err := dial(cache); err == nil {
		t.Fatalf("revoked carol got in by resuming a session (resumed=%v)", resumed)
	}
}

// TestResumptionSurvivesRestart: with persistence, the ticket a client got
// before a restart resumes its session after it (a reconnect storm costs
// resumed handshakes), and the client's identity still comes from its
// certificate.
func TestResumptionSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"dave"}}); err != nil {
		t.Fatal(err)
	}
	port := testutil.FreePort(t)
	conf := fmt.Sprintf("persistence true\npersistence_location %s/\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\ncrlfile %s\n",
		filepath.Join(dir, "data"), port, filepath.Join(p, "ca.crt"), filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), filepath.Join(p, "crl.pem"))
	var logged testutil.SyncBuffer
	start := func() *broker.Broker {
		c, err := confgen.Parse([]byte(conf), "t.conf")
		if err != nil {
			t.Fatal(err)
		}
		r, ds := c.Resolve()
		if confgen.HasErrors(ds) {
			t.Fatal(ds)
		}
		logged.Reset()
		b, err := broker.New(r, broker.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Start(); err != nil {
			t.Fatal(err)
		}
		return b
	}
	clientTLS := testutil.ClientTLS(t, p, "dave")
	cache := tls.NewLRUClientSessionCache(4)
	dial := func() (bool, error) {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), withCache(clientTLS, cache), 4)
		if err != nil {
			return false, err
		}
		defer m.Close()
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: "dave", Clean: true}); err != nil || code != 0 {
			return false, fmt.Errorf("CONNACK %d, %v", code, err)
		}
		return m.Conn.(*tls.Conn).ConnectionState().DidResume, nil
	}
	b := start()
	if _, err := dial(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	b = start()
	defer func() { b.Close() }() // the last b started
	if resumed, err := dial(); err != nil || !resumed {
		t.Fatalf("after a restart the session was not resumed (resumed=%v, %v)", resumed, err)
	}
	tickets := filepath.Join(dir, "data", broker.DefaultPersistenceFile+".tickets")
	if st, err := os.Stat(tickets); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("ticket key file: %v", err)
	}

	// The data directory may be writable by another account (mqttctl up:
	// root:mosquitto 0770). A key file serve did not write is never used:
	// whoever wrote it could forge a ticket carrying any client's
	// certificate. Here the file holds the very key dave's ticket was made
	// with, so resuming would succeed if the file were used.
	b.Close()
	planted, err := os.ReadFile(tickets)
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if err := os.Chown(tickets, 65534, 65534); err != nil { // what the other account's own file looks like
			t.Fatal(err)
		}
	} else {
		defer broker.SetEUIDForTest(os.Geteuid() + 1)()
	}
	if err := os.Chmod(filepath.Join(dir, "data"), 0o770); err != nil { // as mqttctl up made it before it was sticky
		t.Fatal(err)
	}
	b = start()
	if !strings.Contains(logged.String(), "not sticky") || !strings.Contains(logged.String(), "chmod +t") {
		t.Errorf("no warning about a group-writable persistence_location:\n%s", logged.String())
	}
	if resumed, err := dial(); err != nil || resumed {
		t.Fatalf("a ticket key file owned by another account was used (resumed=%v, %v)", resumed, err)
	}
	if !strings.Contains(logged.String(), "REFUSED TLS ticket keys") || !strings.Contains(logged.String(), "owned by uid") {
		t.Fatalf("no loud log line for the planted key file:\n%s", logged.String())
	}
	if now, err := os.ReadFile(tickets); err != nil || bytes.Equal(now, planted) {
		t.Fatalf("the planted key file was not replaced by new keys (%v)", err)
	}
	if st, err := os.Stat(tickets); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new ticket key file: %v", err)
	} else if uid, _, _ := fsx.Owner(st); uid != os.Geteuid() {
		t.Fatalf("new ticket key file owned by uid %d", uid)
	}
}

// withCache is conf resuming TLS sessions from cache.
func withCache(conf *tls.Config, cache tls.ClientSessionCache) *tls.Config {
	c := conf.Clone()
	c.ClientSessionCache = cache
	return c
}
