package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEditThroughSymlink: passwd add/delete and acl add through a symbolic
// link change the file it points to and leave the link a link, as
// mosquitto_passwd does (a deployment that links /etc/mosquitto/passwd to
// a managed file keeps the link).
func TestEditThroughSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "managed")
	os.Mkdir(real, 0o700)
	passwd, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	os.Symlink("managed/passwd", passwd) // dangling until the first add
	os.WriteFile(filepath.Join(real, "acl"), []byte("topic read public/#\n"), 0o640)
	os.Symlink(filepath.Join(real, "acl"), acl)
	isLink := func(t *testing.T, p string) {
		t.Helper()
		if fi, err := os.Lstat(p); err != nil || fi.Mode()&os.ModeSymlink == 0 {
			t.Errorf("%s is no longer a symbolic link (%v, %v)", p, fi.Mode(), err)
		}
	}
	holds := func(p string, want ...string) func(t *testing.T, _, _ string) {
		return func(t *testing.T, _, _ string) {
			isLink(t, filepath.Join(dir, filepath.Base(p)))
			data, _ := os.ReadFile(filepath.Join(real, filepath.Base(p)))
			for _, w := range want {
				if !strings.Contains(string(data), w) {
					t.Errorf("%s lacks %q:\n%s", p, w, data)
				}
			}
		}
	}
	runSteps(t, []cliStep{
		{name: "passwd add creates the target", args: []string{"passwd", "add", passwd, "alice", "-b", "pw"}, check: holds(passwd, "alice:$7$")},
		{name: "passwd add another", args: []string{"passwd", "add", passwd, "bob", "-b", "pw"}, check: holds(passwd, "alice:$7$", "bob:$7$")},
		{name: "passwd delete", args: []string{"passwd", "delete", passwd, "alice"}, check: func(t *testing.T, o, e string) {
			holds(passwd, "bob:$7$")(t, o, e)
			if data, _ := os.ReadFile(passwd); strings.Contains(string(data), "alice") {
				t.Error("alice is still in the target")
			}
		}},
		{name: "passwd verify through the link", args: []string{"passwd", "verify", passwd, "bob", "-b", "pw"}},
		{name: "acl add", args: []string{"acl", "add", acl, "read", "sensors/#", "--user", "bob"}, check: holds(acl, "topic read public/#", "user bob", "topic read sensors/#")},
	})
}

// TestPasswordInputsBounded: a password file or standard input over 64 KiB,
// /dev/zero, a mosquitto password file over 32 MiB or a device are refused
// with their name, without reading them whole, and nothing is written; a p12
// password with a NUL byte or invalid UTF-8 is refused, a non-ASCII one
// warned about (keytool cannot open such a file).
func TestPasswordInputsBounded(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--client", "alice", "--host", "localhost"); code != 0 {
		t.Fatal(e)
	}
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	bigPass := write("big.pass", []byte("pw\n"+strings.Repeat("x", 70<<10)))
	huge := filepath.Join(dir, "huge")
	f, _ := os.Create(huge)
	f.Truncate(33 << 20) // sparse
	f.Close()
	nul, bad, uni := write("nul.pass", []byte("pw\x00x\n")), write("bad.pass", []byte("pw\xff\xfe\n")), write("uni.pass", []byte("pässwörd\n"))
	passwd := write("passwd", nil)
	out := filepath.Join(dir, "out.p12")
	before := snapshot(t, dir)
	unchanged := func(t *testing.T, _, _ string) {
		if after := snapshot(t, dir); after != before {
			t.Errorf("files changed:\n%s\nwant\n%s", after, before)
		}
	}
	runSteps(t, []cliStep{
		{name: "password file over 64 KiB", args: []string{"passwd", "add", passwd, "bob", "--password-file", bigPass}, code: 1,
			errOut: []string{"big.pass is over 64 KiB"}, check: unchanged},
		{name: "password file /dev/zero", args: []string{"passwd", "add", passwd, "bob", "--password-file", "/dev/zero"}, code: 1,
			errOut: []string{"/dev/zero is over 64 KiB"}, check: unchanged},
		{name: "standard input over 64 KiB", stdin: strings.Repeat("y", 70<<10), args: []string{"passwd", "add", passwd, "bob", "--password-file", "-"}, code: 1,
			errOut: []string{"standard input is over 64 KiB"}, check: unchanged},
		{name: "password file to edit over 32 MiB", args: []string{"passwd", "add", huge, "bob", "-b", "pw"}, code: 1,
			errOut: []string{"huge is over 32 MiB"}, check: unchanged},
		{name: "password file to list over 32 MiB", args: []string{"passwd", "list", huge}, code: 1, errOut: []string{"huge is over 32 MiB"}},
		{name: "password file to edit /dev/zero", args: []string{"passwd", "add", "/dev/zero", "bob", "-b", "pw"}, code: 1,
			errOut: []string{"/dev/zero is not a regular file"}},
		{name: "password file to list /dev/zero", args: []string{"passwd", "list", "/dev/zero"}, code: 1, errOut: []string{"/dev/zero is not a regular file"}},
		{name: "p12 password with NUL", args: []string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", nul}, code: 1,
			errOut: []string{"NUL byte or is not UTF-8"}, check: unchanged},
		{name: "p12 password not UTF-8", args: []string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", bad}, code: 1,
			errOut: []string{"NUL byte or is not UTF-8"}, check: unchanged},
		{name: "p12 password not ASCII", args: []string{"pki", "export", "alice", "--dir", p, "--out", out, "--password-file", uni},
			out: []string{"warning: the password is not plain ASCII: Java's keytool cannot open"}},
	})
}
