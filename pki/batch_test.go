package pki

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestParseBatch: the columns, the header, comments, blank lines, CRLF and
// a byte order mark are read; every bad line is refused with its number.
func TestParseBatch(t *testing.T) {
	long := "a" + strings.Repeat(" ", MaxBatchLine)
	var many strings.Builder
	for i := range MaxBatchDevices + 1 {
		fmt.Fprintf(&many, "d%d\n", i)
	}
	tests := []struct {
		name, in string
		want     []BatchDevice
		errs     []string // each must be in the error
	}{
		{"names", "a\nb\n", []BatchDevice{{Line: 1, Name: "a"}, {Line: 2, Name: "b"}}, nil},
		{"comments, blanks, CRLF, BOM", "\xef\xbb\xbf# devices\r\n\r\n  a  \r\n#b\r\n", []BatchDevice{{Line: 3, Name: "a"}}, nil},
		{"san and ou", "a,a.example 192.0.2.1;b.example,Plant 7\n",
			[]BatchDevice{{Line: 1, Name: "a", Hosts: []string{"a.example", "192.0.2.1", "b.example"}, OU: "Plant 7"}}, nil},
		{"header reorders", "# x\nou,name\nP1,a\n", []BatchDevice{{Line: 3, Name: "a", OU: "P1"}}, nil},
		{"empty san", "a,,P\n", []BatchDevice{{Line: 1, Name: "a", OU: "P"}}, nil},
		{"no devices", "# nothing\n\n", nil, []string{"f.csv: no devices"}},
		{"bad name", "a\nb/c\n", nil, []string{"f.csv:2: ", "'/'"}},
		{"dotted name", "\n.hidden\n", nil, []string{"f.csv:2: ", "starts with '.'"}},
		{"prev name", "a.prev\n", nil, []string{"f.csv:1: ", ".prev"}},
		{"formulas and options", "a\n=HYPERLINK(A1)\n@SUM(1)\n+1\n-rf\n", nil, []string{"f.csv:2: ", "formula", "f.csv:3: ", "f.csv:4: ", "'+'", "f.csv:5: ", "starts with '-'"}},
		{"duplicate", "a\nb\na\n", nil, []string{"f.csv:3: ", `"a" is also on line 1`}},
		{"duplicate but for case", "Dup\nb\ndup\n", nil, []string{"f.csv:3: ", `"dup" differs only in case from "Dup" on line 1`, "case-insensitive file system"}},
		{"bad san", "a,http://x.example\n", nil, []string{"f.csv:1: extra name", "without a scheme"}},
		{"too many columns", "a,b,c,d\n", nil, []string{"f.csv:1: 4 columns", "name,san,ou"}},
		{"quotes", "\"a\"\n", nil, []string{"f.csv:1: quotes"}},
		{"bad header", "name,serial\na\n", nil, []string{"f.csv:1: header column \"serial\""}},
		{"header twice", "name,name\n", nil, []string{"f.csv:1: header column \"name\" is there twice"}},
		{"long line", "a\n" + long + "\n", nil, []string{"f.csv:2: the line is 1025 bytes long"}},
		{"not UTF-8", "a\nb\xff\n", nil, []string{"f.csv:2: ", "not UTF-8", "iconv"}},
		{"control character", "a\x01b\n", nil, []string{"f.csv:1: ", "control character"}},
		{"bad ou", "a,,x\x7fy\n", nil, []string{"f.csv:1: OU"}},
		{"long ou", "a,," + strings.Repeat("o", 65) + "\n", nil, []string{"f.csv:1: OU", "64 bytes"}},
		{"too many devices", many.String(), nil, []string{fmt.Sprintf("f.csv:%d: more than %d devices", MaxBatchDevices+1, MaxBatchDevices)}},
		{"several bad lines", "a/\nb/\nok\nc/\n", nil, []string{"f.csv:1:", "f.csv:2:", "f.csv:4:", "nothing was issued"}},
		{"many bad lines", strings.Repeat("x/\n", 20), nil, []string{"f.csv:10:", "more lines are bad"}},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			got, err := ParseBatch("f.csv", []byte(tt.in))
			if tt.errs == nil {
				if err != nil {
					t.Fatal(err)
				}
				if fmt.Sprint(got) != fmt.Sprint(tt.want) {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadBatch) {
				t.Fatalf("err = %v, want ErrBadBatch", err)
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// FuzzParseBatch: any bytes give devices with valid, distinct names and
// line numbers in order, or a BatchError; never a panic.
func FuzzParseBatch(f *testing.F) {
	for _, s := range []string{"a\nb\n", "name,ou,san\nP,a,a.example\n", "# c\r\n\xef\xbb\xbfa,1.2.3.4;x.example,OU\n", "a,b,c,d", "\"a\"", "a\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		devs, err := ParseBatch("f", data)
		if err != nil {
			if !errors.Is(err, ErrBadBatch) || len(devs) > MaxBatchDevices {
				t.Fatalf("err = %v", err)
			}
			return
		}
		seen := map[string]bool{}
		last := 0
		for _, d := range devs {
			if d.Line <= last || seen[d.Name] {
				t.Fatalf("line %d after %d, or %q twice", d.Line, last, d.Name)
			}
			seen[d.Name], last = true, d.Line
			if _, err := parseHosts(d.Hosts); len(d.Hosts) > 0 && err != nil {
				t.Fatalf("%q: %v", d.Hosts, err)
			}
			if strings.ContainsAny(d.Name+d.OU, "\n\r,\"") {
				t.Fatalf("device %+v holds a separator", d)
			}
		}
	})
}

func batchDevices(names ...string) []BatchDevice {
	out := make([]BatchDevice, len(names))
	for i, n := range names {
		out[i] = BatchDevice{Line: i + 1, Name: n}
	}
	return out
}

// TestIssueBatch: every device is recorded in the index and has its files
// in clients/ and its bundle (modes 0600 on keys and passwords), the
// manifest lists them, and the p12 reads back with its password.
func TestIssueBatch(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}, Intermediate: true})
	out := filepath.Join(base, "out")
	devs := batchDevices("s1", "s2", "s3")
	devs[1].Hosts, devs[1].OU = []string{"s2.example", "192.0.2.2"}, "Plant 7"
	res, err := (&Dir{Path: dir}).IssueBatch(BatchOptions{File: "d.csv", Devices: devs, BundleDir: out, P12: true, CHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := LoadIndex(dir)
	if err != nil {
		t.Fatal(err)
	}
	var m Manifest
	if err := json.Unmarshal(mustRead(t, filepath.Join(out, ManifestFile)), &m); err != nil {
		t.Fatal(err)
	}
	if len(m.Devices) != 3 || res.ManifestPath != filepath.Join(out, ManifestFile) {
		t.Fatalf("manifest: %+v", m)
	}
	for i, d := range devs {
		e := idx.find("clients/" + d.Name + ".crt")
		if e == nil || e.Key != "" || e.Profile != ProfileClient || e.CN != d.Name {
			t.Fatalf("%s: index entry %+v", d.Name, e)
		}
		if me := m.Devices[i]; me.Name != d.Name || me.Serial != e.Serial || me.SHA256 != e.Fingerprint || !me.NotAfter.Equal(e.NotAfter) {
			t.Errorf("manifest entry %+v, index %+v", me, e)
		}
		bundle := filepath.Join(out, d.Name)
		key, err := ReadKey(filepath.Join(bundle, d.Name+".key"), nil)
		if err != nil || !keyMatches(key, readCert(t, filepath.Join(dir, e.Cert))[0].PublicKey) {
			t.Errorf("%s: the bundle's key does not match the certificate: %v", d.Name, err)
		}
		if fileExists(filepath.Join(dir, ClientsDir, d.Name+".key")) {
			t.Errorf("%s: the key is kept in the pki directory too", d.Name)
		}
		if !bytes.Equal(mustRead(t, filepath.Join(bundle, d.Name+".crt")), mustRead(t, filepath.Join(dir, e.Cert))) ||
			!bytes.Equal(mustRead(t, filepath.Join(bundle, RootCertFile)), mustRead(t, filepath.Join(dir, RootCertFile))) {
			t.Errorf("%s: the bundle is not a copy of the directory's files", d.Name)
		}
		for f, mode := range map[string]os.FileMode{d.Name + ".key": 0o600, d.Name + ".p12": 0o600, d.Name + ".p12.pass": 0o600, d.Name + ".h": 0o600, d.Name + ".crt": 0o644} {
			st, err := os.Stat(filepath.Join(bundle, f))
			if err != nil || st.Mode().Perm() != mode {
				t.Errorf("%s: %v, mode %v, want %v", f, err, st, mode)
			}
		}
	}
	c := readCert(t, filepath.Join(out, "s2", "s2.crt"))
	if len(c) != 2 || c[0].Subject.OrganizationalUnit[0] != "Plant 7" || strings.Join(Names(c[0]), ",") != "s2.example,192.0.2.2" {
		t.Errorf("s2: %d certs, OU %v, names %v", len(c), c[0].Subject.OrganizationalUnit, Names(c[0]))
	}
	// A device of a batch is renewed (its key re-signed) and revoked like
	// any client; export says its key is on the device.
	d := &Dir{Path: dir}
	if _, err := d.Export(ExportOptions{Name: "s1", Format: FormatPEMBundle, Out: filepath.Join(base, "s1.pem")}); !errors.Is(err, ErrNoKey) {
		t.Errorf("export of a bundled device: %v, want ErrNoKey", err)
	}
	if _, err := d.Renew(RenewOptions{Name: "s1"}); err != nil {
		t.Fatalf("renew a batch device: %v", err)
	}
	if _, _, err := d.Revoke(RevokeOptions{Name: "s3", Reason: "keyCompromise"}); err != nil {
		t.Fatalf("revoke a batch device: %v", err)
	}
}

// TestIssueBatchRefusals: a device the directory already has, existing
// bundle files or manifest, and a bundle directory inside the pki refuse
// the whole batch with the line, and nothing is written.
func TestIssueBatchRefusals(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}})
	d := &Dir{Path: dir}
	if _, err := d.Issue(IssueOptions{Profile: ProfileBridge, Name: "br", CN: "bridgeid", Hosts: []string{"br.example"}}); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, ClientsDir, "stray.key"), []byte("x"), 0o600)
	if _, err := d.CreateTokens(TokenOptions{Names: []string{"pend"}}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(base, "out")
	os.MkdirAll(filepath.Join(out, "taken"), 0o700)
	os.WriteFile(filepath.Join(out, "taken", "taken.key"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(out, "plain"), []byte("x"), 0o600)
	used := filepath.Join(base, "used")
	os.MkdirAll(used, 0o700)
	os.WriteFile(filepath.Join(used, ManifestFile), []byte("{}"), 0o644)
	// A link to the pki directory, and one to a path that does not exist.
	os.Symlink(dir, filepath.Join(base, "linkS"))
	os.Symlink(filepath.Join(dir, "none"), filepath.Join(base, "dangling"))
	tests := []struct {
		name   string
		o      BatchOptions
		errs   []string
		output string
	}{
		{"a name the index has", BatchOptions{Devices: batchDevices("new1", "alice")}, []string{"d.csv:2: alice is already in index.yaml", "pki renew alice"}, ""},
		{"a bridge's identity", BatchOptions{Devices: batchDevices("bridgeid")}, []string{"d.csv:1: ", "already the MQTT identity of servers/br.crt"}, ""},
		{"an unlisted file", BatchOptions{Devices: batchDevices("a", "b", "stray")}, []string{"d.csv:3: ", "stray.key exists", "pki reindex"}, ""},
		{"a bundle file exists", BatchOptions{Devices: batchDevices("x", "taken"), BundleDir: out}, []string{"d.csv:2: ", "taken.key exists"}, out},
		{"a file where a bundle goes", BatchOptions{Devices: batchDevices("x", "y", "plain"), BundleDir: out}, []string{"d.csv:3: ", "plain is there and is not a directory"}, out},
		{"a name the index has but for case", BatchOptions{Devices: batchDevices("ALICE")}, []string{"d.csv:1: ALICE differs only in case from alice (clients/alice.crt)"}, ""},
		{"a pending enrolment token", BatchOptions{Devices: batchDevices("x", "pend")}, []string{"d.csv:2: pend has an unused enrolment token", "mqttctl enroll token revoke pend --pki " + dir}, ""},
		{"a device named ca", BatchOptions{Devices: batchDevices("x", "ca", "CA"), BundleDir: out}, []string{"d.csv:2: ", `a device named "ca" would have its certificate ca.crt in place of the bundle's ca.crt`, "d.csv:3: ", `"CA"`}, out},
		{"a device named manifest.json", BatchOptions{Devices: batchDevices("x", "Manifest.JSON"), BundleDir: filepath.Join(base, "om")}, []string{"d.csv:2: ", `"Manifest.JSON" would have its bundle directory in place of the batch's manifest.json`}, ""},
		{"a manifest exists", BatchOptions{Devices: batchDevices("x"), BundleDir: used}, []string{"manifest.json exists", "its own bundle directory"}, used},
		{"bundles inside the pki", BatchOptions{Devices: batchDevices("x"), BundleDir: filepath.Join(dir, "b")}, []string{"inside the pki directory"}, ""},
		{"bundles below a link to the pki", BatchOptions{Devices: batchDevices("x"), BundleDir: filepath.Join(base, "linkS", "bundles", "b")}, []string{"inside the pki directory"}, ""},
		{"bundles through a dangling link", BatchOptions{Devices: batchDevices("x"), BundleDir: filepath.Join(base, "dangling", "b")}, []string{"dangling is a symbolic link to a path that does not exist"}, ""},
		{"p12 without bundles", BatchOptions{Devices: batchDevices("x"), P12: true}, []string{"bundle directory"}, ""},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			before := snapshotTree(t, base)
			tt.o.File = "d.csv"
			_, err := d.IssueBatch(tt.o)
			if err == nil {
				t.Fatal("batch issued")
			}
			for _, w := range tt.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if after := snapshotTree(t, base); after != before {
				t.Errorf("a refused batch changed files:\n%s\n---\n%s", before, after)
			}
		})
	}
}

