package diagnose_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/diagnose"
)

// TestCheckNonMQTTPeers: check names what it reached when that is not an
// MQTT broker, with a fix line, and the timeout bounds the whole check.
func TestCheckNonMQTTPeers(t *testing.T) {
	web := httptest.NewServer(http.NotFoundHandler())
	defer web.Close()
	webTLS := httptest.NewTLSServer(http.NotFoundHandler())
	defer webTLS.Close()
	// A port that accepts and then never says anything.
	mute, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	var (
		mu   sync.Mutex
		held []net.Conn
	)
	go func() {
		for {
			c, err := mute.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	hostPort := func(u string) string { return strings.TrimPrefix(strings.TrimPrefix(u, "https://"), "http://") }
	// Go's HTTP server waits for a request line, so a CONNECT sent to it
	// gets no answer at all: "silent" is then the honest diagnosis. What
	// must never be said is that the port speaks MQTT.
	tests := []struct {
		name, url string
		codes     []string
	}{
		{"mqtts:// to an HTTPS server", "mqtts://" + hostPort(webTLS.URL), []string{"unknown-server-ca", "silent", "not-mqtt"}},
		{"mqtts:// to a plain HTTP server", "mqtts://" + hostPort(web.URL), []string{"not-mqtt"}},
		{"mqtt:// to a plain HTTP server", "mqtt://" + hostPort(web.URL), []string{"silent", "not-mqtt"}},
		{"mqtts:// to a port that accepts and hangs", "mqtts://" + mute.Addr().String(), []string{"silent"}},
		{"mqtt:// to a port that accepts and hangs", "mqtt://" + mute.Addr().String(), []string{"silent"}},
	}
	const timeout = time.Second
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			start := time.Now()
			r, err := diagnose.Check(context.Background(), diagnose.Options{URL: tt.url, Timeout: timeout})
			took := time.Since(start)
			if err != nil {
				t.Fatal(err)
			}
			if len(r.Problems) == 0 {
				t.Fatal("no problem reported")
			}
			for _, p := range r.Problems {
				if !slices.Contains(tt.codes, p.Code) || p.Fix == "" {
					t.Errorf("problem %q (%s), want one of %q, each with a fix", p.Code, p.Message, tt.codes)
				}
			}
			// The deadline covers every step (it once applied per step:
			// 2x over plain, 5x over TLS).
			if took > timeout+timeout/2 {
				t.Errorf("took %s with --timeout %s", took, timeout)
			}
		})
	}
	mu.Lock()
	for _, c := range held {
		c.Close()
	}
	mu.Unlock()
}
