package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestConfigEMQXClosed (issue 17): --mode mtls is refused (EMQX cannot
// check pki/crl.pem), an ACL rule EMQX cannot hold is refused at its line,
// and a refusal leaves no file or directory; --acl writes acl.conf.
func TestConfigEMQXClosed(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--host", "localhost", "--client", "alice"); code != 0 {
		t.Fatal(e)
	}
	passwd := filepath.Join(dir, "passwd")
	if code, _, e := runCLI(t, "", "passwd", "add", passwd, "alice", "-b", "pw"); code != 0 {
		t.Fatal(e)
	}
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("user alice\ntopic readwrite x/#\n"), 0o600)
	bad := filepath.Join(dir, "bad-acl")
	os.WriteFile(bad, []byte("user alice\ntopic readwrite x/#\npattern readwrite devices/%c/#\n"), 0o600)
	out := filepath.Join(dir, "emqx")
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"mtls", []string{"--mode", "mtls"}, []string{"--mode: mtls: EMQX 5.8 checks revocation only"}},
		{"a pattern line", []string{"--mode", "tls", "--passwd", passwd, "--acl", bad}, []string{"bad-acl:3: pattern readwrite devices/%c/#", "nothing written"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := snapshot(t, dir)
			code, o, e := runCLI(t, "", append([]string{"config", "emqx", "--pki", p, "--out", out}, tc.args...)...)
			if code == 0 {
				t.Fatalf("accepted:\n%s%s", o, e)
			}
			for _, w := range tc.want {
				if !strings.Contains(e, w) {
					t.Errorf("stderr lacks %q:\n%s", w, e)
				}
			}
			if snapshot(t, dir) != before {
				t.Errorf("a refused command changed files or directories")
			}
		})
	}
	if code, o, e := runCLI(t, "", "config", "emqx", "--pki", p, "--mode", "tls", "--passwd", passwd, "--acl", acl, "--out", out); code != 0 {
		t.Fatalf("config emqx: %s%s", o, e)
	}
	data, _ := os.ReadFile(filepath.Join(out, "acl.conf"))
	if !strings.Contains(string(data), `{allow, {user, "alice"}, all, ["x/#"]}.`) || !strings.HasSuffix(string(data), "{deny, all}.\n") {
		t.Errorf("acl.conf:\n%s", data)
	}
}
