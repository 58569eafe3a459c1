package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/agent"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// agentEnv is a pki, `mqttctl enroll serve`, `mqttctl serve` and mosquitto
// (both mutual TLS on the pki), and a device directory holding ca.crt.
type agentEnv struct {
	dir, pki, dev, est  string
	servePort, mosqPort int
	estLog              *testutil.SyncBuffer
}

func newAgentEnv(t *testing.T) *agentEnv {
	t.Helper()
	mosq := testutil.RequireBinary(t, "mosquitto")
	e := &agentEnv{dir: testutil.ReachableDir(t)}
	e.pki = filepath.Join(e.dir, "pki")
	if code, _, errOut := runCLI(t, "", "pki", "init", "--dir", e.pki, "--host", "localhost", "--host", "127.0.0.1"); code != 0 {
		t.Fatal(errOut)
	}
	estPort := testutil.FreePort(t)
	e.est = fmt.Sprintf("https://localhost:%d", estPort)
	_, e.estLog = testutil.Start(t, e.dir, mqttctlBin, "enroll", "serve", "--pki", e.pki, "--listen", fmt.Sprintf("127.0.0.1:%d", estPort))
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", estPort), 10*time.Second)
	for i, broker := range []string{"serve", "mosquitto"} {
		port := testutil.FreePort(t)
		conf := filepath.Join(e.dir, broker+".conf")
		group := "none"
		if os.Geteuid() == 0 && broker == "mosquitto" {
			group = "mosquitto"
		}
		if code, _, errOut := runCLI(t, "", "config", "mosquitto", "--pki", e.pki, "--mode", "mtls", "--listen", fmt.Sprintf("127.0.0.1:%d", port),
			"--data-dir", filepath.Join(e.dir, broker+"-data")+"/", "--out", conf, "--broker-group", group); code != 0 {
			t.Fatal(errOut)
		}
		if i == 0 {
			e.servePort = port
			testutil.Start(t, e.dir, mqttctlBin, "serve", "-c", conf)
		} else {
			e.mosqPort = port
			testutil.Start(t, e.dir, mosq, "-c", conf)
		}
		testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	}
	e.dev = filepath.Join(e.dir, "device")
	os.Mkdir(e.dev, 0o700)
	ca, _ := os.ReadFile(filepath.Join(e.pki, "ca.crt"))
	os.WriteFile(filepath.Join(e.dev, "ca.crt"), ca, 0o644)
	return e
}

func (e *agentEnv) token(t *testing.T, name string) string {
	t.Helper()
	code, out, errOut := runCLI(t, "", "enroll", "token", "create", name, "--pki", e.pki)
	if code != 0 {
		t.Fatal(errOut)
	}
	p := filepath.Join(e.dev, name+".token")
	os.WriteFile(p, []byte(out), 0o600)
	return p
}

// publish runs mosquitto_pub with the device's files against both brokers.
func (e *agentEnv) publish(t *testing.T, name, msg string) {
	t.Helper()
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	for _, port := range []int{e.servePort, e.mosqPort} {
		if out, err := testutil.Run(t, e.dir, nil, pub, "-h", "localhost", "-p", fmt.Sprint(port), "--cafile", filepath.Join(e.dev, "ca.crt"),
			"--cert", filepath.Join(e.dev, name+".crt"), "--key", filepath.Join(e.dev, name+".key"), "-t", "devices/"+name, "-m", msg, "-q", "1"); err != nil {
			t.Fatalf("mosquitto_pub to port %d with the device's files: %v %s", port, err, out)
		}
	}
}