// snapshotTree lists every file below dir with its size and mode.
func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil {
			data, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %v %x\n", p, info.Mode(), data)
		}
		return nil
	})
	return b.String()
}

// TestCHeaderCompiles: gcc compiles a device's C header, and the strings
// it holds are the PEM files of its bundle, byte for byte, also for a name
// with characters C would read otherwise.
func TestCHeaderCompiles(t *testing.T) {
	gcc := testutil.RequireBinary(t, "gcc")
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}, Intermediate: true})
	out := filepath.Join(base, "out")
	names := []string{"esp32-01", `odd*/?"name??=`}
	devs := batchDevices(names...)
	devs[1].Name = `odd*?"name??=` // '/' is not a valid name
	if _, err := (&Dir{Path: dir}).IssueBatch(BatchOptions{File: "d.csv", Devices: devs, BundleDir: out, CHeader: true}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range devs {
		bundle := filepath.Join(out, dev.Name)
		src := filepath.Join(base, "main.c")
		prog := `#include <stdio.h>
#include "` + dev.Name + `.h"
int main(void) {
	fputs(mqtt_client_id, stdout); fputs("\n--\n", stdout);
	fputs(mqtt_ca_pem, stdout); fputs("--\n", stdout);
	fputs(mqtt_cert_pem, stdout); fputs("--\n", stdout);
	fputs(mqtt_key_pem, stdout);
	return 0;
}
`
		prog = strings.Replace(prog, `"`+dev.Name+`.h"`, `"device.h"`, 1)
		if err := os.WriteFile(src, []byte(prog), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Remove(filepath.Join(base, "device.h"))
		if err := os.Symlink(filepath.Join(bundle, dev.Name+".h"), filepath.Join(base, "device.h")); err != nil {
			t.Fatal(err)
		}
		bin := filepath.Join(base, "show")
		if o, err := exec.Command(gcc, "-std=c99", "-Wall", "-Werror", "-Wno-unused-const-variable", "-o", bin, src).CombinedOutput(); err != nil {
			t.Fatalf("%s: gcc: %v\n%s\n%s", dev.Name, err, o, mustRead(t, filepath.Join(bundle, dev.Name+".h")))
		}
		got, err := exec.Command(bin).Output()
		if err != nil {
			t.Fatal(err)
		}
		want := dev.Name + "\n--\n" + string(mustRead(t, filepath.Join(bundle, RootCertFile))) + "--\n" +
			string(mustRead(t, filepath.Join(bundle, dev.Name+".crt"))) + "--\n" + string(mustRead(t, filepath.Join(bundle, dev.Name+".key")))
		if string(got) != want {
			t.Errorf("%s: the header's strings differ from the PEM files:\n%s\nwant\n%s", dev.Name, got, want)
		}
	}
}

// TestIssueBatchWithoutBundles: without a bundle directory the keys are
// kept in clients/ (0600) and recorded, as by issue client NAME.
func TestIssueBatchWithoutBundles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	res, err := (&Dir{Path: dir}).IssueBatch(BatchOptions{File: "d.csv", Devices: batchDevices("k1", "k2")})
	if err != nil || res.ManifestPath != "" {
		t.Fatal(err, res)
	}
	idx, _ := LoadIndex(dir)
	for _, n := range []string{"k1", "k2"} {
		e := idx.find("clients/" + n + ".crt")
		if e == nil || e.Key != "clients/"+n+".key" {
			t.Fatalf("%s: %+v", n, e)
		}
		key, err := ReadKey(filepath.Join(dir, e.Key), nil)
		if err != nil || !keyMatches(key, readCert(t, filepath.Join(dir, e.Cert))[0].PublicKey) {
			t.Errorf("%s: %v", n, err)
		}
		if st, _ := os.Stat(filepath.Join(dir, e.Key)); st.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v", e.Key, st.Mode())
		}
	}
}

