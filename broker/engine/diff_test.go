package engine_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// startMosquitto runs mosquitto (bin) on a free port, anonymous.
func startMosquitto(t *testing.T, bin string) (string, *testutil.SyncBuffer) {
	return startMosquittoLog(t, bin, "log_type all\n")
}

// startMosquittoConf runs mosquitto with extra configuration lines and
// no logging.
func startMosquittoConf(t testing.TB, bin, extra string) string {
	addr, _ := startMosquittoLog(t, bin, "log_type none\n"+extra)
	return addr
}

func startMosquittoLog(t testing.TB, bin, extra string) (string, *testutil.SyncBuffer) {
	dir := testutil.ReachableDir(t)
	port := testutil.FreePort(t)
	conf := filepath.Join(dir, "mosquitto.conf")
	text := fmt.Sprintf("listener %d 127.0.0.1\nallow_anonymous true\nlog_dest stdout\n%s", port, extra)
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	_, log := testutil.Start(t, dir, bin, "-c", conf)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	testutil.WaitPort(t, addr, 10*time.Second)
	return addr, log
}

// TestDifferential runs every script with a transcript (protocol_test.go)
// against mosquitto 2.0.11 and 2.1.2 and against the engine: the packets
// each client reads must be the same.
func TestDifferential(t *testing.T) {
	brokers := []struct {
		name string
		bin  func(*testing.T) string
		opts engine.Options // the engine set as that version's defaults
	}{
		{"2.0.11", func(t *testing.T) string { return testutil.RequireBinary(t, "mosquitto") }, engine.Options{}},
		// 2.1's max_packet_size defaults to 2000000 (and says so in CONNACK).
		{"2.1.2", func(t *testing.T) string { return filepath.Join(testutil.Mosquitto21(t), "mosquitto") }, engine.Options{MaxPacketSize: 2000000}},
	}
	for _, b := range brokers {
		t.Run(b.name, func(t *testing.T) {
			addr, log := startMosquitto(t, b.bin(t))
			defer func() {
				if t.Failed() {
					t.Log(log.String())
				}
			}()
			for _, sc := range scripts {
				if sc.want == nil || not20[sc.name] != "" && b.name == "2.0.11" {
					continue
				}
				t.Run(sc.name, func(t *testing.T) {
					theirs := runScript(t, addr, sc.steps)
					eaddr, _ := startEngine(t, b.opts)
					ours := runScript(t, eaddr, sc.steps)
					if !slices.Equal(ours, theirs) {
						t.Errorf("engine:\n%s\nmosquitto %s:\n%s", strings.Join(ours, "\n"), b.name, strings.Join(theirs, "\n"))
					}
				})
			}
		})
	}
}
