package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/pki"
)

// TestConfigCheckRunsServesLoading: every file problem that stops serve is
// reported by config check, at the line of the option that names the file.
func TestConfigCheckRunsServesLoading(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice"}}); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other")
	if _, err := (&pki.Dir{Path: other}).Init(pki.InitOptions{CAName: "Other CA", Hosts: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	f := func(n string) string { return filepath.Join(p, n) }
	badCRL := filepath.Join(dir, "bad.crl")
	os.WriteFile(badCRL, []byte("-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n"), 0o644)
	aclDir := filepath.Join(dir, "acl.d")
	os.Mkdir(aclDir, 0o755)
	tls := func(cert, key string) string {
		return fmt.Sprintf("listener 18999 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\n", f("ca.crt"), cert, key)
	}
	tests := []struct {
		name, conf string
		line       int
		want       string
	}{
		{"keyfile holding a certificate", tls(f("server.crt"), f("ca.crt")), 4, "holds a certificate, not a private key"},
		{"certfile and keyfile swapped", tls(f("server.key"), f("server.crt")), 3, "certfile"},
		{"key not matching", tls(f("server.crt"), filepath.Join(other, "server.key")), 4, "does not match"},
		{"missing password_file", "listener 18999 127.0.0.1\npassword_file /nonexistent/passwd\n", 2, "password_file"},
		{"missing cafile", "listener 18999 127.0.0.1\ncafile /nonexistent/ca.crt\ncertfile " + f("server.crt") + "\nkeyfile " + f("server.key") + "\n", 2, "cafile"},
		{"acl_file that is a directory", "listener 18999 127.0.0.1\nacl_file " + aclDir + "\n", 2, "is a directory"},
		{"bad crlfile", tls(f("server.crt"), f("server.key")) + "require_certificate true\ncrlfile " + badCRL + "\n", 6, "crlfile"},
		{"http_dir on a websockets listener", "listener 18999 127.0.0.1\nprotocol websockets\nhttp_dir /var/www\n", 3, "http_dir"},
		{"unix socket listener", "listener 0 /tmp/mqtt.sock\n", 1, "unix socket"},
		{"bridge without a topic", "connection central\naddress 192.0.2.1:8883\n", 1, "no topic line"},
		{"bridge with TLS-PSK", "connection central\naddress 192.0.2.1:8883\ntopic # out\nbridge_psk 00ff\n", 4, "TLS-PSK"},
		{"bridge with a broker certificate", "connection central\naddress 192.0.2.1:8883\ntopic # out\nbridge_cafile " + f("ca.crt") +
			"\nbridge_certfile " + f("server.crt") + "\nbridge_keyfile " + f("server.key") + "\n", 5, "clientAuth"},
		{"bridge topic with a bad direction", "connection central\naddress 192.0.2.1:8883\ntopic # sideways\n", 3, "direction"},
		{"mount_point with a wildcard", "listener 18999 127.0.0.1\nmount_point a/+/\n", 2, "mount_point"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			conf := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "_")+".conf")
			os.WriteFile(conf, []byte(tt.conf), 0o644)
			code, out, e := runCLI(t, "", "config", "check", conf)
			wantAt := fmt.Sprintf("%s:%d:", conf, tt.line)
			if code != 1 || strings.Contains(out, "\nok\n") || !strings.Contains(out+e, wantAt) || !strings.Contains(out+e, tt.want) {
				t.Errorf("config check: exit %d, want 1 with %q at %s:\n%s%s", code, tt.want, wantAt, out, e)
			}
			if code == 0 {
				return // serve would start and run until killed
			}
			// serve refuses the same file, naming the same line.
			code, _, e = runCLI(t, "", "serve", "-c", conf)
			if code == 0 || !strings.Contains(e, wantAt) {
				t.Errorf("serve -c: exit %d, want a refusal at %s:\n%s", code, wantAt, e)
			}
		})
	}
}

