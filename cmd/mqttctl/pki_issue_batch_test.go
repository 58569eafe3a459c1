package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// TestPKIIssueBatchRefusals: each bad batch file or flag is refused with
// the file's line and what to do, and nothing is written (neither in the
// pki directory nor in the bundle directory).
func TestPKIIssueBatchRefusals(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", dir, "--client", "alice", "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	write := func(name, data string) string {
		p := filepath.Join(base, name)
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var many strings.Builder
	for i := range pki.MaxBatchDevices + 1 {
		fmt.Fprintf(&many, "d%05d\n", i)
	}
	good := write("good.csv", "s1\ns2\n")
	fifo := filepath.Join(t.TempDir(), "fifo.csv") // not below base: snapshot would block reading it
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out")
	tests := []struct {
		name   string
		file   string
		args   []string
		errOut []string
	}{
		{"invalid name", write("bad-name.csv", "# devices\ns1\ns/2\n"), nil, []string{"bad-name.csv:3: ", `contains '/'`}},
		{"duplicate in the file", write("dup.csv", "s1\ns2\ns1\n"), nil, []string{"dup.csv:3: ", `"s1" is also on line 1`}},
		{"a name the index has", write("known.csv", "s1\nalice\n"), nil, []string{"known.csv:2: alice is already in index.yaml", "mqttctl pki renew alice --dir " + dir}},
		{"bad extra name", write("san.csv", "s1,s1.example:8883\n"), nil, []string{"san.csv:1: extra name", "a port"}},
		{"too many columns", write("cols.csv", "s1,a.example,OU,x\n"), nil, []string{"cols.csv:1: 4 columns"}},
		{"too many lines", write("many.csv", many.String()), nil, []string{fmt.Sprintf("many.csv:%d: more than %d devices", pki.MaxBatchDevices+1, pki.MaxBatchDevices), "split the file"}},
		{"line too long", write("long.csv", "s1\n"+strings.Repeat("x", 2000)+"\n"), nil, []string{"long.csv:2: the line is 2000 bytes long"}},
		{"not UTF-8", write("latin1.csv", "s1\ncaf\xe9\n"), nil, []string{"latin1.csv:2: ", "not UTF-8", "iconv"}},
		{"no devices", write("empty.csv", "# none yet\n"), nil, []string{"empty.csv: no devices"}},
		{"file too large", write("huge.csv", strings.Repeat("#\n", pki.MaxBatchFile)), nil, []string{"huge.csv is over 4 MiB"}},
		{"a FIFO", fifo, nil, []string{"not a regular file"}},
		{"a missing file", filepath.Join(base, "none.csv"), nil, []string{"none.csv", "no such file"}},
		{"a device named ca", write("ca.csv", "s1\nca\n"), []string{"--bundle-dir", out}, []string{"ca.csv:2: ", `a device named "ca"`}},
		{"a device named manifest.json", write("om.csv", "s1\nmanifest.json\n"), []string{"--bundle-dir", filepath.Join(base, "om")}, []string{"om.csv:2: ", "in place of the batch's manifest.json"}},
		{"p12 without bundles", good, []string{"--p12"}, []string{"add --bundle-dir DIR"}},
		{"an empty bundle directory", good, []string{"--bundle-dir", ""}, []string{`--bundle-dir "": give a directory`}},
		{"unknown format", good, []string{"--bundle-dir", out, "--format", "der"}, []string{`--format "der": use c-header`}},
		{"bundles in the pki", good, []string{"--bundle-dir", filepath.Join(dir, "bundles")}, []string{"inside the pki directory"}},
		{"--host with --batch", good, []string{"--host", "x.example"}, []string{"--host is not for --batch", "san column"}},
		{"--cn with --batch", good, []string{"--cn", "x"}, []string{"--cn is not for --batch: each device's CN is its name"}},
		{"--force with --batch", good, []string{"--force"}, []string{"--force is not for --batch", "pki renew NAME"}},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			before := snapshot(t, base)
			args := append([]string{"pki", "issue", "client", "--dir", dir, "--batch", tt.file}, tt.args...)
			code, stdout, stderr := runCLI(t, "", args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1\n%s%s", code, stdout, stderr)
			}
			for _, w := range tt.errOut {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if after := snapshot(t, base); after != before {
				t.Errorf("a refused batch wrote files")
			}
		})
	}
	runSteps(t, []cliStep{
		{name: "batch flags without --batch", args: []string{"pki", "issue", "client", "bob", "--dir", dir, "--bundle-dir", out}, code: 1, errOut: []string{"--bundle-dir, --p12 and --format are for --batch FILE"}},
		{name: "a name with --batch", args: []string{"pki", "issue", "client", "bob", "--dir", dir, "--batch", good}, code: 1, errOut: []string{`with --batch the names come from the file: leave out "bob"`}},
		{name: "servers with --batch", args: []string{"pki", "issue", "server", "--dir", dir, "--batch", good}, code: 1, errOut: []string{`--batch issues client certificates, not "server"`}},
	})
}

