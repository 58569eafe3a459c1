package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestPKISignRefusesTheBootstrapMark: finding 7 of the adversarial pass. A
// CSR made with openssl asking for the OU "MQTT Bootstrap" (the mark of a
// bootstrap certificate) is refused by pki sign, in any case, with nothing
// written: before, the client certificate carried it, serve refused it as
// a bootstrap certificate while mosquitto accepted it. A batch line
// asking for it is refused too. The same CSR without it is signed.
func TestPKISignRefusesTheBootstrapMark(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	p := newPKIDir(t, "--host", "localhost")
	dir := filepath.Dir(p)
	csr := func(name, subj string) string {
		out := filepath.Join(dir, name+".csr")
		cmd := exec.Command(openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
			"-keyout", filepath.Join(dir, name+".key"), "-subj", subj, "-out", out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("openssl req: %v\n%s", err, b)
		}
		return out
	}
	before := snapshot(t, p)
	out := filepath.Join(dir, "dev2.crt")
	runSteps(t, []cliStep{
		{name: "the bootstrap OU", args: []string{"pki", "sign", "--dir", p, "--profile", "client", "--out", out, "--csr", csr("a", "/CN=dev2/OU=MQTT Bootstrap")},
			code: 1, errOut: []string{`has the OU "MQTT Bootstrap", the mark of a bootstrap certificate`}},
		{name: "in another case, beside another OU", args: []string{"pki", "sign", "--dir", p, "--profile", "client", "--out", out, "--csr", csr("b", "/CN=dev2/OU=Sensors/OU=mqtt bootstrap")},
			code: 1, errOut: []string{"the mark of a bootstrap certificate"}},
	})
	if after := snapshot(t, p); after != before {
		t.Fatalf("a refused pki sign wrote:\n%s\n---\n%s", before, after)
	}
	batch := filepath.Join(dir, "devices.csv")
	if err := os.WriteFile(batch, []byte("name,ou\ndev3,MQTT Bootstrap\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []cliStep{
		{name: "a batch line", args: []string{"pki", "issue", "client", "--batch", batch, "--dir", p}, code: 1, errOut: []string{batch + ":2", "the mark of a bootstrap certificate"}},
		{name: "without it", args: []string{"pki", "sign", "--dir", p, "--profile", "client", "--out", out, "--csr", csr("c", "/CN=dev2/OU=Sensors")}, out: []string{"dev2"}},
	})
}
