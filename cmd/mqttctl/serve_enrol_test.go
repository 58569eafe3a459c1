package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestServeRenewAndProvisionWithMosquittoRR: mosquitto_rr is the device.
// Over `mqttctl serve` with '# mqttctl: renew_pki' and
// '# mqttctl: provision_by_claim on', it renews a device's certificate,
// which then connects; a claim certificate provisions a device by prefix
// (mosquitto_rr 2.0) and with a one-time token (mosquitto_rr 2.1: 2.0's -f
// sends an empty message), each of which connects with its own
// certificate; a token works once; the claim publishes and subscribes to
// nothing else; a revoked certificate or claim gets nothing. mosquitto 2.0,
// given the same file, serves the devices and refuses the claim.
func TestServeRenewAndProvisionWithMosquittoRR(t *testing.T) {
	rr := testutil.RequireBinary(t, "mosquitto_rr")
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	mosq := testutil.RequireBinary(t, "mosquitto")
	openssl := testutil.RequireBinary(t, "openssl")
	rr21 := filepath.Join(testutil.Mosquitto21(t), "mosquitto_rr")
	dir := testutil.ReachableDir(t)
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--host", "localhost", "--client", "sensor-17"); code != 0 {
		t.Fatal(e)
	}
	port := testutil.FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	group := "none"
	if os.Geteuid() == 0 {
		group = "mosquitto"
	}
	if code, _, e := runCLI(t, "", "config", "mosquitto", "--pki", p, "--mode", "mtls", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(dir, "data")+"/", "--out", conf, "--broker-group", group); code != 0 {
		t.Fatal(e)
	}
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "# mqttctl: renew_pki %s\n# mqttctl: provision_by_claim on\n", p)
	f.Close()
	if code, out, e := runCLI(t, "", "config", "check", conf); code != 0 || !strings.Contains(out, "renew_pki \""+p+"\" ($mqttctl/renew), provision_by_claim on ($mqttctl/provision)") {
		t.Fatalf("config check: %s%s", out, e)
	}
	srv, log := testutil.Start(t, dir, mqttctlBin, "serve", "-c", conf)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	sh := func(cmd string) (string, error) {
		return testutil.Run(t, dir, nil, "sh", "-c", cmd)
	}
	must := func(cmd string) string {
		t.Helper()
		out, err := sh(cmd)
		if err != nil {
			t.Fatalf("%s: %v\n%s\n%s", cmd, err, out, log.String())
		}
		return out
	}
	tlsArgs := func(cert, key string) string {
		return fmt.Sprintf("-h localhost -p %d --cafile %s --cert %s --key %s", port, filepath.Join(p, "ca.crt"), cert, key)
	}
	connects := func(cert, key string) error {
		out, err := testutil.Run(t, dir, nil, pub, append(strings.Fields(tlsArgs(cert, key)), "-t", "devices/hello", "-m", "hi", "-q", "1")...)
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}

	// Renewal: a new key and a CSR with the certificate's subject.
	must(fmt.Sprintf("%s req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout s17.key -subj '/O=mqttctl/OU=MQTT Clients/CN=sensor-17' -out s17.csr 2>/dev/null", openssl))
	must(fmt.Sprintf("%s -V 5 %s -t '$mqttctl/renew' -e '$mqttctl/reply/sensor-17' -m \"$(cat s17.csr)\" -W 10 > s17.crt", rr,
		tlsArgs(filepath.Join(p, "clients/sensor-17.crt"), filepath.Join(p, "clients/sensor-17.key"))))
	if out := must(fmt.Sprintf("%s verify -CAfile %s -purpose sslclient s17.crt", openssl, filepath.Join(p, "ca.crt"))); !strings.Contains(out, ": OK") {
		t.Fatalf("the renewed certificate: %s", out)
	}
	if err := connects("s17.crt", "s17.key"); err != nil {
		t.Fatalf("the renewed certificate does not connect: %v", err)
	}
	waitFor(t, log, "authorised_by=current-certificate", "the renewal's audit line")
	if code, out, e := runCLI(t, "", "pki", "list", "--dir", p); code != 0 || !strings.Contains(out, "replaced  clients/sensor-17.prev.crt") {
		t.Fatalf("pki list after the renewal: %s%s", out, e)
	}

	// Provisioning by claim.
	runCLI(t, "", "pki", "issue", "claim", "factory-2026", "--prefix", "line1-", "--days", "90", "--dir", p)
	claim := tlsArgs(filepath.Join(p, "claim/factory-2026.crt"), filepath.Join(p, "claim/factory-2026.key"))
	must(fmt.Sprintf("%s req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout line1-0001.key -subj /CN=line1-0001 -out line1-0001.csr 2>/dev/null", openssl))
	must(fmt.Sprintf("%s -V 5 %s -t '$mqttctl/provision' -e '$mqttctl/reply/line1-0001' -m \"$(cat line1-0001.csr)\" -W 10 > line1-0001.crt", rr, claim))
	if err := connects("line1-0001.crt", "line1-0001.key"); err != nil {
		t.Fatalf("the device provisioned by prefix does not connect: %v\n%s", err, log.String())
	}
	code, secret, e := runCLI(t, "", "enroll", "token", "create", "dev-7", "--pki", p)
	if code != 0 {
		t.Fatal(e)
	}
	must(fmt.Sprintf("(umask 077 && %s req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev-7.key -subj /CN=dev-7 -out dev-7.csr 2>/dev/null)", openssl))
	if err := os.WriteFile(filepath.Join(dir, "dev-7.request"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	must("cat dev-7.csr >> dev-7.request")
	provision := fmt.Sprintf("%s -V 5 %s -t '$mqttctl/provision' -e '$mqttctl/reply/dev-7' -f dev-7.request -W 10", rr21, claim)
	must(provision + " > dev-7.crt")
	if err := connects("dev-7.crt", "dev-7.key"); err != nil {
		t.Fatalf("the device provisioned with a token does not connect: %v\n%s", err, log.String())
	}
	if strings.Contains(log.String(), strings.TrimSpace(secret)) {
		t.Fatal("the token is in the log")
	}
	// The same request again (a device whose answer was lost): the same
	// certificate, nothing issued; the token for another key: refused.
	if out, first := must(provision), must("cat dev-7.crt"); out != first {
		t.Fatalf("a repeated request got another answer:\n%s\nwant\n%s", out, first)
	}
	waitFor(t, log, "answered again over MQTT", "the repeat's log line")
	must(fmt.Sprintf("%s req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -subj /CN=dev-7 -out other.csr 2>/dev/null", openssl))
	if err := os.WriteFile(filepath.Join(dir, "other.request"), []byte(secret), 0o600); err != nil {
		t.Fatal(err)
	}
	must("cat other.csr >> other.request")
	if out := must(strings.Replace(provision, "dev-7.request", "other.request", 1)); !strings.Contains(out, "refused: the token for \"dev-7\" is wrong, used, revoked or expired") {
		t.Fatalf("a token used twice: %s", out)
	}
	waitFor(t, log, "authorised_by=claim-certificate+token", "the token provisioning's audit line")

	// The claim may do nothing else.
	for _, topic := range []string{"devices/hello", "$mqttctl/renew"} {
		if out, _ := sh(fmt.Sprintf("%s -V 5 %s -t '%s' -m x -q 1", pub, claim, topic)); !strings.Contains(out, "Not authorized") {
			t.Errorf("the claim published to %s: %s", topic, out)
		}
	}
	for _, filter := range []string{"#", "devices/hello", "$mqttctl/#"} {
		if out, _ := sh(fmt.Sprintf("%s -V 5 %s -t '%s' -W 2", sub, claim, filter)); !strings.Contains(out, "All subscription requests were denied") {
			t.Errorf("the claim subscribed to %s: %s", filter, out)
		}
	}

	// Revoked: nothing (serve rereads crl.pem within a second).
	for _, name := range []string{"sensor-17", "factory-2026"} {
		if code, _, e := runCLI(t, "", "pki", "revoke", name, "--dir", p); code != 0 {
			t.Fatal(e)
		}
	}
	for _, c := range []struct{ what, cmd string }{
		{"the revoked device renewed", fmt.Sprintf("%s -V 5 %s -t '$mqttctl/renew' -e '$mqttctl/reply/sensor-17' -m \"$(cat s17.csr)\" -W 5", rr, tlsArgs("s17.crt", "s17.key"))},
		{"the revoked claim provisioned", fmt.Sprintf("%s -V 5 %s -t '$mqttctl/provision' -e '$mqttctl/reply/line1-0002' -m \"$(cat line1-0001.csr)\" -W 5", rr, claim)},
	} {
		deadline := time.Now().Add(10 * time.Second)
		for {
			out, err := sh(c.cmd)
			if err != nil && !strings.Contains(out, "BEGIN CERTIFICATE") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s", c.what, out)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if err := connects("line1-0001.crt", "line1-0001.key"); err != nil {
		t.Fatalf("a device of the revoked claim no longer connects: %v", err)
	}

	// mosquitto 2.0 with the same file: the devices connect, a claim is
	// refused, and $mqttctl/renew is an ordinary topic nobody answers.
	_ = srv.Process.Kill()
	_, _ = srv.Process.Wait()
	runCLI(t, "", "pki", "issue", "claim", "factory-2027", "--dir", p)
	_, mlog := testutil.Start(t, dir, mosq, "-c", conf)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	for _, d := range []string{"line1-0001", "dev-7"} {
		if err := connects(d+".crt", d+".key"); err != nil {
			t.Fatalf("mosquitto refuses %s: %v\n%s", d, err, mlog.String())
		}
	}
	if err := connects(filepath.Join(p, "claim/factory-2027.crt"), filepath.Join(p, "claim/factory-2027.key")); err == nil {
		t.Fatal("mosquitto let a claim certificate in")
	}
	if out, err := sh(fmt.Sprintf("%s -V 5 %s -t '$mqttctl/renew' -e '$mqttctl/reply/dev-7' -m \"$(cat dev-7.csr)\" -W 2", rr, tlsArgs("dev-7.crt", "dev-7.key"))); err == nil || strings.Contains(out, "BEGIN") {
		t.Fatalf("mosquitto answered a renewal: %v %s", err, out)
	}
}
