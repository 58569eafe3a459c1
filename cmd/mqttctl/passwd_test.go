package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

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
		{name: "a new user starting with '='", args: []string{"passwd", "add", f, "=cmd", "-b", "x"}, code: 1, errOut: []string{"formula"}},
		{name: "a new user starting with '-'", args: []string{"passwd", "add", "-b", "x", f, "--", "-rf"}, code: 1, errOut: []string{"starts with '-'"}},
	})
	// A user an earlier mqttctl (or mosquitto_passwd) added keeps working.
	old := filepath.Join(dir, "old")
	os.WriteFile(old, []byte("-rf:$7$101$c2FsdHNhbHRzYWx0c2FsdA==$"+strings.Repeat("A", 86)+"==\n"), 0o600)
	runSteps(t, []cliStep{
		{name: "change the password of an existing '-rf'", args: []string{"passwd", "add", "-b", "new", old, "--", "-rf"}, out: []string{"Updated -rf"}},
		{name: "verify it", args: []string{"passwd", "verify", "-b", "new", old, "--", "-rf"}, out: []string{"ok"}},
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

// TestPasswdVerifiesMosquittoPasswdFile: the lines mosquitto_passwd 2.0.11
// and 2.1.2 write verify (and a wrong password does not).
func TestPasswdVerifiesMosquittoPasswdFile(t *testing.T) {
	testutil.EachMosquitto(t, func(t *testing.T, mq testutil.Mosquitto) {
		f := filepath.Join(t.TempDir(), "passwd")
		testutil.MustRun(t, "", mq.Tool(t, "mosquitto_passwd"), "-c", "-b", f, "carol", "c4rol")
		if code, out, e := runCLI(t, "c4rol\n", "passwd", "verify", f, "carol", "--password-stdin"); code != 0 {
			t.Fatalf("%s mosquitto_passwd's hash does not verify: %s%s", mq.Version, out, e)
		}
		if code, _, _ := runCLI(t, "c4roL\n", "passwd", "verify", f, "carol", "--password-stdin"); code == 0 {
			t.Fatalf("a wrong password verifies against %s mosquitto_passwd's hash", mq.Version)
		}
	})
}

// TestPasswdMosquitto21: password files go both ways between mqttctl and
// mosquitto 2.1.2 (issue 20): a file mosquitto 2.1's mosquitto_passwd
// wrote ($7$ with a 64-byte salt and 1000 iterations) is listed, verified
// and logs its users in to serve; mqttctl's own lines log in to mosquitto
// 2.1.2 and 2.0.11 on the config `config mosquitto` writes, and serve logs
// in the users each version does (2.0.11 drops the 64-byte-salt line:
// "Unable to decode password salt"; serve follows 2.1.2).
func TestPasswdMosquitto21(t *testing.T) {
	bin := testutil.Mosquitto21(t)
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	dir := testutil.ReachableDir(t)
	run := func(stdin string, args ...string) string {
		t.Helper()
		code, o, e := runCLI(t, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: %s%s", args, o, e)
		}
		return o
	}
	p := filepath.Join(dir, "pki")
	run("", "pki", "init", "--dir", p, "--host", "localhost")
	pw := filepath.Join(dir, "passwd")
	if o, err := testutil.Run(t, dir, nil, filepath.Join(bin, "mosquitto_passwd"), "-c", "-b", pw, "carol", "s3cret"); err != nil {
		t.Fatalf("mosquitto_passwd 2.1: %v %s", err, o)
	}
	run("pw2\n", "passwd", "add", pw, "dave", "--password-stdin")
	if o := run("", "passwd", "list", pw); !strings.Contains(o, "carol\t$7$ 1000 iterations, 64-byte salt") || !strings.Contains(o, "dave\t$7$ 101 iterations, 12-byte salt") {
		t.Errorf("passwd list:\n%s", o)
	}
	run("s3cret\n", "passwd", "verify", pw, "carol", "--password-stdin")
	if code, _, _ := runCLI(t, "s3creT\n", "passwd", "verify", pw, "carol", "--password-stdin"); code == 0 {
		t.Error("a wrong password verified against mosquitto 2.1's hash")
	}
	port := testutil.FreePort(t)
	conf := filepath.Join(dir, "m.conf")
	run("", "config", "mosquitto", "--pki", p, "--mode", "tls", "--passwd", pw, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--data-dir", "", "--out", conf)
	login := func(who, user, pass string, ok bool) {
		t.Helper()
		o, err := testutil.Run(t, dir, nil, pub, "-h", "localhost", "-p", fmt.Sprint(port), "--cafile", filepath.Join(p, "ca.crt"), "-u", user, "-P", pass, "-t", "t/1", "-m", "x", "-q", "1")
		if (err == nil) != ok {
			t.Errorf("%s: %s/%s logged in = %v, want %v: %s", who, user, pass, err == nil, ok, o)
		}
	}
	for _, b := range []string{"mosquitto 2.0.11", "mosquitto 2.1.2", "serve"} {
		var cmd *exec.Cmd
		switch b {
		case "serve":
			// and an argon2id user (this build of 2.1.2 has no argon2)
			run("pw3\n", "passwd", "add", pw, "erin", "--password-stdin", "--hash", "argon2id")
			cmd = exec.Command(mqttctlBin, "serve", "-c", conf)
		case "mosquitto 2.0.11":
			cmd = exec.Command(testutil.RequireBinary(t, "mosquitto"), "-c", conf)
		default:
			cmd = exec.Command(filepath.Join(bin, "mosquitto"), "-c", conf)
		}
		log := &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
		login(b, "carol", "s3cret", b != "mosquitto 2.0.11")
		login(b, "dave", "pw2", true)
		login(b, "carol", "pw2", false)
		if b == "serve" {
			login(b, "erin", "pw3", true)
			login(b, "erin", "pw2", false)
		}
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s logged:\n%s", b, log.String())
		}
	}
}
