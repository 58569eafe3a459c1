package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Mosquitto is one version of the real mosquitto that tests compare with.
type Mosquitto struct {
	Version string // "2.0.11" or "2.1.2"
	Bin     string // the broker binary
}

// Name is the subtest name: "mosquitto-2.1.2".
func (m Mosquitto) Name() string { return "mosquitto-" + m.Version }

// Is21 reports whether this is mosquitto 2.1.
func (m Mosquitto) Is21() bool { return m.Version == "2.1.2" }

// Tool returns the path of one of this version's programs (mosquitto_passwd,
// mosquitto_pub, ...).
func (m Mosquitto) Tool(t testing.TB, name string) string {
	t.Helper()
	if m.Is21() {
		return filepath.Join(filepath.Dir(m.Bin), name)
	}
	return RequireBinary(t, name)
}

// Start is StartMosquitto with this version.
func (m Mosquitto) Start(t testing.TB, dir string, c MosquittoConfig) *SyncBuffer {
	t.Helper()
	_, log := startMosquitto(t, m.Bin, dir, c)
	return log
}

// StartProcess is StartMosquittoProcess with this version.
func (m Mosquitto) StartProcess(t testing.TB, dir string, c MosquittoConfig) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	return startMosquitto(t, m.Bin, dir, c)
}

// TryStart starts this version on c and reports whether it runs (its
// listeners are open) or quit; errors it logs while it starts (2.0.11 logs
// and drops a password line it cannot decode) do not fail the test.
func (m Mosquitto) TryStart(t testing.TB, dir string, c MosquittoConfig) (*SyncBuffer, bool) {
	t.Helper()
	cmd, log := launchMosquitto(t, m.Bin, dir, c)
	exited := make(chan struct{})
	go func() {
		_, _ = cmd.Process.Wait() // Start's cleanup then finds it reaped
		close(exited)
	}()
	deadline := time.After(10 * time.Second)
	for !runningLine.MatchString(log.String()) {
		select {
		case <-exited:
			return log, false
		case <-deadline:
			t.Fatalf("%s neither started nor quit within 10 s:\n%s", m.Name(), log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return log, true
}

// Mosquitto2011 returns Debian's mosquitto 2.0.11 (testutil.RequireBinary).
func Mosquitto2011(t testing.TB) Mosquitto {
	t.Helper()
	return Mosquitto{Version: "2.0.11", Bin: RequireBinary(t, "mosquitto")}
}

// Mosquitto212 returns mosquitto 2.1.2, built once (Mosquitto21).
func Mosquitto212(t testing.TB) Mosquitto {
	t.Helper()
	return Mosquitto{Version: "2.1.2", Bin: filepath.Join(Mosquitto21(t), "mosquitto")}
}

// EachMosquitto runs f in one subtest per mosquitto version, named
// "mosquitto-2.0.11" and "mosquitto-2.1.2", one after the other; a version
// that is not here is skipped (in CI: fails) in its own subtest.
func EachMosquitto(t *testing.T, f func(t *testing.T, m Mosquitto)) {
	t.Helper()
	eachMosquitto(t, false, f)
}

// EachMosquittoParallel is EachMosquitto with the two subtests running at
// the same time (t.Parallel), for tests that mostly wait: they run once the
// calling test function has returned, so f must not share its writes (nor a
// directory for mosquitto.conf) between versions.
func EachMosquittoParallel(t *testing.T, f func(t *testing.T, m Mosquitto)) {
	t.Helper()
	eachMosquitto(t, true, f)
}

func eachMosquitto(t *testing.T, parallel bool, f func(t *testing.T, m Mosquitto)) {
	t.Helper()
	for _, v := range []struct {
		name string
		get  func(testing.TB) Mosquitto
	}{{"mosquitto-2.0.11", Mosquitto2011}, {"mosquitto-2.1.2", Mosquitto212}} {
		t.Run(v.name, func(t *testing.T) {
			m := v.get(t) // the 2.1.2 build (flock) is not done in parallel with the other's cases
			if parallel {
				t.Parallel()
			}
			f(t, m)
		})
	}
}

// StartAnonymousMosquitto runs the mosquitto binary bin with one listener
// on a free 127.0.0.1 port that lets anonymous clients in, logging to its
// standard output, plus the extra config lines, until the test ends. It
// returns the listener's address, once it accepts connections, and the log.
func StartAnonymousMosquitto(t testing.TB, bin, extra string) (string, *SyncBuffer) {
	t.Helper()
	dir := ReachableDir(t)
	port := FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nlog_dest stdout\n%s", port, extra)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, log := Start(t, dir, bin, "-c", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	WaitPort(t, addr, 10*time.Second)
	return addr, log
}
