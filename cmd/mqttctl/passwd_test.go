package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

func TestPasswdCLI(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "passwd")
	code, out, e := runCLI(t, "s3cret\n", "passwd", "add", f, "alice", "--password-stdin")
	if code != 0 || !strings.Contains(out, "Created") || !strings.Contains(out, "Added alice") {
		t.Fatalf("add: %d %s %s", code, out, e)
	}
	if strings.Contains(out+e, "s3cret") {
		t.Fatal("the password was printed")
	}
	if code, out, _ = runCLI(t, "s3cret\n", "passwd", "verify", f, "alice", "--password-stdin"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify right: %d %s", code, out)
	}
	if code, _, _ = runCLI(t, "nope\n", "passwd", "verify", f, "alice", "--password-stdin"); code != 1 {
		t.Fatalf("verify wrong: exit %d", code)
	}
	if code, _, _ = runCLI(t, "", "passwd", "verify", f, "nobody", "-b", "x"); code != 1 {
		t.Fatalf("verify unknown user: exit %d", code)
	}
	if code, _, e = runCLI(t, "", "passwd", "add", f, "a:b", "-b", "x"); code != 1 || !strings.Contains(e, "':'") {
		t.Fatalf("username with ':': %d %s", code, e)
	}
	if code, _, e = runCLI(t, "", "passwd", "add", f, "bob"); code != 1 || !strings.Contains(e, "no terminal") {
		t.Fatalf("no password source: %d %s", code, e)
	}
	// A comment is kept, with a warning naming the line.
	data, _ := os.ReadFile(f)
	os.WriteFile(f, append([]byte("# ops team\n"), data...), 0o600)
	code, _, e = runCLI(t, "", "passwd", "add", f, "bob", "-b", "pw2")
	if code != 0 || !strings.Contains(e, f+":1: kept a line") {
		t.Fatalf("add with a comment: %d %s", code, e)
	}
	data, _ = os.ReadFile(f)
	if !strings.HasPrefix(string(data), "# ops team\n") {
		t.Fatalf("comment lost:\n%s", data)
	}
	code, out, _ = runCLI(t, "", "passwd", "list", f)
	if code != 0 || !strings.Contains(out, "alice\t$7$ 101 iterations") || !strings.Contains(out, "bob") {
		t.Fatalf("list: %s", out)
	}
	if code, _, _ = runCLI(t, "", "passwd", "delete", f, "bob"); code != 0 {
		t.Fatal("delete")
	}
	if code, _, e = runCLI(t, "", "passwd", "delete", f, "bob"); code != 1 || !strings.Contains(e, "not in") {
		t.Fatalf("delete missing: %d %s", code, e)
	}
	// import hashes plain lines and refuses hashed ones.
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("u1:p:w1\nu2:pw2\n"), 0o600)
	if code, _, e = runCLI(t, "", "passwd", "import", plain); code != 0 {
		t.Fatal(e)
	}
	if code, _, _ = runCLI(t, "", "passwd", "verify", plain, "u1", "-b", "p:w1"); code != 0 {
		t.Fatal("imported password with ':' does not verify")
	}
	if code, _, e = runCLI(t, "", "passwd", "import", plain); code != 1 || !strings.Contains(e, "already has a hash") {
		t.Fatalf("re-import: %d %s", code, e)
	}
}

func TestPasswdConcurrentAdds(t *testing.T) {
	f := filepath.Join(t.TempDir(), "passwd")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if code, _, e := runCLI(t, "", "passwd", "add", f, fmt.Sprint("user", i), "-b", fmt.Sprint("pw", i)); code != 0 {
				t.Error(e)
			}
		}()
	}
	wg.Wait()
	_, out, _ := runCLI(t, "", "passwd", "list", f)
	if n := strings.Count(out, "\n"); n != 20 {
		t.Fatalf("%d users after 20 concurrent adds:\n%s", n, out)
	}
}

func TestPasswdVerifiesMosquittoPasswdFile(t *testing.T) {
	mp := testutil.RequireBinary(t, "mosquitto_passwd")
	f := filepath.Join(t.TempDir(), "passwd")
	testutil.MustRun(t, "", mp, "-c", "-b", f, "carol", "c4rol")
	if code, out, _ := runCLI(t, "c4rol\n", "passwd", "verify", f, "carol", "--password-stdin"); code != 0 {
		t.Fatalf("mosquitto_passwd's hash does not verify: %s", out)
	}
}

func TestACLAndConfigCLI(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	for _, args := range [][]string{
		{"readwrite", "devices/%u/#", "--pattern"},
		{"read", "sensors/#", "--user", "dashboard"},
		{"deny", "sensors/secret", "--user", "dashboard"},
	} {
		if code, _, e := runCLI(t, "", append([]string{"acl", "add", acl}, args...)...); code != 0 {
			t.Fatal(e)
		}
	}
	if code, _, _ := runCLI(t, "", "acl", "check", acl, "read", "sensors/a", "--user", "dashboard"); code != 0 {
		t.Fatal("dashboard cannot read sensors/a")
	}
	if code, _, _ := runCLI(t, "", "acl", "check", acl, "read", "sensors/secret", "--user", "dashboard"); code != 1 {
		t.Fatal("deny rule ignored")
	}
	pkiDir := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", pkiDir, "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	conf := filepath.Join(dir, "m.conf")
	code, out, e := runCLI(t, "", "config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--acl", acl, "--listen", "127.0.0.1:8883", "-o", conf, "--broker-group", "none")
	if code != 0 || !strings.Contains(out, "mosquitto -c "+conf) {
		t.Fatalf("config mosquitto: %d %s %s", code, out, e)
	}
	code, out, _ = runCLI(t, "", "config", "check", conf)
	if code != 0 || !strings.Contains(out, "mutual TLS") {
		t.Fatalf("config check: %d %s", code, out)
	}
	if code, _, e = runCLI(t, "", "config", "mosquitto", "--pki", pkiDir, "--mode", "tls"); code != 1 || !strings.Contains(e, "--passwd") {
		t.Fatalf("tls without passwd: %d %s", code, e)
	}
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("listener 8883\ncertfile /x.crt\n"), 0o644)
	code, out, _ = runCLI(t, "", "config", "check", bad)
	if code != 1 || !strings.Contains(out, bad+":2: error: certfile without keyfile") {
		t.Fatalf("bad config: %d %s", code, out)
	}
}
