package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestEmptyUsernameLineRefused: a password line with nothing before its
// ':' makes mosquitto 2.1.2 refuse the file at start and quit on SIGHUP
// (found by the adversarial run: config check said ok and reload sent the
// signal). serve and config check --target mosquitto refuse it at
// file:line; serve does, as mosquitto 2.1.2 (which the test runs).
func TestEmptyUsernameLineRefused(t *testing.T) {
	dir := testutil.ReachableDir(t)
	pw := filepath.Join(dir, "passwd")
	good, err := confgen.HashPassword([]byte("pw"), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(pw, []byte("alice:"+good+"\n:"+good+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := confgen.Parse([]byte(fmt.Sprintf("listener %d 127.0.0.1\npassword_file %s\n", testutil.FreePort(t), pw)), "t.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Resolve()
	want := pw + ":2: a line with an empty username"
	if _, err := broker.New(r, broker.Options{}); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("serve on a password file with an empty username: %v", err)
	}
	if _, ds := c.CheckMosquittoFor(confgen.Mosquitto21); !strings.Contains(fmt.Sprint(ds), want) || !confgen.HasErrors(ds) {
		t.Fatalf("config check --target mosquitto-2.1: %v", ds)
	}
	m := testutil.Mosquitto212(t)
	if _, ok := m.TryStart(t, dir, c); ok {
		t.Fatal("mosquitto 2.1.2 started on it: the refusal is not mosquitto's decision")
	}
}