// TestPKIIssueBatch: a batch issues every device: pki list lists them,
// openssl verifies their bundle certificates against the bundle's ca.crt,
// keys and passwords are 0600, keytool and openssl open the p12 with its
// password file, and a batch of 200 reports its progress on stderr.
func TestPKIIssueBatch(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	keytool := testutil.RequireBinary(t, "keytool")
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", dir, "--host", "localhost", "--intermediate"); code != 0 {
		t.Fatal(e)
	}
	csv := filepath.Join(base, "devices.csv")
	os.WriteFile(csv, []byte("name,san,ou\n# plant 7\nesp-01,esp-01.plant7.example,Plant 7\nesp-02\nesp-03,192.0.2.3\n"), 0o644)
	out := filepath.Join(base, "out")
	names := []string{"esp-01", "esp-02", "esp-03"}
	runSteps(t, []cliStep{
		{name: "batch", args: []string{"pki", "issue", "client", "--dir", dir, "--batch", csv, "--bundle-dir", out, "--p12", "--format", "c-header", "--days", "90"},
			out: []string{"Issued 3 client certificates from " + csv, filepath.Join(dir, "clients", "NAME.crt"), "the keys are in the bundles only", filepath.Join(out, "NAME") + "/ (NAME.key, NAME.crt, ca.crt, NAME.p12, NAME.p12.pass, NAME.h)",
				filepath.Join(out, "manifest.json"), "Next: copy", "mosquitto_pub", "--cert " + filepath.Join(out, "esp-01", "esp-01.crt")}},
		{name: "list", args: []string{"pki", "list", "--dir", dir}, out: names},
		{name: "the same batch again", args: []string{"pki", "issue", "client", "--dir", dir, "--batch", csv, "--bundle-dir", filepath.Join(base, "out2")}, code: 1,
			errOut: []string{csv + ":3: esp-01 is already in index.yaml", csv + ":4: esp-02", csv + ":5: esp-03", "nothing was issued"}},
	})
	var m pki.Manifest
	if err := json.Unmarshal(readFile(t, filepath.Join(out, "manifest.json")), &m); err != nil || len(m.Devices) != 3 {
		t.Fatalf("manifest: %v %+v", err, m)
	}
	for i, n := range names {
		b := filepath.Join(out, n)
		if m.Devices[i].Name != n || m.Devices[i].SHA256 == "" || m.Devices[i].Serial == "" {
			t.Errorf("manifest entry %+v", m.Devices[i])
		}
		if o, err := testutil.Run(t, b, nil, openssl, "verify", "-CAfile", "ca.crt", "-untrusted", n+".crt", n+".crt"); err != nil {
			t.Errorf("openssl verify %s: %v %s", n, err, o)
		}
		if o, err := testutil.Run(t, b, nil, openssl, "pkey", "-in", n+".key", "-noout"); err != nil {
			t.Errorf("openssl pkey %s: %v %s", n, err, o)
		}
		if _, err := os.Stat(filepath.Join(dir, "clients", n+".key")); err == nil {
			t.Errorf("%s: the key is kept in the pki directory too", n)
		}
		for _, f := range []string{n + ".key", n + ".p12", n + ".p12.pass", n + ".h"} {
			if st, err := os.Stat(filepath.Join(b, f)); err != nil || st.Mode().Perm() != 0o600 {
				t.Errorf("%s: %v, mode %v, want 0600", f, err, st.Mode())
			}
		}
		kt, err := testutil.Run(t, b, nil, keytool, "-list", "-v", "-storetype", "PKCS12", "-keystore", n+".p12", "-storepass:file", n+".p12.pass")
		if err != nil || !strings.Contains(kt, "Alias name: "+n) || !strings.Contains(kt, "Certificate chain length: 3") {
			t.Errorf("keytool -list %s: %v\n%s", n, err, kt)
		}
		if o, err := testutil.Run(t, b, nil, openssl, "pkcs12", "-in", n+".p12", "-passin", "file:"+n+".p12.pass", "-noout"); err != nil {
			t.Errorf("openssl pkcs12 %s: %v %s", n, err, o)
		}
	}
	// A big batch says how far it is, on stderr.
	var big strings.Builder
	for i := range 200 {
		fmt.Fprintf(&big, "big-%03d\n", i)
	}
	os.WriteFile(csv, []byte(big.String()), 0o644)
	runSteps(t, []cliStep{
		{name: "progress", args: []string{"pki", "issue", "client", "--dir", dir, "--batch", csv}, out: []string{"Issued 200 client certificates", filepath.Join(dir, "clients", "NAME.key"), "pki export big-000"},
			errOut: []string{"made 100 of 200 keys and certificates", "made 200 of 200"}},
	})
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestPKIIssueBatchServe: devices connect to `mqttctl serve --mtls` with
// their bundles alone (ca.crt, NAME.crt, NAME.key), as MQTT identity NAME:
// mosquitto_sub with one device's bundle receives what mosquitto_pub with
// another's publishes.
func TestPKIIssueBatchServe(t *testing.T) {
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	dir, p := newServePKI(t)
	csv := filepath.Join(dir, "devices.csv")
	os.WriteFile(csv, []byte("dev-a\ndev-b\n"), 0o644)
	out := filepath.Join(dir, "out")
	if code, o, e := runCLI(t, "", "pki", "issue", "client", "--dir", p, "--batch", csv, "--bundle-dir", out); code != 0 {
		t.Fatal(o, e)
	}
	srv := startServe(t, dir, 0, "--mtls", "--pki", p)
	bundle := func(name string, extra ...string) []string {
		b := filepath.Join(out, name)
		return append([]string{"-h", "localhost", "-p", fmt.Sprint(srv.port), "--cafile", filepath.Join(b, "ca.crt"),
			"--cert", filepath.Join(b, name+".crt"), "--key", filepath.Join(b, name+".key"), "-i", name}, extra...)
	}
	cmd, got := testutil.Start(t, dir, "stdbuf", append([]string{"-oL", sub}, bundle("dev-a", "-d", "-t", "fleet/#", "-C", "1", "-W", "20")...)...)
	waitFor(t, got, "received SUBACK", "mosquitto_sub with dev-a's bundle")
	if o, err := testutil.Run(t, dir, nil, pub, bundle("dev-b", "-t", "fleet/dev-b", "-m", "hello from dev-b", "-q", "1")...); err != nil {
		t.Fatalf("mosquitto_pub with dev-b's bundle: %v\n%s\n%s", err, o, srv.log.String())
	}
	waitFor(t, got, "hello from dev-b", "mosquitto_sub with dev-a's bundle")
	stopWithin(t, cmd.Process, syscall.SIGTERM, 10*time.Second)
}

