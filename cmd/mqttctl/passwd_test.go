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

func TestPasswd(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "passwd")
	plain := filepath.Join(dir, "plain")
	os.WriteFile(plain, []byte("u1:p:w1\nu2:pw2\n"), 0o600)
	runSteps(t, []cliStep{
		{name: "add", stdin: "s3cret\n", args: []string{"passwd", "add", f, "alice", "--password-stdin"}, out: []string{"Created", "Added alice"}, absent: []string{"s3cret"}},
		{name: "verify right", stdin: "s3cret\n", args: []string{"passwd", "verify", f, "alice", "--password-stdin"}, out: []string{"ok"}},
		{name: "verify wrong", stdin: "nope\n", args: []string{"passwd", "verify", f, "alice", "--password-stdin"}, code: 1},
		{name: "verify unknown user", args: []string{"passwd", "verify", f, "nobody", "-b", "x"}, code: 1},
		{name: "username with ':'", args: []string{"passwd", "add", f, "a:b", "-b", "x"}, code: 1, errOut: []string{"':'"}},
		{name: "no password source", args: []string{"passwd", "add", f, "bob"}, code: 1, errOut: []string{"no terminal"}},
	})
	// A comment is kept, with a warning naming the line.
	data, _ := os.ReadFile(f)
	os.WriteFile(f, append([]byte("# ops team\n"), data...), 0o600)
	runSteps(t, []cliStep{
		{name: "add with a comment", args: []string{"passwd", "add", f, "bob", "-b", "pw2"}, errOut: []string{f + ":1: kept a line"}, check: func(t *testing.T, _, _ string) {
			if data, _ := os.ReadFile(f); !strings.HasPrefix(string(data), "# ops team\n") {
				t.Errorf("comment lost:\n%s", data)
			}
		}},
		{name: "list", args: []string{"passwd", "list", f}, out: []string{"alice\t$7$ 101 iterations", "bob"}},
		{name: "delete", args: []string{"passwd", "delete", f, "bob"}},
		{name: "delete missing", args: []string{"passwd", "delete", f, "bob"}, code: 1, errOut: []string{"not in"}},
		{name: "delete from a missing file", args: []string{"passwd", "delete", f + "-none", "bob"}, code: 1, errOut: []string{"does not exist", "mqttctl passwd add"}},
		// import hashes plain lines and refuses hashed ones.
		{name: "import", args: []string{"passwd", "import", plain}},
		{name: "imported password with ':'", args: []string{"passwd", "verify", plain, "u1", "-b", "p:w1"}},
		{name: "re-import", args: []string{"passwd", "import", plain}, code: 1, errOut: []string{"already has a hash"}},
	})
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
