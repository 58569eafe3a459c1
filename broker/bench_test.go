package broker_test

import (
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/mlkem"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/loadgen"
)

// mtlsTarget starts an mTLS broker (with a crlfile, as config mosquitto
// writes) and returns a load target for it. With metrics, the broker counts
// for --metrics and /metrics is scraped every 100 ms (150 times Prometheus'
// default rate) while the benchmark runs.
func mtlsTarget(b *testing.B, metrics bool) loadgen.Target {
	b.Helper()
	f := brokertest.NewFixture(b, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"bench"}})
	port := testutil.FreePort(b)
	c, err := confgen.Parse([]byte(fmt.Sprintf(`listener %d 127.0.0.1
cafile %s
certfile %s
keyfile %s
crlfile %s
require_certificate true
use_identity_as_username true
`, port, filepath.Join(f.PKI, "ca.crt"), filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key"), filepath.Join(f.PKI, "crl.pem"))), "bench.conf")
	if err != nil {
		b.Fatal(err)
	}
	br := brokertest.Start(b, c, nil, broker.Options{Metrics: metrics})
	if metrics {
		scrapeEvery(b, br, 100*time.Millisecond)
	}
	return loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: testutil.ClientTLS(b, f.PKI, "bench")}
}

// scrapeEvery serves the broker's metrics and scrapes them every d until
// the benchmark ends.
func scrapeEvery(b *testing.B, br *broker.Broker, d time.Duration) {
	ms, err := br.ServeMetrics("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				if resp, err := http.Get("http://" + ms.Addr() + "/metrics"); err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
			}
		}
	}()
	b.Cleanup(func() {
		close(stop)
		<-done
		ms.Close()
	})
}

var metricsModes = []struct {
	name string
	on   bool
}{{"metrics=off", false}, {"metrics=on", true}}

// BenchmarkMTLSHandshake is a full TLS 1.3 handshake with a client
// certificate, CONNECT, CONNACK and DISCONNECT, client and broker in this
// process (go test -bench MTLSHandshake -cpuprofile shows the broker's
// share).
func BenchmarkMTLSHandshake(b *testing.B) {
	for _, resume := range []bool{false, true} {
		for _, mm := range metricsModes {
			benchHandshake(b, resume, mm.name, mm.on)
		}
	}
}

func benchHandshake(b *testing.B, resume bool, mode string, metrics bool) {
	b.Run(map[bool]string{false: "full", true: "resumed"}[resume]+"/"+mode, func(b *testing.B) {
		tg := mtlsTarget(b, metrics)
		if resume {
			tg.TLS.ClientSessionCache = tls.NewLRUClientSessionCache(1)
			if _, err := loadgen.Handshake(context.Background(), tg, "warm"); err != nil {
				b.Fatal(err)
			}
		}
		resumed := 0
		for b.Loop() {
			r, err := loadgen.Handshake(context.Background(), tg, "bench")
			if err != nil {
				b.Fatal(err)
			}
			if r {
				resumed++
			}
		}
		if resume && resumed == 0 {
			b.Fatal("no handshake resumed a session")
		}
	})
}

// BenchmarkQoS1FanOut: 4 publishers to 4 subscribers at QoS 1, messages
// received per second, without and with metrics.
func BenchmarkQoS1FanOut(b *testing.B) {
	for _, mm := range metricsModes {
		b.Run(mm.name, func(b *testing.B) {
			tg := mtlsTarget(b, mm.on)
			for b.Loop() {
				r, err := loadgen.PubSub(context.Background(), tg, loadgen.PubSubOptions{Publishers: 4, Subscribers: 4, QoS: 1, Size: 64, Duration: time.Second})
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(r.PerSecond(), "msg/s")
				b.ReportMetric(float64(r.Lost), "lost")
			}
		})
	}
}

// BenchmarkHandshakeCryptoFloor is the public-key work the broker's side of
// one full TLS 1.3 mutual-TLS handshake cannot avoid with crypto/tls and
// P-256 certificates: its key share (X25519 key pair and shared secret,
// plus the ML-KEM-768 encapsulation of the hybrid group Go clients offer),
// two ECDSA verifications (the client certificate's signature by the CA
// and the client's CertificateVerify) and one signature (the server's
// CertificateVerify). Sum the sub-benchmarks for the floor under "broker
// CPU per full handshake" in scripts/bench-vs-mosquitto.sh.
func BenchmarkHandshakeCryptoFloor(b *testing.B) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("transcript"))
	sig, err := ecdsa.SignASN1(rand.Reader, key, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	peer, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		b.Fatal(err)
	}
	ek := dk.EncapsulationKey().Bytes()
	b.Run("x25519-keyshare", func(b *testing.B) {
		for b.Loop() {
			k, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := k.ECDH(peer.PublicKey()); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mlkem768-encapsulate", func(b *testing.B) {
		for b.Loop() {
			k, err := mlkem.NewEncapsulationKey768(ek)
			if err != nil {
				b.Fatal(err)
			}
			k.Encapsulate()
		}
	})
	b.Run("ecdsa-p256-verify-x2", func(b *testing.B) {
		for b.Loop() {
			for range 2 {
				if !ecdsa.VerifyASN1(&key.PublicKey, digest[:], sig) {
					b.Fatal("signature does not verify")
				}
			}
		}
	})
	b.Run("ecdsa-p256-sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, key, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMetricsScrape is one scrape of /metrics with 200 mTLS clients
// connected: the work is per connected client (its certificate's
// notAfter), on the scraper's goroutine, none on the MQTT path.
func BenchmarkMetricsScrape(b *testing.B) {
	f := brokertest.NewFixture(b, brokertest.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"bench"}})
	port := testutil.FreePort(b)
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		port, filepath.Join(f.PKI, "ca.crt"), filepath.Join(f.PKI, "server.crt"), filepath.Join(f.PKI, "server.key"))), "bench.conf")
	if err != nil {
		b.Fatal(err)
	}
	br := brokertest.Start(b, c, nil, broker.Options{Metrics: true})
	conf := testutil.ClientTLS(b, f.PKI, "bench")
	for i := range 200 {
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), conf, 4)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(m.Close)
		if code, err := m.Connect(testutil.ConnectOptions{ClientID: fmt.Sprint("c", i), Clean: true, Keepalive: 600}); err != nil || code != 0 {
			b.Fatalf("CONNACK %d, %v", code, err)
		}
	}
	ms, err := br.ServeMetrics("127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ms.Close() })
	url := "http://" + ms.Addr() + "/metrics"
	var size int64
	for b.Loop() {
		resp, err := http.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		size, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