// TestAgent: the agent enrols with a token against `mqttctl enroll serve`,
// the device logs into serve and mosquitto, a run before the renew point
// exits 3, status says when it renews, and the printed unit runs as
// written.
func TestAgent(t *testing.T) {
	e := newAgentEnv(t)
	tok := e.token(t, "dev-1")
	secret, _ := os.ReadFile(tok)
	marker := filepath.Join(e.dir, "exec-ran")
	base := []string{"agent", "--dir", e.dev, "--est", e.est}
	runSteps(t, []cliStep{
		{name: "no certificate and no token", args: append(base, "--name", "dev-1", "--once"), code: 1, errOut: []string{"no certificate for dev-1", "--token-file FILE"}},
		{name: "no ca.crt", args: append(base, "--name", "dev-1", "--once", "--cafile", filepath.Join(e.dir, "none.crt")), code: 1, errOut: []string{"the factory puts the pki's ca.crt there", "--cafile FILE"}},
		{name: "not https", args: []string{"agent", "--dir", e.dev, "--est", "http://localhost:8443", "--once"}, code: 1, errOut: []string{"is not https://HOST:PORT"}},
		{name: "bad renew point", args: append(base, "--renew-at", "100%", "--once"), code: 1, errOut: []string{"1% to 99%"}},
		{name: "enrol", args: append(base, "--name", "dev-1", "--token-file", tok, "--once", "--exec", "echo \"$MQTTCTL_NAME\" > "+marker),
			out: []string{"enrolled dev-1: serial", "renews at"}, errOut: []string{"msg=enrolled"}, absent: []string{strings.TrimSpace(string(secret))}},
		{name: "not due", args: append(base, "--once"), code: exitNotDue, out: []string{"not due dev-1"}},
		{name: "status", args: []string{"agent", "status", "--dir", e.dev}, out: []string{"device:     dev-1", "renews:     at ", "verifies against"}},
	})
	if b, _ := os.ReadFile(marker); strings.TrimSpace(string(b)) != "dev-1" {
		t.Errorf("--exec did not run with MQTTCTL_NAME: %q", b)
	}
	if _, err := os.Stat(tok); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the spent token file is still there")
	}
	if st, _ := os.Stat(filepath.Join(e.dev, "dev-1.key")); st == nil || st.Mode().Perm() != 0o600 {
		t.Errorf("the key is not 0600: %v", st)
	}
	waitFor(t, e.estLog, "authorised_by=token", "the EST server's audit line")
	e.publish(t, "dev-1", "enrolled")

	// The unit's ExecStart, run as systemd would split it, is the agent.
	code, unit, errOut := runCLI(t, "", append(base, "--exec", `echo "50% $HOME"`, "--print-unit")...)
	if code != 0 || !strings.Contains(unit, "Restart=on-failure") || !strings.Contains(unit, "[Install]") {
		t.Fatalf("--print-unit: %d\n%s%s", code, unit, errOut)
	}
	var execStart string
	for _, l := range strings.Split(unit, "\n") {
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			execStart = v
		}
	}
	argv := splitSystemd(t, execStart)
	if argv[len(argv)-1] != `echo "50% $HOME"` {
		t.Fatalf("the unit's --exec is %q", argv[len(argv)-1])
	}
	cmd := exec.Command(mqttctlBin, append(argv[1:], "--once")...)
	if out, err := cmd.CombinedOutput(); cmd.ProcessState.ExitCode() != exitNotDue {
		t.Fatalf("the unit's command: %v\n%s", err, out)
	}
}

// splitSystemd splits an ExecStart= value as systemd does for what
// agent.QuoteSystemd writes.
func splitSystemd(t *testing.T, s string) []string {
	t.Helper()
	var out []string
	var cur strings.Builder
	in, started := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case in && c == '\\' && i+1 < len(s):
			i++
			if s[i] == 'n' {
				cur.WriteByte('\n')
			} else {
				cur.WriteByte(s[i])
			}
		case c == '"':
			in, started = !in, true
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == c:
			cur.WriteByte(c)
			i++
			started = true
		case c == ' ' && !in:
			if started {
				out = append(out, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteByte(c)
			started = true
		}
	}
	if started {
		out = append(out, cur.String())
	}
	return out
}

