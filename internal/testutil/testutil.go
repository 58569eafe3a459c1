// Package testutil holds helpers shared by mqttctl's tests: external binaries
// (which must exist in CI), free loopback ports and command runs.
package testutil

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true), where a missing
// external tool is a failure, not a skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireBinary returns the path of an external program. When it is missing
// the test fails in CI and is skipped, loudly, elsewhere.
func RequireBinary(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		if _, err := os.Stat(dir + "/" + name); err == nil {
			return dir + "/" + name
		}
	}
	if InCI() {
		t.Fatalf("%s is not installed; CI must install it (make test runs scripts/install-test-deps.sh)", name)
	}
	t.Logf("*** SKIPPING: %s is not installed; run ./scripts/install-test-deps.sh (make test does) ***", name)
	t.Skipf("%s not installed", name)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago: each is held until all are chosen (n calls of FreePort may
// be handed the same port twice).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("find a free port: %v", err)
		}
		defer l.Close()
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// Run runs a program with a timeout and returns its combined output.
func Run(t testing.TB, dir string, stdin []byte, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// MustRun is Run that fails the test on a non-zero exit.
func MustRun(t testing.TB, dir string, name string, args ...string) string {
	t.Helper()
	out, err := Run(t, dir, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}

// WaitPort waits until something accepts TCP connections on addr.
func WaitPort(t testing.TB, addr string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nothing listens on %s after %s", addr, within)
}

// Start starts a long-running program and stops it (by PID) when the test
// ends. Its output goes to the returned buffer.
func Start(t testing.TB, dir string, name string, args ...string) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	buf := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = buf, buf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
	})
	return cmd, buf
}
