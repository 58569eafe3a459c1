package main

// `mqttctl serve` as a process, driven by mosquitto_pub/mosquitto_sub and
// openssl s_client: QoS levels, retained messages, wills, persistent
// sessions, restarts after SIGTERM and kill -9, and SIGHUP reloads.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

type served struct {
	cmd  *exec.Cmd
	log  *testutil.SyncBuffer
	port int
	args []string
	dir  string
}

// startServe runs `mqttctl serve ARGS --listen 127.0.0.1:PORT` in dir.
func startServe(t *testing.T, dir string, port int, args ...string) *served {
	t.Helper()
	if port == 0 {
		port = testutil.FreePort(t)
	}
	full := append([]string{"serve"}, args...)
	full = append(full, "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	cmd, log := testutil.Start(t, dir, mqttctlBin, full...)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	return &served{cmd: cmd, log: log, port: port, args: args, dir: dir}
}

func (s *served) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	_ = s.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { _, err := s.cmd.Process.Wait(); done <- err }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("serve did not stop on %v:\n%s", sig, s.log.String())
	}
}

func (s *served) clientArgs(pkiDir, client string, extra ...string) []string {
	a := []string{"-h", "localhost", "-p", fmt.Sprint(s.port), "--cafile", filepath.Join(pkiDir, "ca.crt"),
		"--cert", filepath.Join(pkiDir, "clients", client+".crt"), "--key", filepath.Join(pkiDir, "clients", client+".key")}
	return append(a, extra...)
}

// subscriber starts mosquitto_sub -d and waits for its SUBACK.
func (s *served) subscriber(t *testing.T, pkiDir, client string, extra ...string) (*exec.Cmd, *testutil.SyncBuffer) {
	t.Helper()
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	// stdbuf: mosquitto_sub's stdout is block-buffered on a pipe.
	cmd, out := testutil.Start(t, s.dir, "stdbuf", append([]string{"-oL", sub}, s.clientArgs(pkiDir, client, append([]string{"-d"}, extra...)...)...)...)
	waitFor(t, out, "received SUBACK", "subscriber")
	return cmd, out
}

func (s *served) publish(t *testing.T, pkiDir, client string, extra ...string) {
	t.Helper()
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	testutil.MustRun(t, s.dir, pub, s.clientArgs(pkiDir, client, extra...)...)
}

// stopWithin sends sig to p and waits for it to end, killing it after d
// (a mosquitto_sub once sat on SIGTERM for 9 minutes in a loaded full run).
func stopWithin(t *testing.T, p *os.Process, sig os.Signal, d time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() { _, _ = p.Wait(); close(done) }()
	_ = p.Signal(sig)
	select {
	case <-done:
	case <-time.After(d):
		t.Logf("pid %d still runs %v after %v: killed", p.Pid, sig, d)
		_ = p.Kill()
		<-done
	}
}

