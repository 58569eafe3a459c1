package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestConfigMosquittoTargetLoadsClean: every kind of file `config
// mosquitto --target V` writes (mTLS, TLS with passwords and an ACL, mTLS
// with a plain password listener, wss) loads in that version, 2.0.11 and
// 2.1.2, with no warning nor deprecation notice in its log, and its
// clients log in (a certificate, a password; a wrong password is refused).
// As root, the command itself gives the files to the mosquitto user as 2.1
// wants. 2.1 also writes its pid file where the config says.
func TestConfigMosquittoTargetLoadsClean(t *testing.T) {
	for _, v := range []struct{ target, name string }{{"2.0", "2.0.11"}, {"2.1", "2.1.2"}} {
		t.Run(v.name, func(t *testing.T) {
			var mosquitto, pub string
			if v.target == "2.0" {
				mosquitto, pub = testutil.RequireBinary(t, "mosquitto"), testutil.RequireBinary(t, "mosquitto_pub")
			} else {
				bin := testutil.Mosquitto21(t)
				mosquitto, pub = filepath.Join(bin, "mosquitto"), filepath.Join(bin, "mosquitto_pub")
			}
			testConfigMosquittoTarget(t, v.target, mosquitto, pub)
		})
	}
}

var badLogLine = regexp.MustCompile(`(?i).*(warning|deprecated|error|refuse).*`)

// probeLine is what `reload mosquitto`'s confirming handshake (no client
// certificate) leaves in the log of a listener that requires one: about a
// connection, not the file.
var probeLine = regexp.MustCompile(`OpenSSL Error.*(peer did not return a certificate|unexpected eof)|disconnected: Protocol error`)

func testConfigMosquittoTarget(t *testing.T, target, mosquitto, pub string) {
	dir := testutil.ReachableDir(t)
	pkiDir := filepath.Join(dir, "pki")
	mustCLI := func(stdin string, args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, stdin, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	mustCLI("", "pki", "init", "--dir", pkiDir, "--host", "localhost", "--client", "alice")
	type kase struct {
		name  string
		args  []string
		login [][]string // mosquitto_pub arguments that must log in on the first listener
	}
	cert := []string{"--cert", filepath.Join(pkiDir, "clients", "alice.crt"), "--key", filepath.Join(pkiDir, "clients", "alice.key")}
	pw := []string{"-u", "alice", "-P", "pw-alice"}
	cases := []kase{
		{name: "mtls", args: []string{"--mode", "mtls"}, login: [][]string{cert}},
		{name: "tls-passwd-acl", args: []string{"--mode", "tls", "--passwd", "PASSWD", "--acl", "ACL"}, login: [][]string{pw}},
		{name: "mtls-plain-passwd", args: []string{"--mode", "mtls", "--passwd", "PASSWD", "--acl", "ACL", "--plain", "127.0.0.1:PLAIN"}, login: [][]string{cert}},
	}
	if target == "2.1" { // Debian's 2.0.11 cannot open a websockets listener here
		cases = append(cases, kase{name: "wss", args: []string{"--mode", "tls", "--passwd", "PASSWD", "--websockets", "127.0.0.1:WSS",
			"--http-origin", "https://app.example.com"}, login: [][]string{pw}})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cdir := filepath.Join(dir, c.name)
			must(t, os.Mkdir(cdir, 0o711))
			passwd, acl := filepath.Join(cdir, "passwd"), filepath.Join(cdir, "acl")
			mustCLI("pw-alice\n", "passwd", "add", passwd, "alice", "--password-stdin")
			must(t, os.WriteFile(acl, []byte("user alice\ntopic readwrite a/#\n"), 0o644))
			ports := testutil.FreePorts(t, 3)
			conf := filepath.Join(cdir, "mosquitto.conf")
			args := []string{"config", "mosquitto", "--target", target, "--pki", pkiDir, "--data-dir", "", "--out", conf,
				"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0])}
			if target == "2.1" {
				args = append(args, "--pid-file", filepath.Join(cdir, "run", "mosquitto.pid"))
			}
			for _, a := range c.args {
				a = strings.NewReplacer("PASSWD", passwd, "ACL", acl, "PLAIN", fmt.Sprint(ports[1]), "WSS", fmt.Sprint(ports[2])).Replace(a)
				args = append(args, a)
			}
			out := mustCLI("", args...)
			data, err := os.ReadFile(conf)
			must(t, err)
			text := string(data)
			if target == "2.1" {
				for _, deprecated := range []string{"per_listener_settings", "password_file ", "acl_file "} {
					if strings.Contains(text, "\n"+deprecated) {
						t.Errorf("the 2.1 file has %s, which 2.1 deprecates:\n%s", deprecated, text)
					}
				}
				if !strings.Contains(out, "mqttctl reload mosquitto -c "+conf) {
					t.Errorf("no reload step in Next:\n%s", out)
				}
			}
			cmd, log := testutil.Start(t, cdir, mosquitto, "-c", conf)
			waitUntil(t, 10*time.Second, "mosquitto to start", func() bool {
				return strings.Contains(log.String(), " running") || cmd.ProcessState != nil || exited(cmd.Process.Pid)
			}, log.String)
			if !strings.Contains(log.String(), " running") {
				t.Fatalf("mosquitto %s did not start on:\n%s\nlog:\n%s", target, text, log.String())
			}
			for _, l := range c.login {
				a := append([]string{"-h", "localhost", "-p", fmt.Sprint(ports[0]), "--cafile", filepath.Join(pkiDir, "ca.crt"), "-t", "a/1", "-m", "x", "-q", "1", "-i", "t-" + c.name}, l...)
				if o, err := testutil.Run(t, cdir, nil, pub, a...); err != nil {
					t.Errorf("mosquitto_pub %v: %v %s\n%s", l, err, o, log.String())
				}
			}
			if strings.Contains(c.name, "passwd") {
				a := []string{"-h", "localhost", "-p", fmt.Sprint(ports[0]), "--cafile", filepath.Join(pkiDir, "ca.crt"), "-t", "a/1", "-m", "x", "-q", "1", "-u", "alice", "-P", "wrong"}
				if c.name == "mtls-plain-passwd" {
					a = []string{"-h", "127.0.0.1", "-p", fmt.Sprint(ports[1]), "-t", "a/1", "-m", "x", "-q", "1", "-u", "alice", "-P", "wrong"}
				}
				if o, err := testutil.Run(t, cdir, nil, pub, a...); err == nil {
					t.Errorf("a wrong password logged in: %s", o)
				}
			}
			if target == "2.1" {
				if _, err := os.Stat(filepath.Join(cdir, "run", "mosquitto.pid")); err != nil {
					t.Errorf("no pid file: %v\n%s", err, log.String())
				}
				// the pid_file is there for reload: no --pid-file needed
				if code, o, e := runCLI(t, "", "reload", "mosquitto", "-c", conf); code != 0 || !strings.Contains(o, "sent SIGHUP") {
					t.Errorf("reload mosquitto -c %s: exit %d\n%s%s\n%s", conf, code, o, e, log.String())
				}
				waitUntil(t, 10*time.Second, "the reload in the log", func() bool { return strings.Contains(log.String(), "Reloading config") }, log.String)
			}
			var bad []string
			for _, l := range badLogLine.FindAllString(strings.ReplaceAll(log.String(), dir, "DIR"), -1) {
				if !probeLine.MatchString(l) {
					bad = append(bad, l)
				}
			}
			if len(bad) > 0 {
				t.Errorf("mosquitto %s warns about the file config mosquitto --target %s wrote:\n%s\nfile:\n%s", filepath.Base(mosquitto), target, strings.Join(bad, "\n"), text)
			}
		})
	}
}

// TestConfigMosquittoTargetFlag: --target is refused at the flag for a
// version mqttctl does not write (nothing written), and defaults to the
// version of the mosquitto on PATH: 2.1.2's first on PATH gives a 2.1 file.
func TestConfigMosquittoTargetFlag(t *testing.T) {
	pkiDir := newPKIDir(t, "--host", "localhost")
	dir := t.TempDir()
	conf := filepath.Join(dir, "m.conf")
	runSteps(t, []cliStep{
		{name: "3.0", args: []string{"config", "mosquitto", "--pki", pkiDir, "--target", "3.0", "--out", conf}, code: 1,
			errOut: []string{`invalid argument "3.0" for "--target"`, "use 2.0 or 2.1"}},
		{name: "plugin-dir for 2.0", args: []string{"config", "mosquitto", "--pki", pkiDir, "--target", "2.0", "--plugin-dir", dir, "--out", conf}, code: 1,
			errOut: []string{"--plugin-dir", "--target 2.1"}},
		{name: "origin without websockets", args: []string{"config", "mosquitto", "--pki", pkiDir, "--target", "2.1", "--http-origin", "https://a.example.com", "--out", conf}, code: 1,
			errOut: []string{"--http-origin"}},
	})
	if _, err := os.Stat(conf); err == nil {
		t.Fatal("a refused --target wrote the file")
	}
	bin := testutil.Mosquitto21(t)
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	out := filepath.Join(dir, "d.conf")
	code, o, e := runCLI(t, "", "config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--out", out, "--pid-file", filepath.Join(dir, "m.pid"), "--broker-group", "none")
	data, _ := os.ReadFile(out)
	if code != 0 || !strings.Contains(o, "for mosquitto 2.1: mosquitto 2.1.2 at "+filepath.Join(bin, "mosquitto")) || strings.Contains(string(data), "per_listener_settings") ||
		!strings.Contains(string(data), "pid_file "+filepath.Join(dir, "m.pid")) {
		t.Fatalf("with 2.1.2 first on PATH: exit %d\n%s%s\n%s", code, o, e, data)
	}
}

// TestConfigCheckTarget: config check --target is a typed flag; a file
// written for 2.1 checks clean for 2.1 and for serve (which implements its
// plugins), and for 2.0 stops at the plugins 2.0 does not have.
func TestConfigCheckTarget(t *testing.T) {
	dir := testutil.ReachableDir(t)
	pkiDir := filepath.Join(dir, "pki")
	passwd := filepath.Join(dir, "passwd")
	conf := filepath.Join(dir, "m.conf")
	runSteps(t, []cliStep{
		{name: "pki", args: []string{"pki", "init", "--dir", pkiDir, "--host", "localhost"}},
		{name: "passwd", args: []string{"passwd", "add", passwd, "alice", "--password-stdin"}, stdin: "pw-alice\n"},
		{name: "config 2.1", args: []string{"config", "mosquitto", "--target", "2.1", "--pki", pkiDir, "--mode", "tls", "--passwd", passwd,
			"--data-dir", "", "--pid-file", filepath.Join(dir, "run", "m.pid"), "--listen", "127.0.0.1:8883", "--out", conf},
			out: []string{"mqttctl config check --target mosquitto-2.1 " + conf}},
		{name: "check 2.1", args: []string{"config", "check", "--target", "mosquitto-2.1", conf}, out: []string{"ok"}, absent: []string{"warning", "error"}},
		{name: "check serve", args: []string{"config", "check", conf}, out: []string{"password_file \"" + passwd + "\"", "ok"}, absent: []string{"error"}},
		{name: "check 2.0", args: []string{"config", "check", "--target", "mosquitto-2.0", conf}, code: 1,
			out: []string{conf + ":5: error: plugin mosquitto_password_file.so is mosquitto 2.1's: 2.0 has none; use password_file"}},
		{name: "check installed", args: []string{"config", "check", "--target", "mosquitto", conf}, code: 1, out: []string{"checking for mosquitto 2.0"}},
		{name: "bad target", args: []string{"config", "check", "--target", "mosquitto-3.0", conf}, code: 1,
			errOut: []string{`invalid argument "mosquitto-3.0" for "--target"`, "mosquitto-2.1"}},
	})
}
