package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/reload"
)

// TestReloadMosquitto runs reload mosquitto against real mosquitto 2.0.11
// and 2.1.2, each started on a config from `mqttctl config mosquitto` with a
// pid_file and a second TLS listener whose certificate sits behind
// Kubernetes' symlinks (tls.crt -> ..data/tls.crt, ..data -> ..v1):
//   - a renewed certificate is served after reload (a Go TLS dial);
//   - a revoked client is refused after pki revoke and reload (CRL reread);
//   - a broken ACL, and a certificate that does not match its key, never
//     reach the broker: reload refuses at FILE:LINE, the broker keeps
//     running and serving;
//   - a symlinked ACL is refused for 2.1.2 (which would not follow it and
//     quit), sent to 2.0.11 (which follows it);
//   - reload --watch picks up an atomic rename over the certificate and a
//     ..data symlink flip;
//   - why: the same broken ACL sent with a bare SIGHUP makes 2.1.2 quit.
//
// mosquittoRunning is the line mosquitto logs once its listeners are open
// (2.1 logs "running mosquitto as user" before them).
var mosquittoRunning = regexp.MustCompile(`mosquitto version \S+ running`)

func TestReloadMosquitto(t *testing.T) {
	for _, v := range []struct{ name, bin string }{{"2.0.11", ""}, {"2.1.2", "21"}} {
		t.Run(v.name, func(t *testing.T) {
			var bin string
			if v.bin == "" {
				bin = testutil.RequireBinary(t, "mosquitto")
			} else {
				bin = filepath.Join(testutil.Mosquitto21(t), "mosquitto")
			}
			testReloadMosquitto(t, bin, v.name)
		})
	}
}

