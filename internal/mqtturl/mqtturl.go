// Package mqtturl parses the broker URLs mqttctl's clients take (check,
// bench) and loads the CA file they trust, so that both read them the same
// way.
package mqtturl

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
)

// Target is a parsed broker URL.
type Target struct {
	TLS  bool   // mqtts (also ssl, tls) or wss rather than mqtt (also tcp) or ws
	Host string // host name or address, without brackets
	Addr string // host:port, with the default port (1883, 8883, 80, 443) filled in
	// WebSocket: MQTT over a WebSocket (ws://, wss://) at Path.
	WebSocket bool
	Path      string
}

// Scheme is "mqtts", "mqtt", "wss" or "ws".
func (t Target) Scheme() string {
	switch {
	case t.WebSocket && t.TLS:
		return "wss"
	case t.WebSocket:
		return "ws"
	case t.TLS:
		return "mqtts"
	}
	return "mqtt"
}

// URL is the WebSocket URL (ws://HOST:PORT/PATH) of a WebSocket target.
func (t Target) URL() string { return t.Scheme() + "://" + t.Addr + t.Path }

// Local reports whether the host is this machine by name or address
// (localhost, 127.0.0.0/8, ::1): browsers exempt it from mixed-content
// blocking.
func (t Target) Local() bool {
	if t.Host == "localhost" || strings.HasSuffix(t.Host, ".localhost") {
		return true
	}
	ip := net.ParseIP(t.Host)
	return ip != nil && ip.IsLoopback()
}

// Parse reads mqtt://HOST[:PORT], mqtts://HOST[:PORT], ws://HOST[:PORT]/PATH
// or wss://HOST[:PORT]/PATH.
func Parse(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Target{}, fmt.Errorf("URL %q: use mqtts://HOST:PORT (TLS), mqtt://HOST:PORT (plain), or wss://HOST:PORT/PATH (WebSocket)", raw)
	}
	t := Target{Host: u.Hostname()}
	port := "1883"
	switch u.Scheme {
	case "mqtts", "ssl", "tls":
		t.TLS, port = true, "8883"
	case "mqtt", "tcp":
	case "wss":
		t.TLS, t.WebSocket, port = true, true, "443"
	case "ws":
		t.WebSocket, port = true, "80"
	default:
		return Target{}, fmt.Errorf("URL %q: scheme %q: use mqtts, mqtt, wss or ws", raw, u.Scheme)
	}
	if t.WebSocket {
		t.Path = u.EscapedPath()
		if t.Path == "" {
			t.Path = "/"
		}
		if u.RawQuery != "" {
			t.Path += "?" + u.RawQuery
		}
	}
	if p := u.Port(); p != "" {
		port = p
	}
	t.Addr = net.JoinHostPort(t.Host, port)
	return t, nil
}

// CAPool reads the CA certificates of file; "" means the system pool.
func CAPool(file string) (*x509.CertPool, error) {
	if file == "" {
		return x509.SystemCertPool()
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("%s holds no PEM certificate", file)
	}
	return pool, nil
}
