package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

func TestConfigMosquitto(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("user dashboard\ntopic read sensors/#\n"), 0o600)
	pkiDir := newPKIDir(t, "--host", "localhost")
	conf := filepath.Join(dir, "m.conf")
	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("listener 8883\ncertfile /x.crt\n"), 0o644)
	runSteps(t, []cliStep{
		{name: "mtls", args: []string{"config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--acl", acl, "--listen", "127.0.0.1:8883", "--out", conf, "--broker-group", "none"},
			out: []string{"mosquitto -c " + conf}},
		{name: "-o FILE still works", args: []string{"config", "mosquitto", "--pki", pkiDir, "--mode", "mtls", "--listen", "127.0.0.1:8883", "-o", conf + ".2", "--broker-group", "none"},
			out: []string{"mosquitto -c " + conf + ".2", "deprecated"}},
		{name: "check", args: []string{"config", "check", conf}, out: []string{"mutual TLS"}},
		{name: "tls without passwd", args: []string{"config", "mosquitto", "--pki", pkiDir, "--mode", "tls"}, code: 1, errOut: []string{"--passwd"}},
		{name: "bad config", args: []string{"config", "check", bad}, code: 1, out: []string{bad + ":2: error: certfile without keyfile"}},
	})
}

// TestConfigNotRootDataDir: a newcomer who is not root follows the
// README's step by step (pki init, config mosquitto, serve -c). The
// config's persistence_location must be one that account can write
// (issue 22: it was /var/lib/mosquitto/, and serve stopped with a
// misleading "chown" advice), and a persistence_location it cannot write
// is named with the fix.
func TestConfigNotRootDataDir(t *testing.T) {
	var prefix []string
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		// Run as nobody, in a directory nobody owns.
		setpriv := testutil.RequireBinary(t, "setpriv")
		var err error
		if dir, err = os.MkdirTemp("", "notroot"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755)
		prefix = []string{setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--"}
	}
	run := func(args ...string) (string, error) {
		argv := append(append(prefix[:len(prefix):len(prefix)], mqttctlBin), args...)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	readOnly := filepath.Join(dir, "ro") // made by this process: not writable by the one under test
	os.Mkdir(readOnly, 0o555)
	if o, err := run("pki", "init", "--client", "alice"); err != nil {
		t.Fatalf("pki init: %v %s", err, o)
	}
	port := testutil.FreePort(t)
	o, err := run("config", "mosquitto", "--pki", "pki", "--mode", "mtls", "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--out", "mosquitto.conf")
	if err != nil {
		t.Fatalf("config mosquitto: %v %s", err, o)
	}
	want := filepath.Join(dir, "mosquitto-data") + "/"
	conf, _ := os.ReadFile(filepath.Join(dir, "mosquitto.conf"))
	if !strings.Contains(string(conf), "persistence_location "+want+"\n") || !strings.Contains(o, "Persistence in "+want) {
		t.Fatalf("not root, the persistence_location should be %s:\n%s\n%s", want, o, conf)
	}
	if st, err := os.Stat(want); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("%s: %v %v, want a 0700 directory", want, st, err)
	}
	// serve on it starts (and is stopped), and one it cannot write is refused with the fix.
	argv := append(prefix[:len(prefix):len(prefix)], mqttctlBin, "serve", "-c", "mosquitto.conf")
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	var log testutil.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	if o, err := run("config", "mosquitto", "--pki", "pki", "--mode", "mtls", "--data-dir", readOnly, "--listen", fmt.Sprintf("127.0.0.1:%d", testutil.FreePort(t)), "--out", "ro.conf"); err != nil {
		t.Fatalf("config mosquitto --data-dir: %v %s", err, o)
	}
	o, err = run("serve", "-c", "ro.conf")
	if err == nil || !strings.Contains(o, "persistence_location "+readOnly+"/ is not writable") || !strings.Contains(o, "--data-dir DIR") {
		t.Fatalf("serve on a persistence_location it cannot write: %v\n%s", err, o)
	}
}
