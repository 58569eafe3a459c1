package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// estDevice drives `mqttctl enroll serve` as a device with only openssl and
// curl would.
type estDevice struct {
	t              *testing.T
	dir, pki, base string
	curl, openssl  string
}

// token makes a token for name and writes a curl config file holding
// "user = NAME:TOKEN" (the token never in argv).
func (d *estDevice) token(name string) string {
	d.t.Helper()
	code, out, errOut := runCLI(d.t, "", "enroll", "token", "create", name, "--pki", d.pki)
	if code != 0 {
		d.t.Fatal(errOut)
	}
	cfg := filepath.Join(d.dir, name+".curl")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("user = \"%s:%s\"\n", name, strings.TrimSpace(out))), 0o600); err != nil {
		d.t.Fatal(err)
	}
	return cfg
}

// csr makes NAME.key and NAME.csr.b64 (base64 DER) with openssl req.
func (d *estDevice) csr(name, subj string) string {
	d.t.Helper()
	testutil.MustRun(d.t, d.dir, "sh", "-c", fmt.Sprintf("%s req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout %s.key -subj %s -outform DER | base64 > %s.csr.b64",
		d.openssl, name, subj, name))
	return name + ".csr.b64"
}

// post sends body (a file in dir) to op with extra curl arguments and
// returns the HTTP status and the body.
func (d *estDevice) post(op, body string, extra ...string) (int, string) {
	d.t.Helper()
	args := []string{"-s", "-o", "answer", "-w", "%{http_code}", "--cacert", filepath.Join(d.pki, "ca.crt"), "--data-binary", "@" + body, d.base + op}
	if len(extra) == 0 || extra[0] != "-H" {
		args = append(args, "-H", "Content-Type: application/pkcs10")
	}
	args = append(args, extra...)
	out, _ := testutil.Run(d.t, d.dir, nil, d.curl, args...)
	answer, _ := os.ReadFile(filepath.Join(d.dir, "answer"))
	var code int
	fmt.Sscan(out, &code)
	return code, string(answer)
}

// certOf turns the answer into NAME.crt and checks it with openssl verify.
func (d *estDevice) certOf(name string) {
	d.t.Helper()
	testutil.MustRun(d.t, d.dir, "sh", "-c", fmt.Sprintf("base64 -d answer | %s pkcs7 -inform DER -print_certs -out %s.crt", d.openssl, name))
	out := testutil.MustRun(d.t, d.dir, d.openssl, "verify", "-CAfile", filepath.Join(d.pki, "ca.crt"), "-purpose", "sslclient", name+".crt")
	if !strings.Contains(out, ": OK") {
		d.t.Fatalf("openssl verify: %s", out)
	}
}

