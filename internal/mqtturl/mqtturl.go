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
)

// Target is a parsed broker URL.
type Target struct {
	TLS  bool   // mqtts (also ssl, tls) rather than mqtt (also tcp)
	Host string // host name or address, without brackets
	Addr string // host:port, with the default port (1883, 8883) filled in
}

// Scheme is "mqtts" or "mqtt".
func (t Target) Scheme() string {
	if t.TLS {
		return "mqtts"
	}
	return "mqtt"
}

// Parse reads mqtt://HOST[:PORT] or mqtts://HOST[:PORT].
func Parse(raw string) (Target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return Target{}, fmt.Errorf("URL %q: use mqtts://HOST:PORT (TLS) or mqtt://HOST:PORT (plain)", raw)
	}
	t := Target{Host: u.Hostname()}
	port := "1883"
	switch u.Scheme {
	case "mqtts", "ssl", "tls":
		t.TLS, port = true, "8883"
	case "mqtt", "tcp":
	default:
		return Target{}, fmt.Errorf("URL %q: scheme %q: use mqtts or mqtt", raw, u.Scheme)
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
