package testutil

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/mqttctl/mqttctl/confgen"
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
func (m Mosquitto) Tool(name string) string { return filepath.Join(filepath.Dir(m.Bin), name) }

// Start is StartMosquitto with this version.
func (m Mosquitto) Start(t testing.TB, dir string, c *confgen.Config) *SyncBuffer {
	t.Helper()
	_, log := startMosquitto(t, m.Bin, dir, c)
	return log
}

// StartProcess is StartMosquittoProcess with this version.
func (m Mosquitto) StartProcess(t testing.TB, dir string, c *confgen.Config) (*exec.Cmd, *SyncBuffer) {
	t.Helper()
	return startMosquitto(t, m.Bin, dir, c)
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
	for _, v := range []struct {
		name string
		get  func(testing.TB) Mosquitto
	}{{"mosquitto-2.0.11", Mosquitto2011}, {"mosquitto-2.1.2", Mosquitto212}} {
		t.Run(v.name, func(t *testing.T) { f(t, v.get(t)) })
	}
}
