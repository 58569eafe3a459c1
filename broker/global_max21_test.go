package broker_test

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// connectHeld connects, sends a 3.1.1 CONNECT as client c<id> and returns the connection
// (left open) and what came back within a second.
func connectHeld(t *testing.T, addr string, id byte) (net.Conn, string) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return nil, "dial failed"
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Write([]byte{0x10, 0x0e, 0, 4, 'M', 'Q', 'T', 'T', 4, 2, 0, 60, 0, 2, 'c', id}); err != nil {
		return c, "closed"
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4)
	n, err := c.Read(buf)
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return c, "nothing"
	case err != nil:
		return c, "closed"
	}
	return c, fmt.Sprintf("% x", buf[:n])
}

// TestDifferentialGlobalMaxConnections runs mosquitto 2.1's
// global_max_connections 2 over two listeners under 2.1.2 and the bundled
// broker: one client on each is accepted, a third (on either) is closed at
// once, and once a client has left a new one is accepted.
func TestDifferentialGlobalMaxConnections(t *testing.T) {
	bin := filepath.Join(testutil.Mosquitto21(t), "mosquitto")
	text := "global_max_connections 2\nallow_anonymous true\nlistener %d 127.0.0.1\nlistener %d 127.0.0.1\n"
	var got [2][]string
	for i, name := range []string{"mosquitto 2.1.2", "mqttctl"} {
		dir := testutil.ReachableDir(t)
		ports := testutil.FreePorts(t, 2)
		conf := fmt.Sprintf(text, ports[0], ports[1])
		log := startOn21OrServe(t, i == 0, bin, dir, "g.conf", conf, ports)
		a1, a2 := fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
		c1, r1 := connectHeld(t, a1, '1')
		_, r2 := connectHeld(t, a2, '2')
		_, r3 := connectHeld(t, a1, '3')
		_, r4 := connectHeld(t, a2, '4')
		c1.Close()
		time.Sleep(500 * time.Millisecond)
		_, r5 := connectHeld(t, a1, '5')
		got[i] = []string{r1, r2, r3, r4, r5}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, log.String())
			}
		})
	}
	t.Logf("mosquitto 2.1.2 %q\nmqttctl %q", got[0], got[1])
	want := []string{"20 02 00 00", "20 02 00 00", "closed", "closed", "20 02 00 00"}
	for j, step := range []string{"first, listener 1", "second, listener 2", "third, listener 1", "third, listener 2", "after one left"} {
		if got[0][j] != got[1][j] || got[0][j] != want[j] {
			t.Errorf("%s: mosquitto 2.1.2 %q, mqttctl %q, want %q", step, got[0][j], got[1][j], want[j])
		}
	}
}