// TestIssueBatchAgainAfterCrash: a batch stopped before its journal was in
// place is dropped by the next command (only empty bundle directories
// stay), and the same batch then issues into the same bundle directory.
func TestIssueBatchAgainAfterCrash(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	out := filepath.Join(base, "out")
	o := BatchOptions{File: "d.csv", Devices: batchDevices("c1", "c2"), BundleDir: out, P12: true}
	d := &Dir{Path: dir, crash: func(step string) bool { return strings.HasPrefix(step, "place journal") }}
	if _, err := d.IssueBatch(o); !errors.Is(err, fsx.ErrCrashed) {
		t.Fatalf("err = %v, want the simulated crash", err)
	}
	d.crash = nil
	if _, _, err := d.Entries(); err != nil {
		t.Fatal(err)
	}
	if files := snapshotTree(t, out); strings.Contains(files, "c1.") || strings.Contains(files, ".tmp") {
		t.Fatalf("the dropped batch left files:\n%s", files)
	}
	if _, err := d.IssueBatch(o); err != nil {
		t.Fatalf("the same batch again: %v", err)
	}
	if !fileExists(filepath.Join(out, "c2", "c2.p12")) || !fileExists(filepath.Join(out, ManifestFile)) {
		t.Fatal("the batch again did not write its bundles")
	}
}

