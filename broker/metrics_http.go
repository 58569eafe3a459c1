package broker

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MetricsHandler serves the broker's metrics in the Prometheus text format
// from a registry of its own (never the global one): the mqttctl_ metrics
// (metrics.go) and the process collector (CPU, memory, open file
// descriptors, against their limit: what a broker with many connections
// runs out of). Options.Metrics must be on for the counters of connects,
// refusals and handshakes.
func (b *Broker) MetricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(newCollector(b), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// MetricsMaxHeaderBytes bounds a metrics request's headers: a scraper
// sends a few hundred bytes.
const MetricsMaxHeaderBytes = 8 << 10

// MetricsServer is the HTTP server of serve --metrics.
type MetricsServer struct {
	srv *http.Server
	ln  net.Listener
}

// Addr is the address it listens on.
func (m *MetricsServer) Addr() string { return m.ln.Addr().String() }

// Close stops it.
func (m *MetricsServer) Close() error { return m.srv.Close() }

// ServeMetrics listens on addr and serves MetricsHandler at /metrics. The
// endpoint has no authentication: an address that is not loopback gets a
// warning in the log. Every request is bounded in time and header size, and
// a scrape only reads counters: it never waits for the MQTT path.
func (b *Broker) ServeMetrics(addr string) (*MetricsServer, error) {
	if err := CheckMetricsAddr(addr); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	if !isLoopback(host) {
		b.log.Warn("metrics endpoint is not on loopback and has no authentication: anyone who can reach it reads the broker's metrics (listener addresses, certificate and CRL dates); firewall it or use 127.0.0.1", "address", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", b.MetricsHandler())
	m := &MetricsServer{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    MetricsMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			b.log.Error("metrics server stopped", "error", err)
		}
	}()
	b.log.Info("metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}

// CheckMetricsAddr refuses a metrics address that is not HOST:PORT.
func CheckMetricsAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("metrics address %q: %w (give HOST:PORT, e.g. 127.0.0.1:9234)", addr, err)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
