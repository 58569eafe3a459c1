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
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testbroker"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/loadgen"
)

// mtlsTarget starts an mTLS broker (with a crlfile, as config mosquitto
// writes) and returns a load target for it.
func mtlsTarget(b *testing.B) loadgen.Target {
	b.Helper()
	f := testbroker.NewFixture(b, testbroker.FixtureOptions{Hosts: []string{"localhost"}, Clients: []string{"bench"}})
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
	testbroker.Start(b, c, nil, broker.Options{})
	return loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", port), TLS: testutil.ClientTLS(b, f.PKI, "bench")}
}

// BenchmarkMTLSHandshake is a full TLS 1.3 handshake with a client
// certificate, CONNECT, CONNACK and DISCONNECT, client and broker in this
// process (go test -bench MTLSHandshake -cpuprofile shows the broker's
// share).
func BenchmarkMTLSHandshake(b *testing.B) {
	for _, resume := range []bool{false, true} {
		b.Run(map[bool]string{false: "full", true: "resumed"}[resume], func(b *testing.B) {
			tg := mtlsTarget(b)
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
}

// BenchmarkQoS1FanOut: 4 publishers to 4 subscribers at QoS 1, messages
// received per second.
func BenchmarkQoS1FanOut(b *testing.B) {
	tg := mtlsTarget(b)
	for b.Loop() {
		r, err := loadgen.PubSub(context.Background(), tg, loadgen.PubSubOptions{Publishers: 4, Subscribers: 4, QoS: 1, Size: 64, Duration: time.Second})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.PerSecond(), "msg/s")
		b.ReportMetric(float64(r.Lost), "lost")
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
