package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestPKIRevokeWithOpenSSL: the CRL pki writes is what openssl checks.
func TestPKIRevokeWithOpenSSL(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	for _, inter := range []bool{false, true} {
		name := map[bool]string{false: "root", true: "intermediate"}[inter]
		t.Run(name, func(t *testing.T) {
			args := []string{"--client", "alice", "--client", "bob", "--host", "localhost"}
			if inter {
				args = append(args, "--intermediate")
			}
			dir := newPKIDir(t, args...)
			crl := filepath.Join(dir, "crl.pem")
			verify := func(client string) (string, error) {
				a := []string{"verify", "-crl_check", "-CAfile", filepath.Join(dir, "ca.crt"), "-CRLfile", crl}
				if inter {
					a = append(a, "-crl_check_all", "-untrusted", filepath.Join(dir, "intermediate.crt"))
				}
				return testutil.Run(t, dir, nil, openssl, append(a, filepath.Join(dir, "clients", client+".crt"))...)
			}
			if out, err := verify("alice"); err != nil {
				t.Fatalf("before any revocation, alice fails: %v\n%s", err, out)
			}
			runSteps(t, []cliStep{
				{name: "revoke bob", args: []string{"pki", "revoke", "bob", "--dir", dir, "--reason", "keyCompromise"}, out: []string{"Revoked client certificate bob", "keyCompromise", "CRL number 2, 1 revoked"}},
				{name: "revoke bob again", args: []string{"pki", "revoke", "bob", "--dir", dir}, code: 1, errOut: []string{"was revoked on"}},
				{name: "revoke the CA", args: []string{"pki", "revoke", "ca", "--dir", dir}, code: 1, errOut: []string{"CA itself"}},
				{name: "revoke an unknown name", args: []string{"pki", "revoke", "nobody", "--dir", dir}, code: 1, errOut: []string{"no certificate", "mqttctl pki list --dir " + dir}},
				{name: "revoke a misspelt name", args: []string{"pki", "revoke", "alcie", "--dir", dir}, code: 1, errOut: []string{"did you mean alice?"}},
				{name: "revoke an unknown serial", args: []string{"pki", "revoke", "--serial", "01:02", "--dir", dir}, code: 1, errOut: []string{"no certificate"}},
				{name: "a bad reason", args: []string{"pki", "revoke", "alice", "--dir", dir, "--reason", "bored"}, code: 1, errOut: []string{"keyCompromise"}},
				{name: "name and serial", args: []string{"pki", "revoke", "alice", "--serial", "01", "--dir", dir}, code: 1, errOut: []string{"one of them"}},
				{name: "crl", args: []string{"pki", "crl", "--dir", dir, "--days", "7"}, out: []string{"CRL number 3, 1 revoked"}},
				{name: "crl --days 0", args: []string{"pki", "crl", "--dir", dir, "--days", "0"}, code: 1, errOut: []string{"--days 0"}},
				{name: "list shows it", args: []string{"pki", "list", "--dir", dir}, out: []string{"revoked"}},
			})
			if out, err := verify("bob"); err == nil || !strings.Contains(out, "certificate revoked") {
				t.Errorf("openssl accepted revoked bob: %v\n%s", err, out)
			}
			if out, err := verify("alice"); err != nil {
				t.Errorf("openssl refused alice: %v\n%s", err, out)
			}
			if out, err := testutil.Run(t, dir, nil, openssl, "crl", "-in", crl, "-noout", "-CAfile", filepath.Join(dir, "ca.crt"), "-verify"); err != nil && !inter {
				t.Errorf("openssl crl -verify: %v\n%s", err, out)
			}
		})
	}
}

// TestPKIRevokeConcurrent: two revokes at once keep both.
func TestPKIRevokeConcurrent(t *testing.T) {
	dir := newPKIDir(t, "--client", "a1", "--client", "a2", "--client", "a3", "--client", "a4", "--host", "localhost")
	var wg sync.WaitGroup
	for _, c := range []string{"a1", "a2", "a3", "a4"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, e := runCLI(t, "", "pki", "revoke", c, "--dir", dir); code != 0 {
				t.Errorf("revoke %s: %s", c, e)
			}
		}()
	}
	wg.Wait()
	data, _ := os.ReadFile(filepath.Join(dir, "index.yaml"))
	if n := strings.Count(string(data), "status: revoked"); n != 4 {
		t.Fatalf("%d revoked entries after 4 concurrent revokes:\n%s", n, data)
	}
	runSteps(t, []cliStep{{name: "the CRL lists all four", args: []string{"pki", "crl", "--dir", dir}, out: []string{"4 revoked"}}})
}

// TestRevokedClientRefusedByMosquittoAfterHUP: the CRL that pki revoke
// writes and config mosquitto names is enforced by mosquitto 2.0 after
// SIGHUP.
func TestRevokedClientRefusedByMosquittoAfterHUP(t *testing.T) {
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	dir := testutil.ReachableDir(t)
	p := filepath.Join(dir, "pki")
	port := testutil.FreePort(t)
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "alice", "--client", "bob", "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	conf := filepath.Join(dir, "gen.conf")
	if code, _, e := runCLI(t, "", "config", "mosquitto", "--pki", p, "--mode", "mtls", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--data-dir", filepath.Join(dir, "data")+"/", "--out", conf, "--broker-group", "none"); code != 0 {
		t.Fatal(e)
	}
	c, err := confgen.Load(conf)
	if err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(conf); !strings.Contains(string(data), "crlfile "+filepath.Join(p, "crl.pem")) {
		t.Fatalf("config mosquitto wrote no crlfile:\n%s", data)
	}
	cmd, log := testutil.StartMosquittoProcess(t, dir, c)
	send := func(client string) error {
		out, err := testutil.Run(t, dir, nil, pub, "-h", "localhost", "-p", fmt.Sprint(port), "--cafile", filepath.Join(p, "ca.crt"),
			"--cert", filepath.Join(p, "clients", client+".crt"), "--key", filepath.Join(p, "clients", client+".key"), "-t", "x", "-m", "1")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	}
	if err := send("bob"); err != nil {
		t.Fatalf("bob before revocation: %v", err)
	}
	if code, _, e := runCLI(t, "", "pki", "revoke", "bob", "--dir", p); code != 0 {
		t.Fatal(e)
	}
	_ = cmd.Process.Signal(syscall.SIGHUP)
	// mosquitto reloads when its loop next wakes: try for a while.
	refused := false
	for i := 0; i < 25 && !refused; i++ {
		refused = send("bob") != nil
		if !refused {
			time.Sleep(200 * time.Millisecond)
		}
	}
	if !refused {
		t.Errorf("mosquitto accepted revoked bob after SIGHUP:\n%s", log.String())
	}
	if err := send("alice"); err != nil {
		t.Errorf("mosquitto refused alice: %v\n%s", err, log.String())
	}
}
