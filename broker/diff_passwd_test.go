package broker_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestDifferentialPasswordFile: one password file with the lines each
// version's mosquitto_passwd writes (2.0.11: $7$, 101 iterations, 12-byte
// salt; 2.1.2: $7$, 1000 iterations, 64-byte salt) and mqttctl's own, run
// by serve and by mosquitto 2.0.11 and 2.1.2: the same users log in, with
// the same codes. Then the same file with one line no version decodes:
// 2.1.2 and serve refuse the file (they do not start), 2.0.11 drops that
// user and starts. ($argon2id$ lines are left out: this 2.1.2 is built
// without argon2 and refuses a file with one; serve's are checked in
// confgen's TestMosquitto21Hashes and cmd/mqttctl's TestPasswdMosquitto21.)
func TestDifferentialPasswordFile(t *testing.T) {
	m20, m21 := testutil.Mosquitto2011(t), testutil.Mosquitto212(t)
	dir := testutil.ReachableDir(t)
	pw := filepath.Join(dir, "passwd")
	testutil.MustRun(t, dir, m20.Tool(t, "mosquitto_passwd"), "-c", "-b", pw, "alice", "alice-pw")
	testutil.MustRun(t, dir, m21.Tool(t, "mosquitto_passwd"), "-b", pw, "carol", "carol-pw")
	err := confgen.EditPasswordFile(pw, false, func(pf *confgen.PasswordFile) error {
		h, err := confgen.HashPassword([]byte("dave-pw"), 0)
		pf.Set("dave", h)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(pw)
	if err != nil {
		t.Fatal(err)
	}
	config := func(port int) *confgen.Config {
		c := &confgen.Config{}
		c.Set("persistence", "false")
		l := &confgen.Listener{Port: port, Bind: "127.0.0.1"}
		l.Set("allow_anonymous", "false")
		l.Set("password_file", pw)
		c.Listener = append(c.Listener, l)
		return c
	}
	cases := []struct {
		name, user, pw string
		version        byte
		// mosquitto20 is what 2.0.11 answers where it differs from 2.1.2
		// (serve follows 2.1.2).
		mosquitto20 string
	}{
		{name: "2.0's line, right password", user: "alice", pw: "alice-pw"},
		{name: "2.0's line, wrong password", user: "alice", pw: "carol-pw"},
		// 2.1.2 takes a 12- or 64-byte salt (libcommon/password_common.c:323);
		// 2.0.11 drops the line ("Unable to decode password salt").
		{name: "2.1's line (64-byte salt), right password", user: "carol", pw: "carol-pw", mosquitto20: "CONNACK 5"},
		{name: "2.1's line (64-byte salt), right password v5", user: "carol", pw: "carol-pw", version: 5, mosquitto20: "CONNACK 135"},
		{name: "2.1's line (64-byte salt), wrong password", user: "carol", pw: "alice-pw"},
		{name: "mqttctl's line, right password", user: "dave", pw: "dave-pw"},
		{name: "mqttctl's line, wrong password v5", user: "dave", pw: "x", version: 5},
		{name: "unknown user", user: "bob", pw: "alice-pw"},
	}
	login := func(port int, i int, user, pass string, version byte) string {
		if version == 0 {
			version = 4
		}
		m, err := testutil.DialMQTT(fmt.Sprintf("127.0.0.1:%d", port), nil, version)
		if err != nil {
			return "dial: " + err.Error()
		}
		defer m.Close()
		code, err := m.Connect(testutil.ConnectOptions{ClientID: fmt.Sprintf("pw%d", i), Username: s(user), Password: s(pass), Clean: true})
		if err != nil {
			return "connect: " + err.Error()
		}
		return fmt.Sprintf("CONNACK %d", code)
	}
	port := testutil.FreePort(t)
	brokertest.Start(t, config(port), nil, broker.Options{})
	var served []string
	for i, c := range cases {
		served = append(served, login(port, i, c.user, c.pw, c.version))
	}
	// A line no version decodes (a salt that is not base64).
	bad := append(append([]byte{}, data...), "eve:$7$101$not*base64$AAAA\n"...)
	testutil.EachMosquitto(t, func(t *testing.T, mq testutil.Mosquitto) {
		if err := os.WriteFile(pw, data, 0o600); err != nil {
			t.Fatal(err)
		}
		port := testutil.FreePort(t)
		mlog, ok := mq.TryStart(t, testutil.ReachableDir(t), config(port))
		if !ok {
			t.Fatalf("%s did not start:\n%s", mq.Name(), mlog.String())
		}
		for i, c := range cases {
			got, want := login(port, i, c.user, c.pw, c.version), served[i]
			if c.mosquitto20 != "" && !mq.Is21() {
				want = c.mosquitto20
			}
			t.Logf("%-48s %s: %-12s mqttctl: %s", c.name, mq.Name(), got, served[i])
			if got != want {
				t.Errorf("%s: %s %q, want %q (mqttctl %q)", c.name, mq.Name(), got, want, served[i])
			}
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", mq.Name(), mlog.String())
		}

		// The file with the bad line: 2.1.2 refuses it
		// (plugins/password-file/password_parse.c:101-106), as serve does.
		if err := os.WriteFile(pw, bad, 0o600); err != nil {
			t.Fatal(err)
		}
		mlog, ok = mq.TryStart(t, testutil.ReachableDir(t), config(testutil.FreePort(t)))
		r, _ := config(testutil.FreePort(t)).Resolve()
		b, err := broker.New(r, broker.Options{})
		if err == nil {
			b.Close()
		}
		t.Logf("a line no version decodes: %s starts %v, mqttctl starts %v (%v)", mq.Name(), ok, err == nil, err)
		if wantStart := !mq.Is21(); ok != wantStart || err == nil {
			t.Errorf("a line no version decodes: %s starts %v (want %v), mqttctl starts %v (want false)\n%s", mq.Name(), ok, wantStart, err == nil, mlog.String())
		}
	})
}