// TestIssueBatchBundlesLostAfterCommit: a batch stopped after its journal
// was placed, whose bundle directory is then deleted (rm -rf out), is
// completed by the next command, which fails naming the devices whose
// keys are lost and what to do; the index lists them, and the command
// after it runs as usual.
func TestIssueBatchBundlesLostAfterCommit(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	out := filepath.Join(base, "out")
	o := BatchOptions{File: "d.csv", Devices: batchDevices("l1", "l2"), BundleDir: out}
	d := &Dir{Path: dir, crash: func(step string) bool { return strings.HasPrefix(step, "rename ") }}
	if _, err := d.IssueBatch(o); !errors.Is(err, fsx.ErrCrashed) {
		t.Fatalf("err = %v, want the simulated crash", err)
	}
	if err := os.RemoveAll(out); err != nil {
		t.Fatal(err)
	}
	d.crash = nil
	_, _, err := d.Entries()
	if !errors.Is(err, ErrLostFiles) {
		t.Fatalf("err = %v, want ErrLostFiles", err)
	}
	for _, w := range []string{"completed a change that was interrupted", filepath.Join(out, "l1", "l1.key"), "2 devices (l1, l2)", "keys exist nowhere", "mqttctl pki revoke NAME --dir " + dir} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
	entries, _, err := d.Entries()
	if err != nil {
		t.Fatalf("the command after: %v", err)
	}
	n := 0
	for _, e := range entries {
		if e.Name == "l1" || e.Name == "l2" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("the index lists %d of the batch's 2 devices", n)
	}
}

