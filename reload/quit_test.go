package reload

import (
	"errors"
	"os/exec"
	"testing"
	"time"
)

// TestQuitAfterHUP: a broker that exits (even as an unreaped zombie)
// within the watch after its SIGHUP is reported; one that keeps running
// is not.
func TestQuitAfterHUP(t *testing.T) {
	for _, c := range []struct {
		sleep string
		quits bool
	}{{"0.2", true}, {"30", false}} {
		cmd := exec.Command("sleep", c.sleep)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		err := quitAfterHUP(cmd.Process.Pid, time.Second)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if got := errors.Is(err, ErrBrokerQuit); got != c.quits {
			t.Errorf("sleep %s: %v, want quit %v", c.sleep, err, c.quits)
		}
	}
}