// TestAgentRenewsAcrossTheSwap: past the renew point (the agent's clock
// moved on; the certificate is real and short of its end for the brokers),
// the agent re-enrols with `mqttctl enroll serve`, checks the new pair
// against serve, swaps and runs --exec; a subscriber connected with the old
// pair keeps receiving, and the new files log into serve and mosquitto. A
// revoked certificate is refused in plain words.
func TestAgentRenewsAcrossTheSwap(t *testing.T) {
	e := newAgentEnv(t)
	tok := e.token(t, "dev-1")
	if code, _, errOut := runCLI(t, "", "agent", "--dir", e.dev, "--est", e.est, "--name", "dev-1", "--token-file", tok, "--once"); code != 0 {
		t.Fatal(errOut)
	}
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	_, subOut := testutil.Start(t, e.dir, "stdbuf", "-oL", sub, "-h", "localhost", "-p", fmt.Sprint(e.servePort), "--cafile", filepath.Join(e.dev, "ca.crt"),
		"--cert", filepath.Join(e.dev, "dev-1.crt"), "--key", filepath.Join(e.dev, "dev-1.key"), "-t", "devices/#", "-d", "-i", "watcher")
	waitFor(t, subOut, "received SUBACK", "subscriber")
	st, err := agent.ReadStatus(e.dev, "", 0, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, rekey := range []bool{false, true} {
		var log bytes.Buffer
		now := func() time.Time { return time.Now().Add(time.Until(st.RenewAt) + time.Minute) }
		o := agent.Options{Dir: e.dev, EST: e.est, Rekey: rekey, Now: now, Check: fmt.Sprintf("mqtts://localhost:%d", e.servePort),
			Exec: "echo swapped >> " + filepath.Join(e.dir, "reloads"), Log: slog.New(slog.NewTextHandler(&log, nil))}
		out, err := agent.Once(context.Background(), o)
		if err != nil || out != agent.Renewed {
			t.Fatalf("rekey %v: %v %v\n%s\n%s", rekey, out, err, log.String(), e.estLog.String())
		}
		nst, _ := agent.ReadStatus(e.dev, "", 0, time.Now())
		if nst.Serial == st.Serial || nst.PrevSerial != st.Serial {
			t.Fatalf("rekey %v: %+v", rekey, nst)
		}
		if !strings.Contains(log.String(), "logs into the broker") {
			t.Errorf("no broker check: %s", log.String())
		}
		e.publish(t, "dev-1", fmt.Sprintf("renewed-%v", rekey))
		waitFor(t, subOut, fmt.Sprintf("renewed-%v", rekey), "the subscriber connected with the old pair")
		st = nst
	}
	waitFor(t, e.estLog, "authorised_by=current-certificate", "the EST server's audit line")
	if b, _ := os.ReadFile(filepath.Join(e.dir, "reloads")); strings.Count(string(b), "swapped") != 2 {
		t.Errorf("--exec ran %q", b)
	}
	// Revoked: refused, the pair left as it is.
	if code, _, errOut := runCLI(t, "", "pki", "revoke", "dev-1", "--dir", e.pki); code != 0 {
		t.Fatal(errOut)
	}
	o := agent.Options{Dir: e.dev, EST: e.est, Now: func() time.Time { return time.Now().Add(time.Until(st.RenewAt) + time.Minute) }}
	if _, err := agent.Once(context.Background(), o); err == nil || !strings.Contains(err.Error(), "is revoked: it cannot renew") {
		t.Fatalf("a revoked certificate: %v", err)
	}
	if nst, _ := agent.ReadStatus(e.dev, "", 0, time.Now()); nst.Serial != st.Serial {
		t.Error("the pair changed on a refusal")
	}
	// The server down: --once fails at once, saying so, and keeps the token.
	dev2 := filepath.Join(e.dir, "device2")
	os.Mkdir(dev2, 0o700)
	ca, _ := os.ReadFile(filepath.Join(e.pki, "ca.crt"))
	os.WriteFile(filepath.Join(dev2, "ca.crt"), ca, 0o644)
	tok2 := filepath.Join(dev2, "token")
	os.WriteFile(tok2, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600)
	runSteps(t, []cliStep{
		{name: "server down", args: []string{"agent", "--dir", dev2, "--name", "dev-2", "--token-file", tok2, "--est", fmt.Sprintf("https://localhost:%d", testutil.FreePort(t)), "--once"},
			code: 1, errOut: []string{"the EST server is unreachable"}},
		{name: "a wrong token is not called revoked", args: []string{"agent", "--dir", dev2, "--name", "dev-2", "--token-file", tok2, "--est", e.est, "--once"},
			code: 1, errOut: []string{"wrong, used, revoked or expired"}, absent: []string{"a revoked device cannot renew"}},
	})
	if _, err := os.Stat(tok2); err != nil {
		t.Errorf("the token file went with a failed enrolment: %v", err)
	}
}
