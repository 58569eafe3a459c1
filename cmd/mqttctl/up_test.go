package main

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// printed returns the printed command lines starting with prog.
func printed(out, prog string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prog+" ") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

func hashTree(t *testing.T, dir string, skip string) map[string]string {
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(p, skip) {
			return err
		}
		data, _ := os.ReadFile(p)
		info, _ := d.Info()
		out[p] = fmt.Sprintf("%x %v", sha256.Sum256(data), info.Mode())
		return nil
	})
	return out
}

func startUp(t *testing.T, dir string, port int) (*exec.Cmd, *testutil.SyncBuffer) {
	t.Helper()
	cmd, out := testutil.Start(t, dir, mqttctlBin, "up", "--dir", filepath.Join(dir, "data"), "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--websockets", fmt.Sprintf("127.0.0.1:%d", port+1))
	waitFor(t, out, "Try it in another terminal", "up")
	return cmd, out
}

func TestUpPrintsCommandsThatWork(t *testing.T) {
	testutil.RequireBinary(t, "mosquitto_sub")
	testutil.RequireBinary(t, "openssl")
	dir := t.TempDir()
	port := freePortPair(t)
	up, out := startUp(t, dir, port)

	sub := printed(out.String(), "mosquitto_sub")
	pub := printed(out.String(), "mosquitto_pub")
	ssl := printed(out.String(), "openssl s_client")
	chk := printed(out.String(), mqttctlBin+" check")
	if sub == "" || pub == "" || ssl == "" || chk == "" {
		t.Fatalf("commands missing from:\n%s", out.String())
	}
	// Run them as printed, through the shell.
	_, got := testutil.Start(t, dir, "sh", "-c", "exec stdbuf -oL "+sub+" -d")
	waitFor(t, got, "received SUBACK", "printed mosquitto_sub")
	testutil.MustRun(t, dir, "sh", "-c", pub)
	waitFor(t, got, "demo/hello hello over mutual TLS", "printed mosquitto_pub")
	if o := testutil.MustRun(t, dir, "sh", "-c", ssl); !strings.Contains(o, "Verification: OK") {
		t.Fatalf("printed openssl command:\n%s", o)
	}
	if o := testutil.MustRun(t, dir, "sh", "-c", chk); !strings.Contains(o, "OK: everything works") {
		t.Fatalf("printed mqttctl check:\n%s", o)
	}
	wss := ""
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), mqttctlBin+" check wss://") {
			wss = strings.TrimSpace(l)
		}
	}
	if o, err := testutil.Run(t, dir, nil, "sh", "-c", wss+" --topic demo/check"); err != nil || !strings.Contains(o, "OK: everything works") {
		t.Fatalf("printed wss check (%q): %v\n%s", wss, err, o)
	}

	// Given to the broker's group (as root), the data directory is sticky:
	// that account may add its own files, never rename or remove serve's.
	if st, err := os.Stat(filepath.Join(dir, "data", "data")); err != nil {
		t.Fatal(err)
	} else if st.Mode().Perm()&0o070 != 0 && st.Mode()&os.ModeSticky == 0 {
		t.Errorf("the data directory is %v: group-writable and not sticky", st.Mode())
	}

	// A second up on a taken port is a clear error.
	code, _, errOut := runCLI(t, "", "up", "--dir", filepath.Join(dir, "data"), "--listen", fmt.Sprintf("127.0.0.1:%d", port),
		"--websockets", fmt.Sprintf("127.0.0.1:%d", port+1))
	if code != 1 || !strings.Contains(errOut, "already in use") {
		t.Fatalf("port in use: exit %d, %q", code, errOut)
	}

	// Stop, then a second up reuses every file unchanged.
	_ = up.Process.Signal(syscall.SIGTERM)
	_ = up.Wait()
	data := filepath.Join(dir, "data")
	before := hashTree(t, data, filepath.Join(data, "data"))
	_, out2 := startUp(t, dir, port)
	if strings.Contains(out2.String(), "created") || strings.Contains(out2.String(), "updated") {
		t.Errorf("second up created or updated files:\n%s", out2.String())
	}
	// The modes up set on purpose (group access for the broker) are not
	// reported as risks, by up itself or by pki check.
	if strings.Contains(strings.ToLower(out2.String()), "warning") {
		t.Errorf("second up warns about its own files:\n%s", out2.String())
	}
	if code, o, e := runCLI(t, "", "pki", "check", "--dir", filepath.Join(data, "pki"), "-q"); code != 0 || !strings.Contains(o, "0 errors, 0 warnings") {
		t.Errorf("pki check after up: %d\n%s%s", code, o, e)
	}
	after := hashTree(t, data, filepath.Join(data, "data"))
	if len(before) == 0 || fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("second up changed files:\nbefore %v\nafter  %v", before, after)
	}
	time.Sleep(10 * time.Millisecond)
}

func TestCheckExitStatusAndJSON(t *testing.T) {
	port := testutil.FreePort(t) // nothing listens there
	url := fmt.Sprintf("mqtt://127.0.0.1:%d", port)
	code, out, _ := runCLI(t, "", "check", url)
	if code != 1 || !strings.Contains(out, "PROBLEM: cannot connect") || !strings.Contains(out, "fix:") {
		t.Fatalf("check on a closed port: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, "", "check", url, "-o", "json")
	var rep struct {
		Problems []struct{ Code, Fix string } `json:"problems"`
	}
	if code != 1 || json.Unmarshal([]byte(out), &rep) != nil || len(rep.Problems) != 1 || rep.Problems[0].Code != "unreachable" {
		t.Fatalf("json: exit %d\n%s", code, out)
	}
	if code, _, e := runCLI(t, "", "check", "http://x"); code != 1 || !strings.Contains(e, "mqtts") {
		t.Fatalf("bad URL: %d %s", code, e)
	}
}

// freePortPair returns a port p such that p and p+1 were free a moment ago.
func freePortPair(t *testing.T) int {
	t.Helper()
	for range 50 {
		p := testutil.FreePort(t)
		if l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1)); err == nil {
			l.Close()
			return p
		}
	}
	t.Fatal("no two free ports in a row")
	return 0
}

// TestUpBusyPortWritesNothing: up binds its listen addresses before it
// writes anything, so a port in use is refused with nothing created (no
// pki, acl, passwd, demo.password or data left behind).
func TestUpBusyPortWritesNothing(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	free := testutil.FreePort(t)
	for _, tc := range []struct {
		name, listen, ws string
		want             []string
	}{
		{"--listen busy", busy.Addr().String(), fmt.Sprintf("127.0.0.1:%d", free), []string{"address already in use", "--listen", "nothing was written"}},
		{"--websockets busy", fmt.Sprintf("127.0.0.1:%d", free), busy.Addr().String(), []string{"address already in use", "wss listener", "--websockets"}},
		{"both the same", fmt.Sprintf("127.0.0.1:%d", free), fmt.Sprintf("127.0.0.1:%d", free), []string{"address already in use", "--websockets"}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			d4 := filepath.Join(t.TempDir(), "d4")
			code, stdout, stderr := runCLI(t, "", "up", "--dir", d4, "--listen", tc.listen, "--websockets", tc.ws)
			if code == 0 {
				t.Fatalf("exit 0, want a refusal:\n%s%s", stdout, stderr)
			}
			for _, w := range tc.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if _, err := os.Lstat(d4); !os.IsNotExist(err) {
				t.Errorf("a refused up wrote %s: %v\n%v", d4, err, hashTree(t, d4, "\x00"))
			}
		})
	}
}