func waitFor(t *testing.T, buf *testutil.SyncBuffer, text, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(buf.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %q not seen in:\n%s", what, text, buf.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func newServePKI(t *testing.T, clients ...string) (dir, pkiDir string) {
	t.Helper()
	dir = t.TempDir()
	pkiDir = filepath.Join(dir, "pki")
	args := []string{"pki", "init", "--dir", pkiDir, "--host", "localhost", "--host", "127.0.0.1"}
	for _, c := range clients {
		args = append(args, "--client", c)
	}
	if code, _, e := runCLI(t, "", args...); code != 0 {
		t.Fatal(e)
	}
	return dir, pkiDir
}

func TestServeMutualTLSWithStandardClients(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	dir, p := newServePKI(t, "alice", "bob")
	srv := startServe(t, dir, 0, "--mtls", "--pki", p)

	// openssl s_client: verified chain with a certificate, refused without.
	addr := fmt.Sprintf("127.0.0.1:%d", srv.port)
	out, _ := testutil.Run(t, dir, []byte{}, openssl, "s_client", "-connect", addr, "-CAfile", filepath.Join(p, "ca.crt"),
		"-cert", filepath.Join(p, "clients/alice.crt"), "-key", filepath.Join(p, "clients/alice.key"), "-verify_return_error", "-verify_hostname", "localhost")
	if !strings.Contains(out, "Verify return code: 0 (ok)") {
		t.Fatalf("s_client with a certificate:\n%s", out)
	}
	out, _ = testutil.Run(t, dir, []byte("x"), openssl, "s_client", "-ign_eof", "-connect", addr, "-CAfile", filepath.Join(p, "ca.crt"), "-verify_return_error")
	if !strings.Contains(out, "certificate required") {
		t.Fatalf("s_client without a certificate was not refused:\n%s", out)
	}

	// QoS 0, 1 and 2.
	_, got := srv.subscriber(t, p, "bob", "-t", "qos/#", "-q", "2", "-v")
	for q := range 3 {
		srv.publish(t, p, "alice", "-t", fmt.Sprintf("qos/%d", q), "-m", fmt.Sprintf("m%d", q), "-q", fmt.Sprint(q))
	}
	for q := range 3 {
		waitFor(t, got, fmt.Sprintf("qos/%d m%d", q, q), "QoS delivery")
	}

	// Retained.
	srv.publish(t, p, "alice", "-t", "ret/a", "-m", "kept", "-r", "-q", "1")
	_, ret := srv.subscriber(t, p, "bob", "-t", "ret/#", "-v")
	waitFor(t, ret, "ret/a kept", "retained message")

	// Will on an abrupt disconnect.
	_, wills := srv.subscriber(t, p, "bob", "-t", "will/#", "-v")
	wcmd, _ := srv.subscriber(t, p, "alice", "-t", "nothing", "--will-topic", "will/alice", "--will-payload", "gone", "-k", "5")
	_ = wcmd.Process.Kill()
	waitFor(t, wills, "will/alice gone", "will message")

	// Clean-session=false subscriber receives QoS 1 messages sent while it was offline.
	pcmd, _ := srv.subscriber(t, p, "bob", "-c", "-i", "bob-persist", "-q", "1", "-t", "offline/#")
	stopWithin(t, pcmd.Process, syscall.SIGTERM, 10*time.Second)
	for i := range 3 {
		srv.publish(t, p, "alice", "-t", fmt.Sprintf("offline/%d", i), "-m", fmt.Sprintf("queued%d", i), "-q", "1")
	}
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	out, err := testutil.Run(t, dir, nil, sub, srv.clientArgs(p, "bob", "-c", "-i", "bob-persist", "-q", "1", "-t", "offline/#", "-C", "3", "-W", "5")...)
	if err != nil || !strings.Contains(out, "queued0") || !strings.Contains(out, "queued2") {
		t.Fatalf("offline messages not delivered: %v\n%s\nserve log:\n%s", err, out, srv.log.String())
	}
}

func TestServeRestartKeepsMessages(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(sig.String(), func(t *testing.T) {
			dir, p := newServePKI(t, "alice", "bob")
			data := filepath.Join(dir, "data")
			srv := startServe(t, dir, 0, "--mtls", "--pki", p, "--data-dir", data)
			pcmd, _ := srv.subscriber(t, p, "bob", "-c", "-i", "bob-persist", "-q", "1", "-t", "q/#")
			stopWithin(t, pcmd.Process, syscall.SIGTERM, 10*time.Second)
			srv.publish(t, p, "alice", "-t", "r/state", "-m", "retained-before", "-r", "-q", "1")
			for i := range 5 {
				srv.publish(t, p, "alice", "-t", fmt.Sprintf("q/%d", i), "-m", fmt.Sprintf("acked%d", i), "-q", "1")
			}
			if strings.Contains(srv.log.String(), "level=ERROR") {
				t.Errorf("a first start with persistence logs an error:\n%s", srv.log.String())
			}
			srv.stop(t, sig)

			srv = startServe(t, dir, srv.port, "--mtls", "--pki", p, "--data-dir", data)
			sub := testutil.RequireBinary(t, "mosquitto_sub")
			out, err := testutil.Run(t, dir, nil, sub, srv.clientArgs(p, "bob", "-c", "-i", "bob-persist", "-q", "1", "-t", "q/#", "-C", "5", "-W", "5")...)
			for i := range 5 {
				if !strings.Contains(out, fmt.Sprintf("acked%d", i)) {
					t.Fatalf("after %v, queued message %d lost (%v):\n%s\nserve log:\n%s", sig, i, err, out, srv.log.String())
				}
			}
			out, err = testutil.Run(t, dir, nil, sub, srv.clientArgs(p, "alice", "-t", "r/#", "-C", "1", "-W", "5")...)
			if err != nil || !strings.Contains(out, "retained-before") {
				t.Fatalf("after %v, retained message lost: %v %s", sig, err, out)
			}
		})
	}
}

