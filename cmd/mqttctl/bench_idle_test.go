package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestBenchIdle: connections spread over the source addresses asked for
// and are reported with the generator's memory; a closed port is reported
// by reason with exit 1; source addresses to a broker off loopback are
// refused before any connection.
func TestBenchIdle(t *testing.T) {
	dir := t.TempDir()
	p := dir + "/pki"
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "demo"); code != 0 {
		t.Fatal(e)
	}
	srv := startServe(t, dir, 0, "--mtls", "--pki", p)
	url := fmt.Sprintf("mqtts://localhost:%d", srv.port)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "mqtts://" + ln.Addr().String()
	ln.Close()
	auth := []string{"--cafile", p + "/ca.crt", "--cert", p + "/clients/demo.crt", "--key", p + "/clients/demo.key"}
	runSteps(t, []cliStep{
		{name: "spread", args: append([]string{"bench", "idle", url, "--conns", "30", "--source-addrs", "3", "--duration", "10ms"}, auth...),
			out: []string{"open 30 of 30 in ", "0 failed", "generator RSS "}, errOut: []string{"from 3 source addresses, 127.0.0.2 to 127.0.0.4"}},
		{name: "refused", args: append([]string{"bench", "idle", closed, "--conns", "10", "--parallel", "1", "--max-failures", "3", "--duration", "10ms"}, auth...), code: 1,
			out: []string{"open 0 of 10 in "}, errOut: []string{"0 of 10 connections opened (3 failed: refused 3)"}},
		{name: "off loopback", args: append([]string{"bench", "idle", "mqtts://192.0.2.1:8883", "--source-addrs", "2"}, auth...), code: 1,
			errOut: []string{"--source-addrs 2: ", "not on IPv4 loopback"}, check: func(t *testing.T, stdout, _ string) {
				if strings.Contains(stdout, "open") {
					t.Errorf("connected: %s", stdout)
				}
			}},
	})
}
