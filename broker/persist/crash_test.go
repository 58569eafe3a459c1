package persist

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// TestCrashChild is the broker that TestKill9KeepsAcknowledged kills: it
// runs only in the child process (PERSIST_CRASH_CHILD names the database),
// serves engine and Store on a loopback port and prints the address.
func TestCrashChild(t *testing.T) {
	path := os.Getenv("PERSIST_CRASH_CHILD")
	if path == "" {
		t.Skip("the child process of TestKill9KeepsAcknowledged")
	}
	time.AfterFunc(2*time.Minute, func() { os.Exit(3) }) // a parent that died does not leave it running
	b := serveStore(t, openStore(t, path, nil), nil)
	fmt.Printf("CRASH-CHILD-ADDR %s\n", b.addr)
	select {}
}

// TestKill9KeepsAcknowledged: a publisher sends QoS 1 messages (pipelined)
// to a persistent session's topic and the broker is killed with SIGKILL
// right after a random number of PUBACKs, several times; after each
// restart the session gets every message that was acknowledged.
func TestKill9KeepsAcknowledged(t *testing.T) {
	path := dbPath(t)
	start := func() (*exec.Cmd, string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PERSIST_CRASH_CHILD="+path)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "CRASH-CHILD-ADDR "); ok {
				go func() {
					for sc.Scan() {
					}
				}()
				return cmd, addr
			}
		}
		t.Fatalf("the child broker did not start: %v", sc.Err())
		return nil, ""
	}
	owed := map[string]bool{} // acknowledged to the publisher, not yet received by dev1
	received := 0
	drain := func(addr string) {
		t.Helper()
		c := dial(t, addr, 4)
		c.connect("dev1", false, 0)
		for _, p := range c.receive(500*time.Millisecond, nil) {
			delete(owed, p)
			received++
		}
		c.disconnect()
		if len(owed) > 0 {
			t.Fatalf("%d acknowledged messages lost, e.g. %q", len(owed), first(owed))
		}
	}

	cmd, addr := start()
	c := dial(t, addr, 4)
	c.connect("dev1", false, 0)
	c.subscribe("q/#", 1, 0)
	c.disconnect()
	const rounds = 6
	for round := range rounds {
		kill := 1 + rand.IntN(400)
		pub := dial(t, addr, 4)
		pub.connect("pub", true, 0)
		go func() { // pipelined: as fast as the socket takes them
			var buf []byte
			for i := 1; i <= 1000; i++ {
				p := mqttwire.Packet{Type: mqttwire.PUBLISH, Version: 4, QoS: 1, ID: uint16(i), Topic: []byte("q/t"), Payload: fmt.Appendf(nil, "r%d-%d", round, i)}
				buf = p.Append(buf[:0])
				if _, err := pub.nc.Write(buf); err != nil {
					return
				}
			}
		}()
		acked := 0
		for acked < kill {
			p, err := pub.tryRead(5 * time.Second)
			if err != nil {
				t.Fatalf("round %d: after %d PUBACKs: %v", round, acked, err)
			}
			if p.Type == mqttwire.PUBACK {
				owed[fmt.Sprintf("r%d-%d", round, p.ID)] = true
				acked++
			}
		}
		cmd.Process.Kill() // SIGKILL, right after the PUBACK
		cmd.Wait()
		pub.nc.Close()
		cmd, addr = start()
		drain(addr)
		t.Logf("round %d: killed after %d PUBACKs; all delivered after the restart", round, kill)
	}
	t.Logf("%d messages received over %d kills, none acknowledged lost", received, rounds)
}

func first(m map[string]bool) string {
	for k := range m {
		return k
	}
	return ""
}