// TestConfigCheckReportsAllErrorsAtOnce: one run lists every problem.
func TestConfigCheckReportsAllErrorsAtOnce(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "m.conf")
	os.WriteFile(conf, []byte("per_listener_settings true\nlistener 18998 127.0.0.1\npassword_file /nonexistent/passwd\nacl_file /nonexistent/acl\n"+
		"listener 18997 127.0.0.1\ncafile /nonexistent/ca.crt\ncertfile /nonexistent/s.crt\nkeyfile /nonexistent/s.key\nplugin /x.so\n"), 0o644)
	code, out, _ := runCLI(t, "", "config", "check", conf)
	for _, line := range []int{3, 4, 6, 7, 9} {
		if !strings.Contains(out, fmt.Sprintf("%s:%d:", conf, line)) {
			t.Errorf("no error at line %d:\n%s", line, out)
		}
	}
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	// mosquitto as the target: plugins are fine, missing files are not.
	code, out, _ = runCLI(t, "", "config", "check", "--target", "mosquitto", conf)
	if code != 1 || strings.Contains(out, ":9:") || !strings.Contains(out, ":3:") {
		t.Errorf("--target mosquitto: exit %d\n%s", code, out)
	}
}

// TestConfigCheckWarnsNobodyCanLogIn: allow_anonymous false without a
// password file or certificate identity lets nobody in (item 1 of issue 8).
func TestConfigCheckWarnsNobodyCanLogIn(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "m.conf")
	os.WriteFile(conf, []byte("listener 18996 127.0.0.1\nallow_anonymous false\n"), 0o644)
	code, out, _ := runCLI(t, "", "config", "check", conf)
	if code != 0 || !strings.Contains(out, "warning: no client can log in") {
		t.Errorf("exit %d, want 0 with a warning that nobody can log in:\n%s", code, out)
	}
}

// TestConfigCheckCRLThatRefusesClients: an expired CRL is an error with
// the fix (mqttctl pki crl, then reload); a CA of cafile without a CRL in
// crlfile is a warning (its clients are refused) and the check still ends ok.
func TestConfigCheckCRLThatRefusesClients(t *testing.T) {
	dir := t.TempDir()
	p, other := filepath.Join(dir, "pki"), filepath.Join(dir, "other")
	for _, d := range []string{p, other} {
		if _, err := (&pki.Dir{Path: d}).Init(pki.InitOptions{CAName: filepath.Base(d) + " CA", Hosts: []string{"localhost"}}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(p, "ca.crt"))
	b, _ := os.ReadFile(filepath.Join(other, "ca.crt"))
	both := filepath.Join(dir, "both.crt")
	os.WriteFile(both, append(a, b...), 0o644)
	conf := func(cafile string) string {
		c := filepath.Join(dir, "m.conf")
		os.WriteFile(c, []byte(fmt.Sprintf("listener 18999 127.0.0.1\ncafile %s\ncertfile %s\nkeyfile %s\nrequire_certificate true\ncrlfile %s\n",
			cafile, filepath.Join(p, "server.crt"), filepath.Join(p, "server.key"), filepath.Join(p, "crl.pem"))), 0o644)
		return c
	}
	c := conf(both)
	code, out, e := runCLI(t, "", "config", "check", c)
	if code != 0 || !strings.Contains(out, c+":6: warning:") || !strings.Contains(out, "holds no CRL from CN=other CA") || !strings.HasSuffix(out, "ok\n") {
		t.Errorf("two CAs, a CRL from one: exit %d, want 0 with a warning at line 6:\n%s%s", code, out, e)
	}
	if _, err := (&pki.Dir{Path: p, Now: func() time.Time { return time.Now().Add(-40 * 24 * time.Hour) }}).WriteCRL(0); err != nil {
		t.Fatal(err)
	}
	c = conf(filepath.Join(p, "ca.crt"))
	code, out, e = runCLI(t, "", "config", "check", c)
	if code != 1 || !strings.Contains(out, c+":6: error:") || !strings.Contains(out, "expired on") || !strings.Contains(out, "mqttctl pki crl --dir "+p) {
		t.Errorf("expired CRL: exit %d, want 1 with the fix at line 6:\n%s%s", code, out, e)
	}
}
