package broker_test

import (
	"bufio"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// scrape gets /metrics and parses it with the Prometheus text parser.
func scrape(t *testing.T, addr string) map[string]*dto.MetricFamily {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("the scrape does not parse: %v", err)
	}
	return fams
}

// value returns the value of the series of family name with exactly the
// given labels (name=value pairs), and whether there is one.
func value(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		if len(m.Label) != len(labels)/2 {
			continue
		}
		for i := 0; i < len(labels); i += 2 {
			found := false
			for _, l := range m.Label {
				if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount()), true
		}
	}
	return 0, false
}

func certNotAfter(t *testing.T, path string) time.Time {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	certs, err := pki.ParseCerts(data, path)
	if err != nil {
		t.Fatal(err)
	}
	return certs[0].NotAfter
}

func crlNextUpdate(t *testing.T, path string) time.Time {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	if b == nil {
		t.Fatalf("%s: no PEM", path)
	}
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return crl.NextUpdate
}

// TestMetrics scrapes a broker after connecting two certificate clients of
// known notAfter, refusing a revoked certificate and a wrong password, and
// relaying N messages, and checks each value against what it did.
func TestMetrics(t *testing.T) {
	f := brokertest.NewFixture(t, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"gone"},
		Passwords: map[string]string{"alice": "right"}})
	d := &pki.Dir{Path: f.PKI}
	now := time.Now()
	for _, c := range []struct {
		name string
		days int
	}{{"soon", 5}, {"later", 60}} {
		if _, err := d.Issue(pki.IssueOptions{Profile: pki.ProfileClient, Name: c.name, NotAfter: now.Add(time.Duration(c.days) * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := d.Revoke(pki.RevokeOptions{Name: "gone"}); err != nil {
		t.Fatal(err)
	}
	ports := testutil.FreePorts(t, 2)
	crlFile := filepath.Join(f.PKI, "crl.pem")
	c, err := confgen.Parse([]byte(fmt.Sprintf(`allow_anonymous false
password_file %s
listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
crlfile %s
require_certificate true
use_identity_as_username true
listener %d 127.0.0.1
`, f.Passwd, ports[0], filepath.Join(f.PKI, "ca.crt"), filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key"), crlFile, ports[1])), "metrics.conf")
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, c, nil, broker.Options{Metrics: true})
	ms, err := b.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	mtls, plain := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])

	clients := map[string]*testutil.MQTT{}
	for _, name := range []string{"soon", "later"} {
		m, err := testutil.DialMQTT(mtls, testutil.ClientTLS(t, f.PKI, name), 4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(m.Close)
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: name, Clean: true}); err != nil || code != 0 {
			t.Fatalf("%s: CONNACK %d, %v", name, code, err)
		}
		clients[name] = m
	}
	// refused: a revoked certificate, a wrong password
	if m, err := testutil.DialMQTT(mtls, testutil.ClientTLS(t, f.PKI, "gone"), 4); err == nil {
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: "gone", Clean: true}); err == nil {
			t.Fatalf("the revoked client got CONNACK %d", code)
		}
		m.Close()
	}
	m, err := testutil.DialMQTT(plain, nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "alice", Username: testutil.Str("alice"), Password: testutil.Str("wrong"), Clean: true}); err != nil || code != 5 {
		t.Fatalf("wrong password: CONNACK %d, %v; want 5", code, err)
	}
	m.Close()

	const n = 7
	if code, err := clients["later"].Subscribe("m/#", 1); err != nil || code > 2 {
		t.Fatalf("SUBACK %d, %v", code, err)
	}
	for i := range n {
		if _, err := clients["soon"].Publish("m/x", []byte{byte(i)}, 1, false); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		if _, err := clients["later"].Receive(5 * time.Second); err != nil {
			t.Fatal(err)
		}
	}

	// The server counts the revoked client's refusal after it sent its
	// TLS alert, which the client may read first: wait for it.
	fams := scrape(t, ms.Addr())
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); fams = scrape(t, ms.Addr()) {
		if v, _ := value(fams, "mqttctl_refusals_total", "listener", fmt.Sprintf("127.0.0.1:%d", ports[0]), "reason", "revoked"); v >= 1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	soon := certNotAfter(t, filepath.Join(f.PKI, "clients", "soon.crt"))
	want := []struct {
		name   string
		labels []string
		value  float64
	}{
		{"mqttctl_clients_connected", []string{"listener", mtls}, 2},
		{"mqttctl_clients_connected", []string{"listener", plain}, 0},
		{"mqttctl_connects_total", []string{"listener", mtls}, 2},
		{"mqttctl_connects_total", []string{"listener", plain}, 0},
		{"mqttctl_refusals_total", []string{"listener", mtls, "reason", "revoked"}, 1},
		{"mqttctl_refusals_total", []string{"listener", plain, "reason", "bad-username-or-password"}, 1},
		{"mqttctl_refusals_total", []string{"listener", mtls, "reason", "bad-username-or-password"}, 0},
		{"mqttctl_messages_received_total", nil, n},
		{"mqttctl_messages_sent_total", nil, n},
		{"mqttctl_messages_dropped_total", nil, 0},
		{"mqttctl_tls_handshake_seconds", nil, 2}, // the revoked client's failed
		{"mqttctl_client_cert_earliest_expiry_timestamp_seconds", nil, float64(soon.Unix())},
		{"mqttctl_client_certs", []string{"days_left", "0-7"}, 1},
		{"mqttctl_client_certs", []string{"days_left", "30-90"}, 1},
		{"mqttctl_client_certs", []string{"days_left", "expired"}, 0},
		{"mqttctl_crl_next_update_timestamp_seconds", []string{"file", crlFile, "issuer", "CN=mqttctl Root CA,O=mqttctl"}, float64(crlNextUpdate(t, crlFile).Unix())},
		{"mqttctl_server_cert_expiry_timestamp_seconds", []string{"listener", mtls, "file", filepath.Join(f.PKI, "server.crt")},
			float64(certNotAfter(t, filepath.Join(f.PKI, "server.crt")).Unix())},
		{"mqttctl_ca_cert_expiry_timestamp_seconds", []string{"listener", mtls, "subject", "CN=mqttctl Root CA,O=mqttctl"},
			float64(certNotAfter(t, filepath.Join(f.PKI, "ca.crt")).Unix())},
	}
	for _, w := range want {
		got, ok := value(fams, w.name, w.labels...)
		if !ok || got != w.value {
			t.Errorf("%s%v = %v (present %v), want %v", w.name, w.labels, got, ok, w.value)
		}
	}
	// every refusal series is a reason of the fixed set
	refusals := 0.0
	for _, m := range fams["mqttctl_refusals_total"].GetMetric() {
		refusals += m.GetCounter().GetValue()
	}
	if refusals != 2 {
		t.Errorf("refusals in all: %v, want 2", refusals)
	}
	if got := len(fams["mqttctl_refusals_total"].GetMetric()); got != 2*len(broker.RefusalNamesForTest) {
		t.Errorf("%d refusal series, want %d (2 listeners × the fixed reasons)", got, 2*len(broker.RefusalNamesForTest))
	}
}

