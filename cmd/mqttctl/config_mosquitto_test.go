package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestConfigMosquitto(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("user dashboard\ntopic read sensors/#\n"), 0o600)
	pkiDir := newPKIDir(t, "--host", "localhost")
	conf := filepath.Join(dir, "m.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("listener 8883\ncertfile /x.crt\n"), 0o644)
	runSteps(t, []cliStep{
		{name: "mtls", args: []string{"config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--acl", acl, "--listen", "127.0.0.1:8883", "--out", conf, "--broker-group", "none"},
			out: []string{"mosquitto -c " + conf}},
		{name: "-o FILE still works", args: []string{"config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--listen", "127.0.0.1:8883", "-o", conf + ".2", "--broker-group", "none"},
			out: []string{"mosquitto -c " + conf + ".2", "deprecated"}},
		{name: "check", args: []string{"config", "check", conf}, out: []string{"mutual TLS"}},
		{name: "tls without passwd", args: []string{"config", "mosquitto", "--pki", pkiDir, "--mode", "tls"}, code: 1, errOut: []string{"--passwd"}},
		{name: "bad config", args: []string{"config", "check", bad}, code: 1, out: []string{bad + ":2: error: certfile without keyfile"}},
	})
}
