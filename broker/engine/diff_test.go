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
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// startMosquitto runs mosquitto (bin) on a free port, anonymous.
func startMosquitto(t *testing.T, bin string) (string, *testutil.SyncBuffer) {
	return testutil.StartAnonymousMosquitto(t, bin, "log_type all\n")
}

// startMosquittoConf runs mosquitto with extra configuration lines and
// no logging.
func startMosquittoConf(t testing.TB, bin, extra string) string {
	addr, _ := testutil.StartAnonymousMosquitto(t, bin, "log_type none\n"+extra)
	return addr
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
		{"2.0.11", func(t *testing.T) string { return testutil.RequireBinary(t, "mosquitto") }, engine.Options{Mosquitto20: true}},
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
				if sc.want == nil {
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

// optionScripts run under a mosquitto.conf (%[1]d and %[2]d are the
// listeners' ports) and the engine set as it says.
var optionScripts = []struct {
	name      string
	conf      string
	opts      engine.Options
	listeners []engine.Listener
	steps     []step
	files     map[string]string // written beside mosquitto.conf (%[3]s is that directory)
}{
	{"max_keepalive, retain_available false, allow_zero_length_clientid false",
		"max_keepalive 30\nretain_available false\nlistener %[1]d 127.0.0.1\nallow_anonymous true\nallow_zero_length_clientid false\n",
		engine.Options{MaxKeepalive: 30, RetainNotAvailable: true}, []engine.Listener{{RefuseEmptyClientID: true}},
		steps(open("a", 4, connect("k2", true, keepalive(20))), drop("a"),
			open("a", 5, connect("k3", true, keepalive(60))), drop("a"),
			open("a", 5, connect("k4", true, keepalive(20))), drop("a"),
			open("a", 4, connect("", true, keepalive(20))), until("a"),
			open("a", 5, connect("", true, keepalive(20))), until("a"),
			open("a", 4, connect("r1", true, keepalive(20))), send("a", publish("r/x", "x", 1, true, 3)), until("a"),
			open("a", 5, connect("r2", true, keepalive(20))), send("a", publish("r/x", "x", 1, true, 3)), until("a"),
			dial("a", 4), send("a", connect("r3", true, keepalive(20), will("w/x", "gone", 0, true))), until("a"),
			open("a", 5, connect("r4", true, keepalive(20), will("w/x", "gone", 0, true))), until("a")), nil},
	{"max_keepalive, a 3.1.1 client asking for more", "max_keepalive 30\nlistener %[1]d 127.0.0.1\nallow_anonymous true\n",
		engine.Options{MaxKeepalive: 30}, []engine.Listener{{}},
		steps(open("a", 4, connect("k1", true, keepalive(60))), send("a", pingreq), recv("a", 1)),
		nil}, // 2.0.11 lets the client keep its keepalive (Mosquitto20); 2.1.2 refuses it with CONNACK 2
	{"mount_point",
		"listener %[1]d 127.0.0.1\nallow_anonymous true\nmount_point m/\nlistener %[2]d 127.0.0.1\n",
		engine.Options{}, []engine.Listener{{MountPoint: "m/"}, {}},
		steps(open("obs", 4, connect("obs", true)), send("obs", subscribe(1, "#", 0)), recv("obs", 1),
			step{who: "m", dial: 4, port: 0}, send("m", connect("mc", true)), recv("m", 1),
			send("m", subscribe(1, "t/#", 0)), recv("m", 1), send("m", subscribe(2, "$share/g/s/#", 0)), recv("m", 1),
			send("m", publish("t/1", "up", 0, false, 0)), recv("obs", 1), recv("m", 1),
			send("obs", publish("t/outside", "no", 0, false, 0)), send("obs", publish("m/t/inside", "yes", 0, false, 0)),
			send("obs", publish("m/s/shared", "shared", 0, false, 0)), recv("obs", 3), recv("m", 1), quiet("m"),
			send("m", unsubscribe(3, "t/#")), recv("m", 1)),
		nil}, // 2.0.11 sends topics with the mount point on (Mosquitto20)
	{"acl_file: denied publishes acknowledged and dropped",
		"acl_file %[3]s/acl\nlistener %[1]d 127.0.0.1\nallow_anonymous true\n",
		engine.Options{Hooks: pubOnlyACL{}}, []engine.Listener{{}},
		steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "#", 1)), recv("s", 1),
			open("p", 4, connect("pub3", true)), send("p", publish("deny/0", "x", 0, false, 0)),
			send("p", publish("deny/1", "x", 1, false, 1)), recv("p", 1),
			send("p", publish("deny/2", "x", 2, false, 2)), recv("p", 1), send("p", ack(mw.PUBREL, 2)), recv("p", 1),
			open("q", 5, connect("pub5", true)), send("q", publish("deny/1", "x", 1, false, 1)), recv("q", 1),
			send("q", publish("deny/2", "x", 2, false, 2)), recv("q", 1), send("q", ack(mw.PUBREL, 2)), recv("q", 1),
			send("p", publish("pub/ok", "yes", 1, false, 3)), recv("p", 1), recv("s", 1)),
		map[string]string{"acl": "topic write pub/#\ntopic read #\n"}},
}

func init() {
	// The mount point script's observer dials the second listener.
	for i := range optionScripts[2].steps {
		if optionScripts[2].steps[i].who == "obs" && optionScripts[2].steps[i].dial != 0 {
			optionScripts[2].steps[i].port = 1
		}
	}
}

// TestDifferentialOptions runs optionScripts against mosquitto 2.0.11 and
// 2.1.2 and the engine.
func TestDifferentialOptions(t *testing.T) {
	for _, sc := range optionScripts {
		t.Run(sc.name, func(t *testing.T) {
			for _, b := range []struct {
				name, bin     string
				maxPacketSize int // the version's default
			}{
				{"2.0.11", testutil.RequireBinary(t, "mosquitto"), 0},
				{"2.1.2", filepath.Join(testutil.Mosquitto21(t), "mosquitto"), 2000000},
			} {
				t.Run(b.name, func(t *testing.T) {
					opts := sc.opts
					opts.MaxPacketSize = b.maxPacketSize
					opts.Mosquitto20 = b.name == "2.0.11"
					addrs, _ := startEngineOn(t, opts, sc.listeners...)
					ours := runScriptOn(t, addrs, sc.steps)
					ports := testutil.FreePorts(t, 2)
					dir := testutil.ReachableDir(t)
					conf := filepath.Join(dir, "mosquitto.conf")
					text := fmt.Sprintf(sc.conf, ports[0], ports[1], dir)
					for name, body := range sc.files {
						if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
							t.Fatal(err)
						}
					}
					if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
						t.Fatal(err)
					}
					_, log := testutil.Start(t, dir, b.bin, "-c", conf)
					var theirAddrs []string
					for i := range sc.listeners {
						a := fmt.Sprintf("127.0.0.1:%d", ports[i])
						testutil.WaitPort(t, a, 10*time.Second)
						theirAddrs = append(theirAddrs, a)
					}
					theirs := runScriptOn(t, theirAddrs, sc.steps)
					if !slices.Equal(ours, theirs) {
						t.Errorf("engine:\n%s\nmosquitto %s:\n%s\n%s", strings.Join(ours, "\n"), b.name, strings.Join(theirs, "\n"), log.String())
					}
				})
			}
		})
	}
}

// pubOnlyACL is the acl_file "topic write pub/#, topic read #".
type pubOnlyACL struct{ engine.NopHooks }

func (pubOnlyACL) MayPublish(_ *engine.Client, t string) bool { return strings.HasPrefix(t, "pub/") }
