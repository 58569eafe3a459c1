package main

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestServeRunsMosquitto21Files is a differential test: the file `config
// mosquitto --target 2.1` writes (the password-file and acl-file plugins,
// websockets_origin on a wss listener) is run by mosquitto 2.1.2 and by
// `mqttctl serve -c`, and every probe gets the same answer from both:
// logins with a good, a wrong and an unknown password and none, an allowed
// and a denied subscription, WebSocket upgrades from the listed origin,
// another origin and none. One known difference is checked as such: 2.1.2
// compares an Origin only over the header's length (strncmp), so a page
// whose origin is the beginning of a listed one is let in; serve compares
// the whole origin and refuses it.
func TestServeRunsMosquitto21Files(t *testing.T) {
	bin := testutil.Mosquitto21(t)
	dir := testutil.ReachableDir(t)
	pkiDir := filepath.Join(dir, "pki")
	passwd, acl, conf := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl"), filepath.Join(dir, "m.conf")
	must(t, os.WriteFile(acl, []byte("user alice\ntopic readwrite a/#\ntopic read b/#\n"), 0o600))
	ports := testutil.FreePorts(t, 2)
	runSteps(t, []cliStep{
		{name: "pki", args: []string{"pki", "init", "--dir", pkiDir, "--host", "localhost"}},
		{name: "passwd", args: []string{"passwd", "add", passwd, "alice", "--password-stdin"}, stdin: "pw-alice\n"},
		{name: "config", args: []string{"config", "mosquitto", "--target", "2.1", "--pki", pkiDir, "--mode", "tls", "--passwd", passwd, "--acl", acl,
			"--data-dir", "", "--pid-file", filepath.Join(dir, "run", "m.pid"), "--listen", fmt.Sprintf("127.0.0.1:%d", ports[0]),
			"--websockets", fmt.Sprintf("127.0.0.1:%d", ports[1]), "--http-origin", "https://app.example.com", "--out", conf}},
	})
	if t.Failed() {
		return
	}
	pub, sub := filepath.Join(bin, "mosquitto_pub"), filepath.Join(bin, "mosquitto_sub")
	tlsArgs := []string{"-h", "localhost", "-p", fmt.Sprint(ports[0]), "--cafile", filepath.Join(pkiDir, "ca.crt"), "-i", "probe"}
	mqtt := func(name string, args ...string) func(t *testing.T) string {
		return func(t *testing.T) string {
			cmd := exec.Command(name, append(slicesClone(tlsArgs), args...)...)
			out, err := cmd.CombinedOutput()
			code := 0
			if ee, ok := err.(*exec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return fmt.Sprintf("exit %d: %s", code, strings.TrimSpace(string(out)))
		}
	}
	probes := []struct {
		name string
		run  func(t *testing.T) string
	}{
		{"good password", mqtt(pub, "-u", "alice", "-P", "pw-alice", "-t", "a/1", "-m", "x", "-q", "1")},
		{"wrong password", mqtt(pub, "-u", "alice", "-P", "wrong", "-t", "a/1", "-m", "x", "-q", "1")},
		{"unknown user", mqtt(pub, "-u", "bob", "-P", "pw-alice", "-t", "a/1", "-m", "x", "-q", "1")},
		{"anonymous", mqtt(pub, "-t", "a/1", "-m", "x", "-q", "1")},
		{"allowed retained write", mqtt(pub, "-u", "alice", "-P", "pw-alice", "-t", "a/1", "-m", "kept", "-q", "1", "-r")},
		{"read after allowed write", mqtt(sub, "-u", "alice", "-P", "pw-alice", "-t", "a/1", "-C", "1", "-W", "2")},
		{"denied retained write", mqtt(pub, "-u", "alice", "-P", "pw-alice", "-t", "b/1", "-m", "leaked", "-q", "1", "-r")},
		{"read after denied write", mqtt(sub, "-u", "alice", "-P", "pw-alice", "-t", "b/1", "-C", "1", "-W", "1")},
		{"ws listed origin", wsProbe(pkiDir, ports[1], "https://app.example.com")},
		{"ws other origin", wsProbe(pkiDir, ports[1], "https://evil.example.com")},
		{"ws no origin", wsProbe(pkiDir, ports[1], "")},
	}
	prefix := wsProbe(pkiDir, ports[1], "https://app.example.co")
	results := map[string][]string{}
	var prefixAnswers []string
	for _, broker := range []string{"mosquitto 2.1.2", "serve"} {
		var cmd *exec.Cmd
		var log *testutil.SyncBuffer
		if broker == "serve" {
			cmd, log = testutil.Start(t, dir, mqttctlBin, "serve", "-c", conf)
		} else {
			cmd, log = testutil.Start(t, dir, filepath.Join(bin, "mosquitto"), "-c", conf)
		}
		for _, p := range ports {
			testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", p), 10*time.Second)
		}
		for _, p := range probes {
			results[p.name] = append(results[p.name], p.run(t))
		}
		prefixAnswers = append(prefixAnswers, prefix(t))
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			t.Logf("%s log:\n%s", broker, log.String())
		}
	}
	for _, p := range probes {
		r := results[p.name]
		if len(r) != 2 || r[0] != r[1] {
			t.Errorf("%s: mosquitto 2.1.2 %q, serve %q", p.name, r[0], r[1])
		}
	}
	if results["good password"][0] != "exit 0: " || !strings.HasPrefix(results["ws listed origin"][0], "HTTP/1.1 101") ||
		strings.HasPrefix(results["ws other origin"][0], "HTTP/1.1 101") || results["read after allowed write"][0] != "exit 0: kept" ||
		!strings.Contains(results["read after denied write"][0], "Timed out") {
		t.Errorf("the probes do not probe what they say: %v", results)
	}
	if !strings.HasPrefix(prefixAnswers[0], "HTTP/1.1 101") || strings.HasPrefix(prefixAnswers[1], "HTTP/1.1 101") {
		t.Errorf("an Origin that is the beginning of the listed one: mosquitto 2.1.2 %q (known: let in), serve %q (want: refused)", prefixAnswers[0], prefixAnswers[1])
	}
}

func slicesClone(s []string) []string { return append([]string(nil), s...) }

// wsProbe sends a WebSocket upgrade for MQTT with Origin origin (none when
// "") over TLS and returns the status line.
func wsProbe(pkiDir string, port int, origin string) func(t *testing.T) string {
	return func(t *testing.T) string {
		ca, err := os.ReadFile(filepath.Join(pkiDir, "ca.crt"))
		must(t, err)
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: pool, ServerName: "localhost"})
		if err != nil {
			return "dial: " + err.Error()
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		req := fmt.Sprintf("GET /mqtt HTTP/1.1\r\nHost: localhost:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\n", port)
		if origin != "" {
			req += "Origin: " + origin + "\r\n"
		}
		if _, err := c.Write([]byte(req + "\r\n")); err != nil {
			return "write: " + err.Error()
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return "refused" // mosquitto closes the connection, serve answers 403
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusSwitchingProtocols {
			return "HTTP/1.1 101"
		}
		return "refused"
	}
}