// TestMetricsOff: without Options.Metrics nothing is counted (the
// handshake, connect and refusal series are absent); what the engine counts
// anyway is still served.
func TestMetricsOff(t *testing.T) {
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)), "off.conf")
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, c, nil, broker.Options{})
	ms, err := b.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	fams := scrape(t, ms.Addr())
	for _, name := range []string{"mqttctl_connects_total", "mqttctl_refusals_total", "mqttctl_tls_handshake_seconds"} {
		if fams[name] != nil {
			t.Errorf("%s is served with metrics off", name)
		}
	}
	if fams["mqttctl_messages_received_total"] == nil {
		t.Error("mqttctl_messages_received_total is missing")
	}
}

// TestMetricsHostileRequest: a request with headers past the limit gets
// 431 at once, and one that never finishes its headers is cut off; the
// endpoint still answers a scrape.
func TestMetricsHostileRequest(t *testing.T) {
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\n", port)), "hostile.conf")
	if err != nil {
		t.Fatal(err)
	}
	b := brokertest.Start(t, c, nil, broker.Options{Metrics: true})
	ms, err := b.ServeMetrics("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ms.Close() })
	conn, err := net.Dial("tcp", ms.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	huge := "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"
	go func() { _, _ = io.WriteString(conn, huge) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 1 MiB header: %s, want 431", resp.Status)
	}
	if fams := scrape(t, ms.Addr()); fams["mqttctl_clients_connected"] == nil {
		t.Error("no scrape after the hostile request")
	}
}

// TestRefusalReasons: the reason label is a small fixed set of distinct,
// plain values (bounded cardinality, whatever clients send).
func TestRefusalReasons(t *testing.T) {
	seen := map[string]bool{}
	for i, r := range broker.RefusalNamesForTest {
		if r == "" || strings.Trim(r, "abcdefghijklmnopqrstuvwxyz-") != "" || seen[r] {
			t.Errorf("reason %d %q: empty, not lower-case-with-hyphens, or a duplicate", i, r)
		}
		seen[r] = true
	}
}