func TestServeSIGHUPReloadsPasswords(t *testing.T) {
	dir, p := newServePKI(t)
	pw := filepath.Join(dir, "passwd")
	if code, _, e := runCLI(t, "", "passwd", "add", pw, "carol", "-b", "first"); code != 0 {
		t.Fatal(e)
	}
	srv := startServe(t, dir, 0, "--tls", "--pki", p, "--passwd", pw)
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	base := []string{"-h", "localhost", "-p", fmt.Sprint(srv.port), "--cafile", filepath.Join(p, "ca.crt"), "-u", "carol"}
	cmd, out := testutil.Start(t, dir, "stdbuf", append([]string{"-oL", sub}, append(base, "-P", "first", "-t", "x", "-d")...)...)
	waitFor(t, out, "received SUBACK", "password client")

	if code, _, e := runCLI(t, "", "passwd", "add", pw, "carol", "-b", "second"); code != 0 {
		t.Fatal(e)
	}
	_ = srv.cmd.Process.Signal(syscall.SIGHUP)
	waitFor(t, srv.log, "configuration reloaded", "reload")
	done := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("client with the old password still connected after SIGHUP:\n%s", srv.log.String())
	}
	// The new password works, the old one no longer does.
	if o, err := testutil.Run(t, dir, nil, sub, append(base, "-P", "second", "-t", "x", "-C", "1", "-W", "1")...); strings.Contains(o, "not authorised") {
		t.Fatalf("new password refused: %v %s", err, o)
	}
	if o, _ := testutil.Run(t, dir, nil, sub, append(base, "-P", "first", "-t", "x", "-C", "1", "-W", "1")...); !strings.Contains(o, "not authorised") {
		t.Fatalf("old password still accepted: %s", o)
	}
}

func TestServePrintConfig(t *testing.T) {
	_, p := newServePKI(t)
	code, out, e := runCLI(t, "", "serve", "--mtls", "--pki", p, "--print-config")
	if code != 0 || !strings.Contains(out, "require_certificate true") || !strings.Contains(out, "use_identity_as_username true") {
		t.Fatalf("print-config: %d %s %s", code, out, e)
	}
	code, _, e = runCLI(t, "", "serve")
	if code != 1 || !strings.Contains(e, "-c mosquitto.conf") {
		t.Fatalf("serve without a config: %d %s", code, e)
	}
}

