package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Mosquitto21 returns the directory of mosquitto 2.1.2's binaries
// (mosquitto, mosquitto_passwd, mosquitto_pub, mosquitto_sub,
// mosquitto_rr), built once from the release source the workplace keeps
// beside the repository (../shared/reference/build-mosquitto-2.1.sh; about
// 30 s the first time, then cached in /var/tmp). Where that script is
// absent (outside this workplace), the test is skipped with a message; where
// it is present but does not build, the test fails in CI and is skipped,
// loudly, elsewhere.
func Mosquitto21(t testing.TB) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "reference", "build-mosquitto-2.1.sh")
	if _, err := os.Stat(script); err != nil {
		t.Logf("*** SKIPPING: %s is absent: mosquitto 2.1.2 is built from the workplace's release source ***", script)
		t.Skip("no mosquitto 2.1.2 source here")
	}
	// flock: packages test in parallel, and the script builds into one cache.
	out, err := exec.Command("flock", "/var/tmp/mosquitto-2.1.2.lock", script).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		if InCI() {
			t.Fatalf("build mosquitto 2.1.2 (%s): %s (make test runs scripts/install-test-deps.sh, which installs cmake and the -dev libraries it needs)", script, msg)
		}
		t.Logf("*** SKIPPING: mosquitto 2.1.2 does not build here: %s; run ./scripts/install-test-deps.sh ***", msg)
		t.Skip("mosquitto 2.1.2 does not build")
	}
	return strings.TrimSpace(string(out))
}