// TestIssueBatchRefusedLeavesNoDirectories: a batch refused after it made
// the bundle directories (a file planted where one of its certificates
// goes while it ran) removes them again, the bundle directory too.
func TestIssueBatchRefusedLeavesNoDirectories(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	out := filepath.Join(base, "om")
	planted := false
	d := &Dir{Path: dir, crash: func(string) bool {
		if !planted {
			planted = true
			os.WriteFile(filepath.Join(dir, ClientsDir, "y.crt"), []byte("x"), 0o644)
		}
		return false
	}}
	_, err := d.IssueBatch(BatchOptions{File: "d.csv", Devices: batchDevices("x", "y"), BundleDir: out})
	if !errors.Is(err, fs.ErrExist) {
		t.Fatalf("err = %v, want the planted file refused", err)
	}
	if _, err := os.Lstat(out); err == nil {
		t.Errorf("the refused batch left directories:\n%s", snapshotTree(t, out))
	}
}

// TestIssueBatchEd25519CHeaderWarns: C headers for ESP32 firmware with
// Ed25519 keys, which its mbedTLS cannot use, are issued with a warning
// that says so.
func TestIssueBatchEd25519CHeaderWarns(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "pki")
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	res, err := (&Dir{Path: dir}).IssueBatch(BatchOptions{File: "d.csv", Devices: batchDevices("e1"), KeyType: Ed25519, BundleDir: filepath.Join(base, "out"), CHeader: true})
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(res.Warnings, "\n"); !strings.Contains(w, "C headers hold Ed25519 keys") || !strings.Contains(w, "ec-p256") {
		t.Errorf("warnings %q, want the C header's Ed25519 warning", w)
	}
}

// TestCHeaderNamesTheDevice: the header's comment names the real file and
// device (not a sanitised name), and a name that could end the comment
// is still made safe.
func TestCHeaderNamesTheDevice(t *testing.T) {
	for name, want := range map[string]string{
		`odd*?"name??=`: `/* odd*?"name??=.h: MQTT credentials of device odd*?"name??=,`,
		"Capteur n°7 x": "/* Capteur n°7 x.h: MQTT credentials of device Capteur n°7 x,",
		"a*/b":          "/* a__b.h: MQTT credentials of device a__b,",
	} {
		if h := string(CHeader(name, nil, nil, nil)); !strings.HasPrefix(h, want) {
			t.Errorf("%q: the header starts %q, want %q", name, h[:min(len(h), len(want))], want)
		}
	}
}