func TestServeDeprecatedPortAndP(t *testing.T) {
	dir := t.TempDir()
	p1, p2 := testutil.FreePort(t), testutil.FreePort(t)
	conf := filepath.Join(dir, "m.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf("port %d\nbind_address 127.0.0.1\nallow_anonymous true\n", p1)), 0o644)
	cmd, log := testutil.Start(t, dir, mqttctlBin, "serve", "-c", conf)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", p1), 10*time.Second)
	m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", p1), nil, 4)
	if err != nil {
		t.Fatal(err)
	}
	if code, err := m.Connect(testutil.ConnectOptions{ClientID: "p", Clean: true}); err != nil || code != 0 {
		t.Fatalf("port/bind_address: %d %v\n%s", code, err, log.String())
	}
	m.Disconnect()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait() // also waits for the output to be copied
	if !strings.Contains(log.String(), "stopping") {
		t.Errorf("no clean stop on SIGTERM:\n%s", log.String())
	}

	// mosquitto ignores -p with -c; serve refuses it rather than guess.
	code, _, e := runCLI(t, "", "serve", "-c", conf, "-p", fmt.Sprint(p2))
	if code != 1 || !strings.Contains(e, "-p with -c") || !strings.Contains(e, "listener PORT ADDRESS") {
		t.Errorf("serve -c with -p: %d %s", code, e)
	}

	// The quick form's -p moves its one TLS listener and opens nothing else.
	_, pkiDir := newServePKI(t)
	cmd, log = testutil.Start(t, dir, mqttctlBin, "serve", "--mtls", "--pki", pkiDir, "-p", fmt.Sprint(p2))
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", p2), 10*time.Second)
	for i := 0; i < 100 && !strings.Contains(log.String(), "msg=listening"); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if n := strings.Count(log.String(), "msg=listening"); n != 1 || !strings.Contains(log.String(), fmt.Sprintf("address=127.0.0.1:%d mode=mtls", p2)) {
		t.Errorf("serve --mtls -p opened %d listeners, want one mTLS listener on 127.0.0.1:%d:\n%s", n, p2, log.String())
	}
}

// TestServePrintConfigRedactsSecrets: a bridge's passwords and a plugin's
// password do not reach the terminal (or a log of it).
func TestServePrintConfigRedactsSecrets(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "m.conf")
	os.WriteFile(conf, []byte("listener 18999 127.0.0.1\nallow_anonymous true\n"+
		"connection central\naddress 192.0.2.1:1883\ntopic # out\nremote_username edge\nremote_password hunter2-remote\nlocal_password hunter2-local\n"), 0o644)
	code, out, e := runCLI(t, "", "serve", "-c", conf, "--print-config")
	if code != 0 || strings.Contains(out, "hunter2") || !strings.Contains(out, "remote_password <redacted>") || !strings.Contains(out, "remote_username edge") {
		t.Fatalf("print-config: exit %d, want remote_password redacted, the rest as is:\n%s%s", code, out, e)
	}
}

// TestServeSharedPersistenceNamesTheFix: a second broker on the same
// persistence_location stops naming the fix for the command that ran
// (issue 22: it said "timeout (is another broker using ...?)" and no fix).
func TestServeSharedPersistenceNamesTheFix(t *testing.T) {
	dir, p := newServePKI(t)
	data := filepath.Join(dir, "data")
	first := startServe(t, dir, 0, "--mtls", "--pki", p, "--data-dir", data)
	defer first.stop(t, syscall.SIGTERM)

	conf := filepath.Join(dir, "second.conf")
	code, out, e := runCLI(t, "", "serve", "--mtls", "--pki", p, "--data-dir", data, "--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), "--print-config")
	if code != 0 {
		t.Fatal(e)
	}
	if err := os.WriteFile(conf, []byte(out), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"quick form", []string{"serve", "--mtls", "--pki", p, "--data-dir", data, "--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t))},
			"give each broker its own --data-dir DIR"},
		{"config file", []string{"serve", "-c", conf},
			"give each broker its own persistence_location in " + conf + ": write the config with mqttctl config mosquitto ... --data-dir DIR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := testutil.Run(t, dir, nil, mqttctlBin, tc.args...)
			if err == nil {
				t.Fatalf("a second broker on %s started:\n%s", data, out)
			}
			if !strings.Contains(out, "another broker holds it locked") || !strings.Contains(out, tc.want) {
				t.Fatalf("want the lock named and %q, got:\n%s", tc.want, out)
			}
		})
	}
}
