package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestEnrollServeReloadsItsCertificate: findings 6 and 10 of the
// adversarial pass. After 'pki renew server' enroll serve presents the new
// certificate within a second or so, without a restart (before: the old
// one until restarted); SIGHUP is logged, reads the certificate again, and
// the server keeps serving (before: it died without a word).
func TestEnrollServeReloadsItsCertificate(t *testing.T) {
	dir, p := newServePKI(t)
	port := testutil.FreePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd, log := testutil.Start(t, dir, mqttctlBin, "enroll", "serve", "--pki", p, "--listen", addr)
	testutil.WaitPort(t, addr, 10*time.Second)
	ca, err := os.ReadFile(filepath.Join(p, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	served := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			t.Fatalf("TLS to enroll serve: %v\n%s", err, log.String())
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := served()
	if code, _, e := runCLI(t, "", "pki", "renew", "server", "--dir", p); code != 0 {
		t.Fatal(e)
	}
	deadline := time.Now().Add(10 * time.Second)
	for served() == first {
		if time.Now().After(deadline) {
			t.Fatalf("enroll serve still presents the certificate pki renew replaced:\n%s", log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitFor(t, log, "serving a new server certificate", "the reload's log line")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, log, "SIGHUP", "the SIGHUP log line")
	time.Sleep(200 * time.Millisecond)
	if cmd.ProcessState != nil {
		t.Fatalf("enroll serve ended on SIGHUP:\n%s", log.String())
	}
	served() // still serving
}
