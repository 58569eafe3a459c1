package broker_test

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestReloadKeepsPluginFiles: mosquitto 2.1 reads plugin lines at start
// only, so a reload that names another plugin_opt_password_file keeps the
// first file (whose changes it does read again), and says the new one needs
// a restart. The same steps with SIGHUP to mosquitto 2.1.2 give the same
// logins (TestReloadKeepsPluginFilesLikeMosquitto21).
func TestReloadKeepsPluginFiles(t *testing.T) {
	dir := t.TempDir()
	line := func(user, pw string) string {
		h, err := confgen.HashPassword([]byte(pw), 0)
		if err != nil {
			t.Fatal(err)
		}
		return user + ":" + h + "\n"
	}
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(a, []byte(line("alice", "pw-a")), 0o600))
	must(os.WriteFile(b, []byte(line("bob", "pw-b")), 0o600))
	port := testutil.FreePort(t)
	conf := func(file string) string {
		return fmt.Sprintf("allow_anonymous false\nplugin mosquitto_password_file.so\nplugin_opt_password_file %s\nlistener %d 127.0.0.1\n", file, port)
	}
	br, log := start(t, conf(a), time.Second)
	login := func(user, pw string) bool {
		m := dialPlain(t, fmt.Sprintf("127.0.0.1:%d", port), 4)
		code, err := m.Connect(testutil.ConnectOptions{ClientID: user, Clean: true, Username: testutil.Str(user), Password: testutil.Str(pw)})
		return err == nil && code == 0
	}
	if !login("alice", "pw-a") || login("bob", "pw-b") {
		t.Fatal("the plugin's password file is not the one in force")
	}
	c, err := confgen.Parse([]byte(conf(b)), "new.conf")
	must(err)
	r, _ := c.Resolve()
	must(br.Reload(r))
	if !login("alice", "pw-a") || login("bob", "pw-b") {
		t.Errorf("after a reload naming another plugin file, the first must stay (as mosquitto 2.1):\n%s", log.String())
	}
	if !strings.Contains(log.String(), "plugin lines are read at start") {
		t.Errorf("the reload does not say the plugin's file needs a restart:\n%s", log.String())
	}
	// the same file, changed, is read again
	must(os.WriteFile(a, []byte(line("alice", "pw-a")+line("carol", "pw-c")), 0o600))
	c, _ = confgen.Parse([]byte(conf(a)), "same.conf")
	r, _ = c.Resolve()
	must(br.Reload(r))
	if !login("carol", "pw-c") {
		t.Errorf("a reload does not read the plugin's file again:\n%s", log.String())
	}
}

// TestReloadKeepsPluginFilesLikeMosquitto21: mosquitto 2.1.2, sent SIGHUP
// after its config names another plugin_opt_password_file, keeps the first
// file, as serve's Reload does (TestReloadKeepsPluginFiles).
func TestReloadKeepsPluginFilesLikeMosquitto21(t *testing.T) {
	bin := filepath.Join(testutil.Mosquitto21(t), "mosquitto")
	dir := testutil.ReachableDir(t)
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for f, u := range map[string]string{a: "alice", b: "bob"} {
		h, err := confgen.HashPassword([]byte("pw-"+u), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(u+":"+h+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 { // 2.1 wants the files of the user it drops to
			if mu, err := user.Lookup("mosquitto"); err == nil {
				uid, _ := strconv.Atoi(mu.Uid)
				gid, _ := strconv.Atoi(mu.Gid)
				_ = os.Chown(f, uid, gid)
			}
		}
	}
	port := testutil.FreePort(t)
	path := filepath.Join(dir, "m.conf")
	conf := func(file string) {
		text := fmt.Sprintf("allow_anonymous false\nplugin mosquitto_password_file.so\nplugin_opt_password_file %s\nlistener %d 127.0.0.1\n", file, port)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf(a)
	cmd, log := testutil.Start(t, dir, bin, "-c", path)
	testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10*time.Second)
	login := func(user string) bool {
		m := dialPlain(t, fmt.Sprintf("127.0.0.1:%d", port), 4)
		code, err := m.Connect(testutil.ConnectOptions{ClientID: user, Clean: true, Username: testutil.Str(user), Password: testutil.Str("pw-" + user)})
		return err == nil && code == 0
	}
	if !login("alice") || login("bob") {
		t.Fatalf("before the reload:\n%s", log.String())
	}
	conf(b)
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "Reloading config") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	if !login("alice") || login("bob") {
		t.Errorf("mosquitto 2.1.2 after SIGHUP with another plugin file: alice %v, bob %v (serve keeps alice's file):\n%s", login("alice"), login("bob"), log.String())
	}
}