func TestEnrollServeWithCurlOpensslMosquitto(t *testing.T) {
	d := &estDevice{t: t, curl: testutil.RequireBinary(t, "curl"), openssl: testutil.RequireBinary(t, "openssl")}
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	d.dir, d.pki = newServePKI(t, "alice")
	port, mqttPort := testutil.FreePort(t), testutil.FreePort(t)
	d.base = fmt.Sprintf("https://localhost:%d/.well-known/est/", port)
	runCLI(t, "", "pki", "issue", "bootstrap", "boot-1", "--dir", d.pki)
	estCmd, estLog := testutil.Start(t, d.dir, mqttctlBin, "enroll", "serve", "--pki", d.pki, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	conf := filepath.Join(d.dir, "mosquitto.conf")
	if code, _, e := runCLI(t, "", "config", "mosquitto", "--pki", d.pki, "--mode", "mtls", "--listen", fmt.Sprintf("127.0.0.1:%d", mqttPort), "--data-dir", filepath.Join(d.dir, "data")+"/", "--out", conf, "--broker-group", "none"); code != 0 {
		t.Fatal(e)
	}
	_, mqttLog := testutil.Start(t, d.dir, mqttctlBin, "serve", "-c", conf)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", mqttPort), 10*time.Second)
	publish := func(cert, key string) (string, error) {
		return testutil.Run(t, d.dir, nil, pub, "-h", "localhost", "-p", fmt.Sprint(mqttPort), "--cafile", filepath.Join(d.pki, "ca.crt"),
			"--cert", cert, "--key", key, "-t", "fleet/hello", "-m", "hi", "-q", "1")
	}

	// cacerts: the CA, readable by openssl.
	out := testutil.MustRun(t, d.dir, "sh", "-c", fmt.Sprintf("%s -s --cacert %s %scacerts | base64 -d | %s pkcs7 -inform DER -print_certs", d.curl, filepath.Join(d.pki, "ca.crt"), d.base, d.openssl))
	if !strings.Contains(out, "BEGIN CERTIFICATE") {
		t.Fatalf("cacerts: %s", out)
	}
	// Enrol with a token, then log in to serve with the certificate.
	tok := d.token("dev-1")
	d.csr("dev-1", "/CN=dev-1")
	if code, body := d.post("simpleenroll", "dev-1.csr.b64", "-K", tok); code != 200 {
		t.Fatalf("simpleenroll: %d %s\n%s", code, body, estLog.String())
	}
	d.certOf("dev-1")
	if out, err := publish("dev-1.crt", "dev-1.key"); err != nil {
		t.Fatalf("mosquitto_pub with the enrolled certificate: %v %s\n%s", err, out, mqttLog.String())
	}
	waitFor(t, estLog, "authorised_by=token", "audit line")
	if code, out, e := runCLI(t, "", "pki", "check", "--dir", d.pki); code != 0 || !strings.Contains(out, "clients/dev-1.crt: client") {
		t.Fatalf("pki check after an enrolment: %d\n%s%s", code, out, e)
	}

	// Refusals, each with its status and nothing issued.
	tok2 := d.token("dev-2")
	d.csr("dev-3", "/CN=dev-3")
	d.csr("dev-1-other", "/CN=dev-1")
	os.WriteFile(filepath.Join(d.dir, "big"), []byte(strings.Repeat("A", 70000)), 0o644)
	os.WriteFile(filepath.Join(d.dir, "junk"), []byte("not base64!"), 0o644)
	forged := filepath.Join(d.dir, "forged.curl")
	os.WriteFile(forged, []byte("user = \"dev-2:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"\n"), 0o600)
	for _, c := range []struct {
		name, op, body string
		args           []string
		code           int
		text           string
	}{
		{"a used token", "simpleenroll", "dev-1-other.csr.b64", []string{"-K", tok}, 401, "wrong, used, revoked or expired"},
		// The same request again (its answer lost): the same certificate.
		{"a used token for its own key", "simpleenroll", "dev-1.csr.b64", []string{"-K", tok}, 200, "MII"},
		{"CN mismatch", "simpleenroll", "dev-3.csr.b64", []string{"-K", tok2}, 403, "not the token's name"},
		{"a forged token", "simpleenroll", "dev-3.csr.b64", []string{"-K", forged}, 401, "not authorised"},
		{"no credentials", "simpleenroll", "dev-3.csr.b64", nil, 401, "no credentials"},
		{"wrong content type", "simpleenroll", "dev-3.csr.b64", []string{"-H", "Content-Type: text/plain", "-K", tok2}, 415, "application/pkcs10"},
		{"oversized", "simpleenroll", "big", []string{"-K", tok2}, 413, "bytes"},
		{"malformed", "simpleenroll", "junk", []string{"-K", tok2}, 400, "base64"},
		{"a bootstrap certificate re-enrolling", "simplereenroll", "dev-3.csr.b64", []string{"--cert", filepath.Join(d.pki, "bootstrap/boot-1.crt"), "--key", filepath.Join(d.pki, "bootstrap/boot-1.key")}, 401, "bootstrap"},
		{"re-enrol without a certificate", "simplereenroll", "dev-3.csr.b64", nil, 401, "current certificate"},
	} {
		code, body := d.post(c.op, c.body, c.args...)
		if code != c.code || !strings.Contains(body, c.text) {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, body, c.code, c.text)
		}
	}
	// A revoked token cannot enrol.
	runCLI(t, "", "enroll", "token", "revoke", "dev-2", "--pki", d.pki)
	d.csr("dev-2", "/CN=dev-2")
	if code, body := d.post("simpleenroll", "dev-2.csr.b64", "-K", tok2); code != 401 {
		t.Errorf("a revoked token: %d %s", code, body)
	}
	// A certificate of another CA cannot re-enrol.
	_, other := newServePKI(t, "dev-1")
	if code, body := d.post("simplereenroll", "dev-1.csr.b64", "--cert", filepath.Join(other, "clients/dev-1.crt"), "--key", filepath.Join(other, "clients/dev-1.key")); code != 401 || !strings.Contains(body, "does not verify") {
		t.Errorf("a foreign certificate: %d %s", code, body)
	}

	// The bootstrap certificate cannot log in to serve; it enrols boot-1.
	if out, err := publish(filepath.Join(d.pki, "bootstrap/boot-1.crt"), filepath.Join(d.pki, "bootstrap/boot-1.key")); err == nil {
		t.Fatalf("a bootstrap certificate logged in to serve: %s", out)
	}
	waitFor(t, mqttLog, "bootstrap certificate", "serve's log of the refused bootstrap certificate")
	d.csr("boot-1", "/CN=boot-1")
	if code, body := d.post("simpleenroll", "boot-1.csr.b64", "--cert", filepath.Join(d.pki, "bootstrap/boot-1.crt"), "--key", filepath.Join(d.pki, "bootstrap/boot-1.key")); code != 200 {
		t.Fatalf("bootstrap enrolment: %d %s", code, body)
	}
	d.certOf("boot-1")

	// Re-enrolment with the current certificate: the same subject, a new key.
	testutil.MustRun(t, d.dir, "sh", "-c", fmt.Sprintf(`%s req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout dev-1.new.key -subj "$(%s x509 -in dev-1.crt -noout -subject -nameopt compat | sed 's/^subject=//')" -outform DER | base64 > renew.b64`, d.openssl, d.openssl))
	if code, body := d.post("simplereenroll", "renew.b64", "--cert", "dev-1.crt", "--key", "dev-1.key"); code != 200 {
		t.Fatalf("simplereenroll: %d %s\n%s", code, body, estLog.String())
	}
	d.certOf("dev-1.new")
	waitFor(t, estLog, "authorised_by=current-certificate", "audit line")
	if out, err := publish("dev-1.new.crt", "dev-1.new.key"); err != nil {
		t.Fatalf("mosquitto_pub with the renewed certificate: %v %s", err, out)
	}
	// Revoked while the server runs: it cannot re-enrol.
	if code, _, e := runCLI(t, "", "pki", "revoke", "dev-1", "--dir", d.pki); code != 0 {
		t.Fatal(e)
	}
	testutil.MustRun(t, d.dir, "sh", "-c", fmt.Sprintf(`%s x509 -x509toreq -in dev-1.new.crt -signkey dev-1.new.key | %s req -outform DER | base64 > renew2.b64`, d.openssl, d.openssl))
	if code, body := d.post("simplereenroll", "renew2.b64", "--cert", "dev-1.new.crt", "--key", "dev-1.new.key"); code != 401 || !strings.Contains(body, "revoked") {
		t.Fatalf("a revoked device re-enrolled: %d %s", code, body)
	}
	// SIGTERM: a graceful stop, exit 0.
	_ = estCmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- estCmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || !strings.Contains(estLog.String(), "stopping") {
			t.Fatalf("enroll serve on SIGTERM: %v\n%s", err, estLog.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("enroll serve did not stop on SIGTERM")
	}
}

// TestEnrollServeRefusesToStart: what would make every request fail is
// refused at start, with nothing listening.
func TestEnrollServeRefusesToStart(t *testing.T) {
	p := newPKIDir(t, "--host", "localhost")
	enc := newPKIDir(t, "--host", "localhost", "--encrypt-ca-key", "--ca-password-file", writeTemp(t, "pw", "secret-password\n"))
	runSteps(t, []cliStep{
		{name: "no CA", args: []string{"enroll", "serve", "--pki", p + "-none", "--cert", filepath.Join(p, "server.crt"), "--key", filepath.Join(p, "server.key")}, code: 1, errOut: []string{"no CA"}},
		{name: "bad days", args: []string{"enroll", "serve", "--pki", p, "--days", "0"}, code: 1, errOut: []string{"--days 0"}},
		{name: "half a pair", args: []string{"enroll", "serve", "--pki", p, "--cert", filepath.Join(p, "server.crt")}, code: 1, errOut: []string{"--cert and --key together"}},
		{name: "an encrypted CA key without its password", args: []string{"enroll", "serve", "--pki", enc}, code: 1, errOut: []string{"--ca-password-file"}},
	})
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
