package reload

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestOnceRefuses: nothing is signalled when the config fails its checks,
// names no pid file, or the pid file is stale, garbage or names a process
// that is not mosquitto (never a process found by name).
func TestOnceRefuses(t *testing.T) {
	dir := t.TempDir()
	// A process that is not mosquitto, which must never get the SIGHUP.
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sleeper.Process.Kill(); sleeper.Wait() })
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	acl := write("acl", "user alice\ntopic read a/#\n")
	badACL := write("bad.acl", "user alice\ntopic READ a/#\n")
	write("sleeper.pid", strconv.Itoa(sleeper.Process.Pid)+"\n")
	write("garbage.pid", "12ab\n")
	write("stale.pid", "999999999\n")
	for _, tc := range []struct {
		name, conf, pidFile string
		kind                error
		want                string
	}{
		{"bad ACL", "acl_file " + badACL + "\npid_file " + filepath.Join(dir, "sleeper.pid") + "\nlistener 1883 127.0.0.1\n", "", ErrCheck, "bad.acl:2: invalid access type"},
		{"missing file", "acl_file " + filepath.Join(dir, "nope") + "\nlistener 1883 127.0.0.1\n", "", ErrCheck, "c.conf:1: error: acl_file"},
		{"no pid file", "acl_file " + acl + "\nlistener 1883 127.0.0.1\n", "", ErrNoPID, "no pid_file line"},
		{"not mosquitto", "acl_file " + acl + "\nlistener 1883 127.0.0.1\n", filepath.Join(dir, "sleeper.pid"), nil, `is "sleep", not mosquitto`},
		{"pid_file not mosquitto", "acl_file " + acl + "\npid_file " + filepath.Join(dir, "sleeper.pid") + "\nlistener 1883 127.0.0.1\n", "", nil, `is "sleep", not mosquitto`},
		{"garbage", "listener 1883 127.0.0.1\n", filepath.Join(dir, "garbage.pid"), nil, `"12ab" is not a process id`},
		{"stale", "listener 1883 127.0.0.1\n", filepath.Join(dir, "stale.pid"), nil, "is not running"},
		{"pid file missing", "listener 1883 127.0.0.1\n", filepath.Join(dir, "none.pid"), nil, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := write("c.conf", tc.conf)
			res, err := Once(context.Background(), Options{Config: conf, PIDFile: tc.pidFile, Confirm: time.Second})
			if err == nil || !strings.Contains(err.Error(), tc.want) || (tc.kind != nil && !errors.Is(err, tc.kind)) {
				t.Fatalf("err = %v, want %q (%v)", err, tc.want, tc.kind)
			}
			if res.PID != 0 {
				t.Errorf("signalled pid %d", res.PID)
			}
		})
	}
	if sleeper.ProcessState != nil {
		t.Fatal("the sleeper was signalled")
	}
}

// TestSnapshot: a rename over a file, a ..data symlink flip, a new file in
// an include_dir and a touched file each change the snapshot; nothing else
// does.
func TestSnapshot(t *testing.T) {
	dir := t.TempDir()
	write := func(p, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	k8s := filepath.Join(dir, "k8s")
	write(filepath.Join(k8s, "..v1", "acl"), "topic read a\n")
	os.Symlink("..v1", filepath.Join(k8s, "..data"))
	os.Symlink("..data/acl", filepath.Join(k8s, "acl"))
	write(filepath.Join(dir, "passwd"), "")
	conf := filepath.Join(dir, "mosquitto.conf")
	write(filepath.Join(dir, "conf.d", "a.conf"), "password_file "+filepath.Join(dir, "passwd")+"\n")
	write(conf, "include_dir "+filepath.Join(dir, "conf.d")+"\nacl_file "+filepath.Join(k8s, "acl")+"\nlistener 1883\n")
	steps := []struct {
		name   string
		do     func()
		change bool
	}{
		{"nothing", func() {}, false},
		{"rename over", func() {
			write(filepath.Join(dir, "passwd.tmp"), "")
			os.Rename(filepath.Join(dir, "passwd.tmp"), filepath.Join(dir, "passwd"))
		}, true},
		{"..data flip", func() {
			write(filepath.Join(k8s, "..v2", "acl"), "topic read a\n") // same size and content
			os.Symlink("..v2", filepath.Join(k8s, "..tmp"))
			os.Rename(filepath.Join(k8s, "..tmp"), filepath.Join(k8s, "..data"))
		}, true},
		{"include_dir gains a file", func() { write(filepath.Join(dir, "conf.d", "b.conf"), "\n") }, true},
		{"a file in place", func() {
			p := filepath.Join(dir, "passwd")
			os.Chtimes(p, time.Now(), time.Now().Add(time.Hour))
		}, true},
		{"a file the config does not name", func() { write(filepath.Join(dir, "other"), "x") }, false},
	}
	last := Snapshot(conf)
	if _, ok := last[filepath.Join(dir, "passwd")]; !ok {
		t.Fatalf("the include_dir's password file is not watched: %v", last)
	}
	for _, st := range steps {
		st.do()
		cur := Snapshot(conf)
		if changed := !equal(cur, last); changed != st.change {
			t.Errorf("%s: changed %v, want %v", st.name, changed, st.change)
		}
		last = cur
	}
}

func equal(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}
