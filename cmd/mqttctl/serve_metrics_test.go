package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestServeMetricsFlag: metrics are off unless --metrics is given; with it
// /metrics answers in the Prometheus text format; a bad address is refused
// before anything listens.
func TestServeMetricsFlag(t *testing.T) {
	if def := newServeCmd(&streams{}).Flags().Lookup("metrics").DefValue; def != "" {
		t.Fatalf("--metrics defaults to %q, want off", def)
	}
	dir := t.TempDir()
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", dir+"/pki", "--client", "demo"); code != 0 {
		t.Fatal(e)
	}
	off := startServe(t, dir, 0, "--mtls", "--pki", "pki")
	off.stop(t, syscall.SIGTERM)
	if strings.Contains(off.log.String(), "metrics") {
		t.Errorf("serve without --metrics mentions metrics:\n%s", off.log.String())
	}

	mport := testutil.FreePort(t)
	on := startServe(t, dir, 0, "--mtls", "--pki", "pki", "--metrics", fmt.Sprintf("127.0.0.1:%d", mport))
	defer on.stop(t, syscall.SIGTERM)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", mport), 5*time.Second)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", mport))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fams := parseProm(t, string(body))
	for _, name := range []string{"mqttctl_clients_connected", "mqttctl_refusals_total", "mqttctl_crl_next_update_timestamp_seconds", "mqttctl_server_cert_expiry_timestamp_seconds"} {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape", name)
		}
	}
	if strings.Contains(on.log.String(), "not on loopback") {
		t.Errorf("a loopback address was warned about:\n%s", on.log.String())
	}

	code, _, stderr := runCLI(t, "", "serve", "--mtls", "--pki", dir+"/pki", "--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), "--metrics", "9234")
	if code == 0 || !strings.Contains(stderr, "HOST:PORT") {
		t.Errorf("--metrics 9234: exit %d, %s", code, stderr)
	}
}

// TestEnrollServeMetricsFlag: enroll serve --metrics answers /metrics with
// the enrolment counters; the flag defaults to off.
func TestEnrollServeMetricsFlag(t *testing.T) {
	es, _, err := newRootCmd(&streams{}).Find([]string{"enroll", "serve"})
	if err != nil {
		t.Fatal(err)
	}
	if def := es.Flags().Lookup("metrics").DefValue; def != "" {
		t.Fatalf("enroll serve --metrics defaults to %q, want off", def)
	}
	dir := t.TempDir()
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", dir+"/pki"); code != 0 {
		t.Fatal(e)
	}
	ports := testutil.FreePorts(t, 2)
	cmd, log := testutil.Start(t, dir, mqttctlBin, "enroll", "serve", "--pki", "pki", "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--metrics", fmt.Sprintf("127.0.0.1:%d", ports[1]))
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM) }()
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", ports[1]), 10*time.Second)
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[1]))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fams := parseProm(t, string(body))
	for _, name := range []string{"mqttctl_enrolments_total", "mqttctl_enrolment_refusals_total"} {
		if fams[name] == nil {
			t.Errorf("no %s in the scrape:\n%s", name, log.String())
		}
	}
}