// TestPKIIssueBatchNextIsQuoted: a device name with shell syntax ($( ),
// backquotes) is quoted in the printed Next: commands, and the export
// command pasted into a shell exports that device and runs nothing else.
func TestPKIIssueBatchNextIsQuoted(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", dir, "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	name := "$(touch ran)x`touch ran2`"
	csv := filepath.Join(base, "d.csv")
	os.WriteFile(csv, []byte(name+"\n"), 0o644)
	code, out, e := runCLI(t, "", "pki", "issue", "client", "--dir", dir, "--batch", csv)
	if code != 0 {
		t.Fatal(e)
	}
	_, next, ok := strings.Cut(out, "e.g. ")
	if !ok || !strings.Contains(next, "'"+name+"'") {
		t.Fatalf("the name is not quoted:\n%s", out)
	}
	sh := exec.Command("sh", "-c", strings.Replace(strings.TrimSpace(next), "mqttctl", mqttctlBin, 1))
	sh.Dir = base
	if o, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", next, err, o)
	}
	for _, f := range []string{"ran", "ran2"} {
		if _, err := os.Stat(filepath.Join(base, f)); err == nil {
			t.Errorf("pasting the Next: command ran a command of the name (%s)", f)
		}
	}
	if _, err := os.Stat(filepath.Join(base, name+".pem")); err != nil {
		t.Errorf("the Next: command did not export the device: %v", err)
	}
	code, out, e = runCLI(t, "", "pki", "issue", "client", "--dir", dir, "--batch", csv, "--bundle-dir", filepath.Join(base, "out"))
	if code != 1 || !strings.Contains(e, "is already in index.yaml") || !strings.Contains(e, "mqttctl pki renew '"+name+"'") {
		t.Errorf("exit %d, want the renew command quoted:\n%s%s", code, out, e)
	}
}
