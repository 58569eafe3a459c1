package testutil

import (
	"crypto/tls"
	"path/filepath"
	"testing"

	"github.com/mqttctl/mqttctl/internal/mqtturl"
)

// ClientTLS is the TLS configuration of a test client of a pki directory:
// it trusts pkiDir/ca.crt, dials "localhost", and presents
// clients/CLIENT.crt (none when client is "").
func ClientTLS(t testing.TB, pkiDir, client string) *tls.Config {
	t.Helper()
	roots, err := mqtturl.CAPool(filepath.Join(pkiDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	conf := &tls.Config{RootCAs: roots, ServerName: "localhost"}
	if client != "" {
		cert, err := tls.LoadX509KeyPair(filepath.Join(pkiDir, "clients", client+".crt"), filepath.Join(pkiDir, "clients", client+".key"))
		if err != nil {
			t.Fatal(err)
		}
		conf.Certificates = []tls.Certificate{cert}
	}
	return conf
}
