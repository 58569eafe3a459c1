// Package metricsrv serves Prometheus metrics over HTTP for mqttctl's
// servers (serve --metrics, enroll serve --metrics): a registry of its own
// (never the global one), bounded requests, and a warning for an address
// that is not loopback (the endpoint has no authentication).
package metricsrv

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

// MaxHeaderBytes bounds a metrics request's headers: a scraper sends a few
// hundred bytes.
const MaxHeaderBytes = 8 << 10

// Handler serves the collectors and the process collector (CPU, memory,
// open file descriptors against their limit: what a server with many
// connections runs out of) in the Prometheus text format.
func Handler(cs ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(cs...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// Server is a running metrics endpoint.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// Addr is the address it listens on.
func (m *Server) Addr() string { return m.ln.Addr().String() }

// Close stops it.
func (m *Server) Close() error { return m.srv.Close() }

// CheckAddr refuses an address that is not HOST:PORT.
func CheckAddr(addr string) error {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return fmt.Errorf("metrics address %q: %w (give HOST:PORT, e.g. 127.0.0.1:9234)", addr, err)
	}
	return nil
}

// Serve listens on addr and serves Handler(cs...) at /metrics. Every
// request is bounded in time and header size.
func Serve(addr string, log *slog.Logger, cs ...prometheus.Collector) (*Server, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(addr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	if !IsLoopback(host) {
		log.Warn("metrics endpoint is not on loopback and has no authentication: anyone who can reach it reads these metrics (addresses, certificate and CRL dates); firewall it or use 127.0.0.1", "address", ln.Addr().String())
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", Handler(cs...))
	m := &Server{ln: ln, srv: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}}
	go func() {
		if err := m.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "error", err)
		}
	}()
	log.Info("metrics", "address", "http://"+ln.Addr().String()+"/metrics")
	return m, nil
}

// IsLoopback reports whether host is a loopback name or address.
func IsLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
