package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestBootstrapCertificateIsNoIdentity: a bootstrap certificate (pki issue
// bootstrap) is refused by mosquitto 2.0 on the config 'config mosquitto
// --mode mtls' writes (its key usage is not digitalSignature: OpenSSL's
// "unsupported certificate purpose"), while a client certificate of the
// same CA logs in, and so does the certificate the device enrols with it
// at enroll serve; config rabbitmq makes no user of it. (serve refuses it
// too: TestEnrollServeWithCurlOpensslMosquitto.)
func TestBootstrapCertificateIsNoIdentity(t *testing.T) {
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	dir := testutil.ReachableDir(t)
	p := filepath.Join(dir, "pki")
	port := testutil.FreePort(t)
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "alice", "--host", "localhost", "--node", "rabbit1=localhost"); code != 0 {
		t.Fatal(e)
	}
	runSteps(t, []cliStep{
		{name: "issue bootstrap", args: []string{"pki", "issue", "bootstrap", "boot-1", "--dir", p}, out: []string{"bootstrap certificate", "CN=boot-1"}},
		{name: "check knows the profile", args: []string{"pki", "check", "--dir", p}, out: []string{"bootstrap/boot-1.crt: bootstrap: key matches; usages clientAuth"}, absent: []string{"ERROR", "WARN"}},
		{name: "renew refuses it (a factory window is not stretched to a year)", args: []string{"pki", "renew", "boot-1", "--dir", p}, code: 1, errOut: []string{"is a bootstrap certificate: it is not renewed", "mqttctl pki issue bootstrap boot-1 --dir " + p + " --force"}},
		{name: "list shows its profile", args: []string{"pki", "list", "--dir", p}, out: []string{"boot-1", "bootstrap"}},
		{name: "sign refuses the profile", args: []string{"pki", "sign", "--dir", p, "--profile", "bootstrap", "--out", filepath.Join(dir, "x.crt"), filepath.Join(p, "clients", "alice.crt")}, code: 1},
		{name: "rabbitmq makes no user of it", args: []string{"config", "rabbitmq", "--pki", p, "--mode", "mtls", "--node", "rabbit1=localhost:8883", "--out", filepath.Join(dir, "rabbit")},
			check: func(t *testing.T, _, _ string) {
				data, err := os.ReadFile(filepath.Join(dir, "rabbit", "definitions.json"))
				if err != nil || !strings.Contains(string(data), `"alice"`) || strings.Contains(string(data), "boot-1") {
					t.Fatalf("definitions.json: %v\n%s", err, data)
				}
			}},
	})
	conf := filepath.Join(dir, "gen.conf")
	if code, _, e := runCLI(t, "", "config", "mosquitto", "--pki", p, "--mode", "mtls", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(dir, "data")+"/", "--out", conf, "--broker-group", "none"); code != 0 {
		t.Fatal(e)
	}
	if data, _ := os.ReadFile(conf); strings.Contains(string(data), "boot-1") {
		t.Fatalf("config mosquitto names the bootstrap certificate:\n%s", data)
	}
	c, err := confgen.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	_, log := testutil.StartMosquittoProcess(t, dir, c)
	send := func(cert, key string) error {
		out, err := testutil.Run(t, dir, nil, pub, "-h", "localhost", "-p", fmt.Sprint(port), "--cafile", filepath.Join(p, "ca.crt"),
			"--cert", cert, "--key", key, "-t", "x", "-m", "1")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := send(filepath.Join(p, "clients/alice.crt"), filepath.Join(p, "clients/alice.key")); err != nil {
		t.Fatalf("alice: %v\n%s", err, log.String())
	}
	if err := send(filepath.Join(p, "bootstrap/boot-1.crt"), filepath.Join(p, "bootstrap/boot-1.key")); err == nil {
		t.Fatalf("mosquitto let the bootstrap certificate in:\n%s", log.String())
	}
	// The device enrols with it at enroll serve (curl, openssl), and its
	// enrolled certificate logs in to mosquitto.
	d := &estDevice{t: t, dir: dir, pki: p, curl: testutil.RequireBinary(t, "curl"), openssl: testutil.RequireBinary(t, "openssl")}
	estPort := testutil.FreePort(t)
	d.base = fmt.Sprintf("https://localhost:%d/.well-known/est/", estPort)
	_, estLog := testutil.Start(t, dir, mqttctlBin, "enroll", "serve", "--pki", p, "--listen", fmt.Sprintf("127.0.0.1:%d", estPort))
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", estPort), 10*time.Second)
	d.csr("boot-1", "/CN=boot-1")
	if code, body := d.post("simpleenroll", "boot-1.csr.b64", "--cert", filepath.Join(p, "bootstrap/boot-1.crt"), "--key", filepath.Join(p, "bootstrap/boot-1.key")); code != 200 {
		t.Fatalf("bootstrap enrolment: %d %s\n%s", code, body, estLog.String())
	}
	d.certOf("boot-1")
	if err := send(filepath.Join(dir, "boot-1.crt"), filepath.Join(dir, "boot-1.key")); err != nil {
		t.Fatalf("the enrolled certificate at mosquitto: %v\n%s", err, log.String())
	}
}