func testReloadMosquitto(t *testing.T, bin, version string) {
	dir := testutil.ReachableDir(t)
	pkiDir := filepath.Join(dir, "pki")
	mustCLI := func(args ...string) string {
		t.Helper()
		code, out, errOut := runCLI(t, "", args...)
		if code != 0 {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	mustCLI("pki", "init", "--dir", pkiDir, "--client", "alice", "--client", "bob")
	// broker2's certificate in three versions (renew keeps the key), for
	// the watch: v1 served at start, v2 moved over it, v3 a ..data flip.
	mustCLI("pki", "issue", "server", "broker2", "--dir", pkiDir, "--cn", "broker2", "--host", "localhost")
	b2 := func() []byte {
		data, err := os.ReadFile(filepath.Join(pkiDir, "servers", "broker2.crt"))
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	var versions [][]byte
	for i := 0; i < 3; i++ {
		if i > 0 {
			mustCLI("pki", "renew", "broker2", "--dir", pkiDir)
		}
		versions = append(versions, b2())
	}
	k8s := filepath.Join(dir, "k8s")
	writeVersion := func(name string, crt []byte) {
		d := filepath.Join(k8s, name)
		must(t, os.MkdirAll(d, 0o755))
		key, err := os.ReadFile(filepath.Join(pkiDir, "servers", "broker2.key"))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(d, "tls.crt"), crt, 0o644))
		must(t, os.WriteFile(filepath.Join(d, "tls.key"), key, 0o640))
	}
	writeVersion("..v1", versions[0])
	must(t, os.Symlink("..v1", filepath.Join(k8s, "..data")))
	must(t, os.Symlink("..data/tls.crt", filepath.Join(k8s, "tls.crt")))
	must(t, os.Symlink("..data/tls.key", filepath.Join(k8s, "tls.key")))
	acl := filepath.Join(dir, "acl")
	goodACL := "user alice\ntopic readwrite a/#\nuser bob\ntopic readwrite a/#\n"
	must(t, os.WriteFile(acl, []byte(goodACL), 0o644))

	ports := testutil.FreePorts(t, 2)
	conf := filepath.Join(dir, "mosquitto.conf")
	mustCLI("config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--acl", acl, "--data-dir", "",
		"--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]), "--out", conf)
	// The pid file is written by the user mosquitto drops to.
	run := filepath.Join(dir, "run")
	must(t, os.Mkdir(run, 0o755))
	if os.Geteuid() == 0 {
		if u, err := user.Lookup("mosquitto"); err == nil {
			uid, _ := strconv.Atoi(u.Uid)
			must(t, os.Chown(run, uid, -1))
		}
		for _, p := range []string{k8s, filepath.Join(k8s, "..v1"), filepath.Join(k8s, "..v1", "tls.key")} {
			chgrp(t, p)
		}
	}
	pidFile := filepath.Join(run, "mosquitto.pid")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	must(t, err)
	fmt.Fprintf(f, "pid_file %s\n\nlistener %d 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\nuse_identity_as_username true\n",
		pidFile, ports[1], filepath.Join(pkiDir, "ca.crt"), filepath.Join(k8s, "tls.crt"), filepath.Join(k8s, "tls.key"))
	must(t, f.Close())

	cmd, log := testutil.Start(t, dir, bin, "-c", conf)
	waitUntil(t, 10*time.Second, "mosquitto to start", func() bool { return mosquittoRunning.MatchString(log.String()) }, log.String)
	waitUntil(t, 5*time.Second, "the pid file", func() bool { _, err := os.Stat(pidFile); return err == nil }, log.String)
	alive := func() bool {
		return syscall.Kill(cmd.Process.Pid, 0) == nil && cmd.ProcessState == nil && !exited(cmd.Process.Pid)
	}
	addr1, addr2 := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	served := func(addr string) string {
		t.Helper()
		fp, err := reload.ServedFingerprint(context.Background(), addr)
		if err != nil {
			t.Fatalf("TLS dial %s: %v\n%s", addr, err, log.String())
		}
		return fp
	}
	fileFP := func(path string) string {
		t.Helper()
		c, err := tls.LoadX509KeyPair(path, filepath.Join(pkiDir, "server.key"))
		if strings.Contains(path, "broker2") || strings.Contains(path, "k8s") {
			c, err = tls.LoadX509KeyPair(path, filepath.Join(pkiDir, "servers", "broker2.key"))
		}
		must(t, err)
		return reload.Fingerprint(c.Certificate[0])
	}
	connects := func(client string) bool {
		m, err := testutil.DialMQTT(addr1, testutil.ClientTLS(t, pkiDir, client), 4)
		if err != nil {
			return false
		}
		defer m.Close()
		code, err := m.Connect(testutil.ConnectOptions{ClientID: client, Clean: true, Keepalive: 30})
		return err == nil && code == 0
	}
	reloadArgs := []string{"reload", "mosquitto", "-c", conf}

	t.Run("renewed certificate is served", func(t *testing.T) {
		before := served(addr1)
		mustCLI("pki", "renew", "server", "--dir", pkiDir)
		want := fileFP(filepath.Join(pkiDir, "server.crt"))
		if before == want {
			t.Fatal("renew kept the certificate")
		}
		if got := served(addr1); got != before {
			t.Fatalf("mosquitto serves the renewed certificate before any reload: this test proves nothing")
		}
		out := mustCLI(reloadArgs...)
		if !strings.Contains(out, "sent SIGHUP to mosquitto (pid "+strconv.Itoa(cmd.Process.Pid)+")") || !strings.Contains(out, want) {
			t.Errorf("reload says:\n%s", out)
		}
		if got := served(addr1); got != want {
			t.Errorf("after reload %s serves %s, want %s (before: %s)", addr1, got, want, before)
		}
	})
	t.Run("revoked client is refused", func(t *testing.T) {
		if !connects("alice") {
			t.Fatalf("alice cannot connect before the revocation\n%s", log.String())
		}
		mustCLI("pki", "revoke", "alice", "--dir", pkiDir)
		if !connects("alice") {
			t.Fatalf("mosquitto refuses alice before any reload: this test proves nothing")
		}
		mustCLI(reloadArgs...)
		if connects("alice") {
			t.Errorf("revoked alice still connects after reload")
		}
		if !connects("bob") {
			t.Errorf("bob cannot connect after reload\n%s", log.String())
		}
	})
	t.Run("broken ACL never reaches the broker", func(t *testing.T) {
		must(t, os.WriteFile(acl, []byte(goodACL+"topic READ a/#\n"), 0o644))
		sighups := strings.Count(log.String(), "Reloading config")
		code, out, errOut := runCLI(t, "", reloadArgs...)
		if code != 1 || !strings.Contains(out, acl+":5: invalid access type") || !strings.Contains(out, "no signal sent") {
			t.Errorf("reload of a broken ACL: exit %d\n%s%s", code, out, errOut)
		}
		time.Sleep(500 * time.Millisecond)
		if n := strings.Count(log.String(), "Reloading config"); n != sighups {
			t.Errorf("mosquitto reloaded on a refused reload:\n%s", log.String())
		}
		if !alive() || !connects("bob") {
			t.Fatalf("mosquitto stopped or refuses bob after a refused reload:\n%s", log.String())
		}
		must(t, os.WriteFile(acl, []byte(goodACL), 0o644))
	})
	t.Run("checks of the version that runs", func(t *testing.T) {
		// 2.0 stops at an option of 2.1's: reload checks the config as the
		// running broker's own version reads it.
		keep, err := os.ReadFile(conf)
		must(t, err)
		must(t, os.WriteFile(conf, append(append([]byte{}, keep...), "global_max_connections 1000\n"...), 0o644))
		code, out, errOut := runCLI(t, "", reloadArgs...)
		must(t, os.WriteFile(conf, keep, 0o644))
		if version == "2.0.11" && (code != 1 || !strings.Contains(out, "global_max_connections came in mosquitto 2.1") || !strings.Contains(out, "no signal sent")) {
			t.Errorf("reload of a 2.1 option on 2.0.11: exit %d\n%s%s", code, out, errOut)
		}
		if version == "2.1.2" && (code != 0 || !strings.Contains(out, "sent SIGHUP")) {
			t.Errorf("reload of a 2.1 option on 2.1.2: exit %d\n%s%s\n%s", code, out, errOut, log.String())
		}
		if !alive() || !connects("bob") {
			t.Fatalf("mosquitto stopped or refuses bob:\n%s", log.String())
		}
	})
	t.Run("certificate not matching its key never reaches the broker", func(t *testing.T) {
		// 2.1.2 quits on SIGHUP with such a pair (2.0.11 logs and keeps
		// the old one).
		crt := filepath.Join(pkiDir, "server.crt")
		keep, err := os.ReadFile(crt)
		must(t, err)
		must(t, os.WriteFile(crt, versions[0], 0o644)) // broker2's: another key
		code, out, errOut := runCLI(t, "", reloadArgs...)
		must(t, os.WriteFile(crt, keep, 0o644))
		if code != 1 || !strings.Contains(out, "error: certfile: "+crt+" with keyfile") || !strings.Contains(out, "no signal sent") {
			t.Errorf("reload of a mismatched pair: exit %d\n%s%s", code, out, errOut)
		}
		if !alive() || !connects("bob") {
			t.Fatalf("mosquitto stopped or refuses bob after a refused reload:\n%s", log.String())
		}
	})
	t.Run("symlinked ACL: 2.1 does not follow it", func(t *testing.T) {
		// 2.1 opens acl_file with O_NOFOLLOW (unless
		// MOSQUITTO_UNSAFE_ALLOW_SYMLINKS) and would quit; 2.0 follows it.
		target := acl + ".real"
		must(t, os.Rename(acl, target))
		must(t, os.Symlink(target, acl))
		defer func() { os.Remove(acl); must(t, os.Rename(target, acl)) }()
		code, out, errOut := runCLI(t, "", reloadArgs...)
		if version == "2.1.2" {
			if code != 1 || !strings.Contains(out, "acl_file: "+acl+" is a symlink, which mosquitto 2.1") || !strings.Contains(out, "no signal sent") {
				t.Errorf("2.1.2 with a symlinked ACL: exit %d\n%s%s", code, out, errOut)
			}
		} else if code != 0 {
			t.Errorf("2.0.11 follows a symlinked ACL, yet reload: exit %d\n%s%s", code, out, errOut)
		}
		if !alive() || !connects("bob") {
			t.Fatalf("mosquitto stopped or refuses bob:\n%s", log.String())
		}
	})
	t.Run("watch: rename over and ..data flip", func(t *testing.T) {
		watch, wlog := testutil.Start(t, dir, mqttctlBin, "reload", "mosquitto", "-c", conf, "--watch")
		waitUntil(t, 5*time.Second, "the watch to start", func() bool { return strings.Contains(wlog.String(), "watching") }, wlog.String)
		time.Sleep(1100 * time.Millisecond) // a change must come after the first poll's snapshot
		// An atomic replacement of the file behind the symlinks.
		tmp := filepath.Join(k8s, "..v1", "tls.crt.tmp")
		must(t, os.WriteFile(tmp, versions[1], 0o644))
		must(t, os.Rename(tmp, filepath.Join(k8s, "..v1", "tls.crt")))
		want := fileFP(filepath.Join(k8s, "tls.crt"))
		waitUntil(t, 10*time.Second, "v2 served after a rename over", func() bool { return served(addr2) == want }, func() string { return wlog.String() + log.String() })
		// Kubernetes' swap: a new directory, then ..data flipped to it.
		writeVersion("..v3", versions[2])
		if os.Geteuid() == 0 {
			chgrp(t, filepath.Join(k8s, "..v3"))
			chgrp(t, filepath.Join(k8s, "..v3", "tls.key"))
		}
		must(t, os.Symlink("..v3", filepath.Join(k8s, "..data_tmp")))
		must(t, os.Rename(filepath.Join(k8s, "..data_tmp"), filepath.Join(k8s, "..data")))
		want = fileFP(filepath.Join(k8s, "tls.crt"))
		waitUntil(t, 10*time.Second, "v3 served after a ..data flip", func() bool { return served(addr2) == want }, func() string { return wlog.String() + log.String() })
		waitUntil(t, 5*time.Second, "two logged reloads", func() bool { return strings.Count(wlog.String(), "reloaded, new certificate served") >= 2 }, wlog.String)
		// A broken ACL while watching: refused and logged, the broker runs.
		must(t, os.WriteFile(acl, []byte(goodACL+"bogus line\n"), 0o644))
		waitUntil(t, 10*time.Second, "the refusal logged", func() bool { return strings.Contains(wlog.String(), "not reloaded: no signal sent") }, wlog.String)
		if !strings.Contains(wlog.String(), acl+":5: unknown keyword") || !alive() {
			t.Errorf("watch log lacks the ACL line, or mosquitto stopped:\n%s\n%s", wlog.String(), log.String())
		}
		must(t, watch.Process.Signal(syscall.SIGTERM))
		waitUntil(t, 5*time.Second, "the watch to stop on SIGTERM", func() bool { return strings.Contains(wlog.String(), "stopped") }, wlog.String)
		t.Logf("watch log:\n%s", wlog.String())
	})
	t.Run("why: a bare SIGHUP with that ACL", func(t *testing.T) {
		must(t, syscall.Kill(cmd.Process.Pid, syscall.SIGHUP))
		if version == "2.1.2" {
			// It quits once it has reread the files: slowly on a loaded machine.
			deadline := time.Now().Add(15 * time.Second)
			for alive() && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
		} else {
			time.Sleep(2 * time.Second)
		}
		t.Logf("mosquitto %s after a bare SIGHUP with a broken ACL: running %v\n%s", version, alive(), log.String())
		if version == "2.1.2" && alive() {
			t.Errorf("mosquitto 2.1.2 kept running after SIGHUP with a broken ACL: the ChangeLog says it quits")
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// chgrp gives the mosquitto group a file or directory the test made, as
// config mosquitto does with the files the config names.
func chgrp(t *testing.T, p string) {
	t.Helper()
	g, err := user.LookupGroup("mosquitto")
	if err != nil {
		return
	}
	gid, _ := strconv.Atoi(g.Gid)
	must(t, os.Lchown(p, -1, gid))
	if fi, err := os.Stat(p); err == nil && fi.IsDir() {
		must(t, os.Chmod(p, 0o750))
	}
}

// exited reports whether pid is a zombie (it exited, nobody waited yet).
func exited(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	return strings.HasPrefix(rest, "Z")
}

// waitUntil polls cond for at most d.
func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool, show func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s:\n%s", what, d, show())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestReloadMosquittoRefuses: without -c, without a pid file, and with a
// bad ACL line, reload exits 1, says why (the flag to use, the FILE:LINE)
// and signals nothing (no broker runs here: a signal would fail otherwise).
func TestReloadMosquittoRefuses(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	must(t, os.WriteFile(acl, []byte("user alice\ntopic READ a/#\n"), 0o600))
	good := filepath.Join(dir, "good.conf")
	must(t, os.WriteFile(good, []byte("listener 1883 127.0.0.1\n"), 0o600))
	bad := filepath.Join(dir, "bad.conf")
	must(t, os.WriteFile(bad, []byte("acl_file "+acl+"\npid_file "+filepath.Join(dir, "none.pid")+"\nlistener 1883 127.0.0.1\n"), 0o600))
	runSteps(t, []cliStep{
		{name: "no config", args: []string{"reload", "mosquitto"}, code: 1, errOut: []string{"-c FILE"}},
		{name: "no pid file", args: []string{"reload", "mosquitto", "-c", good}, code: 1,
			errOut: []string{"no pid_file line", "--pid-file", "never signals a process found by name"}},
		{name: "bad ACL", args: []string{"reload", "mosquitto", "-c", bad}, code: 1,
			out: []string{bad + ":1: error: acl_file: " + acl + ":2: invalid access type", "no signal sent"}, absent: []string{"SIGHUP to"}},
		{name: "stale pid file", args: []string{"reload", "mosquitto", "-c", good, "--pid-file", filepath.Join(dir, "none.pid")}, code: 1,
			errOut: []string{"none.pid"}},
	})
}
