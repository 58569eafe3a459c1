package broker_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// rawConnects are CONNECT packets of each protocol level, client id "c".
var rawConnects = []struct {
	name string
	pkt  []byte
}{
	{"3.1 (MQIsdp, 3)", append([]byte{0x10, 0x0f, 0, 6, 'M', 'Q', 'I', 's', 'd', 'p', 3, 2, 0, 60}, 0, 1, 'c')},
	{"3.1.1 (4)", append([]byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60}, 0, 1, 'c')},
	{"5.0 (5)", append([]byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 5, 2, 0, 60, 0}, 0, 1, 'c')},
	{"level 6", append([]byte{0x10, 0x0d, 0, 4, 'M', 'Q', 'T', 'T', 6, 2, 0, 60}, 0, 1, 'c')},
}

// rawAnswer sends pkt and returns every byte the server sends back within a
// second, in hex, and whether it then closed the connection.
func rawAnswer(t *testing.T, addr string, pkt []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		return "write failed"
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	var got []byte
	buf := make([]byte, 256)
	for {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		var ne net.Error
		switch {
		case errors.As(err, &ne) && ne.Timeout():
			return fmt.Sprintf("% x, open", got)
		case errors.Is(err, io.EOF) || err != nil:
			return fmt.Sprintf("% x, closed", got)
		}
	}
}

// TestDifferentialAcceptProtocolVersions runs mosquitto 2.1's
// accept_protocol_versions under mosquitto 2.1.2 and the bundled broker: a
// CONNECT of every level to a listener that accepts only 5 and to one that
// accepts only 3 and 4 gets the same bytes back from both, and the same
// close.
func TestDifferentialAcceptProtocolVersions(t *testing.T) {
	bin := filepath.Join(testutil.Mosquitto21(t), "mosquitto")
	text := "allow_anonymous true\nlistener %d 127.0.0.1\naccept_protocol_versions 5\nlistener %d 127.0.0.1\naccept_protocol_versions 3, 4\n"
	var got [2][]string
	for i, name := range []string{"mosquitto 2.1.2", "mqttctl"} {
		dir := testutil.ReachableDir(t)
		ports := testutil.FreePorts(t, 2)
		conf := fmt.Sprintf(text, ports[0], ports[1])
		log := startOn21OrServe(t, i == 0, bin, dir, "a.conf", conf, ports)
		for _, p := range ports {
			for _, rc := range rawConnects {
				a := rawAnswer(t, fmt.Sprintf("127.0.0.1:%d", p), rc.pkt)
				if rc.pkt[8] == 5 && strings.HasPrefix(a, "20 ") && len(a) > 12 && a[9:11] == "00" && strings.HasSuffix(a, ", open") {
					// accepted: the properties of a v5 CONNACK are not this
					// test's (2.1.2 adds its default maximum packet size).
					a = "v5 CONNACK 0x00, open"
				}
				got[i] = append(got[i], a)
			}
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, log.String())
			}
		})
	}
	j := 0
	for _, listener := range []string{"accepts 5", "accepts 3, 4"} {
		for _, rc := range rawConnects {
			t.Logf("%-14s %-16s mosquitto 2.1.2: %-40s mqttctl: %s", listener, rc.name, got[0][j], got[1][j])
			if got[0][j] != got[1][j] {
				t.Errorf("%s, CONNECT %s: mosquitto 2.1.2 %q, mqttctl %q", listener, rc.name, got[0][j], got[1][j])
			}
			j++
		}
	}
	if got[0][2] != "v5 CONNACK 0x00, open" || got[0][1] != "20 02 00 01, closed" || got[0][6] != "20 03 00 84 00, closed" {
		t.Errorf("the cases do not probe what they say: %v", got[0])
	}
}

// startOn21OrServe runs conf (whose listeners are on ports) under
// mosquitto 2.1.2 (bin) when mosquitto is set, else under the bundled
// broker, until the test ends; conf is written to dir/name for mosquitto.
// It returns the broker's log once every port accepts connections.
func startOn21OrServe(t *testing.T, mosquitto bool, bin, dir, name, conf string, ports []int) *testutil.SyncBuffer {
	t.Helper()
	c, err := confgen.Parse([]byte(conf), name)
	if err != nil {
		t.Fatal(err)
	}
	if !mosquitto {
		log := &testutil.SyncBuffer{}
		brokertest.Start(t, c, log, broker.Options{})
		return log
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	_, log := testutil.Start(t, dir, bin, "-c", path)
	for _, p := range ports {
		testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", p), 10*time.Second)
	}
	return log
}
