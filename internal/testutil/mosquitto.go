package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var runningLine = regexp.MustCompile(`mosquitto version \S+ running`)

// ReachableDir returns a temporary directory that the mosquitto user can
// enter: mosquitto started as root drops to that user before reading its
// files.
func ReachableDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	if os.Geteuid() == 0 {
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// MosquittoConfig is a configuration StartMosquitto can run:
// *confgen.Config is one. testutil sits below the packages it tests, so it
// names only the methods it uses.
type MosquittoConfig interface {
	// Marshal is the mosquitto.conf text.
	Marshal() []byte
	// PrepareBroker refuses a config with errors and, run as root, gives
	// group read access to the files it names below root.
	PrepareBroker(group, root string) error
}

// StartMosquitto writes c to dir/mosquitto.conf, gives the mosquitto group
// access to the files it names (as `mqttctl config mosquitto` does) and runs
// the real mosquitto until the test ends. It returns mosquitto's log.
func StartMosquitto(t testing.TB, dir string, c MosquittoConfig) *SyncBuffer {
	t.Helper()
	_, log := StartMosquittoProcess(t, dir, c)
	return log
}

// StartMosquittoProcess is StartMosquitto that also returns the process
// (to signal it).
func StartMosquittoProcess(t testing.TB, dir string, c MosquittoConfig) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	return startMosquitto(t, RequireBinary(t, "mosquitto"), dir, c)
}

// startMosquitto runs the mosquitto binary bin on c (StartMosquittoProcess).
func startMosquitto(t testing.TB, bin, dir string, c MosquittoConfig) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	cmd, log := launchMosquitto(t, bin, dir, c)
	deadline := time.Now().Add(10 * time.Second)
	// "mosquitto version X running" comes once the listeners are open (2.1
	// logs "Info: running mosquitto as user: ..." before them).
	for !runningLine.MatchString(log.String()) {
		if time.Now().After(deadline) || strings.Contains(log.String(), "Error") {
			t.Fatalf("mosquitto did not start:\n%s", log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cmd, log
}

// launchMosquitto writes c to dir/mosquitto.conf, gives the mosquitto group
// access to the files it names and starts bin on it.
func launchMosquitto(t testing.TB, bin, dir string, c MosquittoConfig) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	conf := filepath.Join(dir, "mosquitto.conf")
	if err := os.WriteFile(conf, c.Marshal(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.PrepareBroker("mosquitto", dir); err != nil {
		t.Fatal(err)
	}
	return Start(t, dir, bin, "-c", conf)
}
