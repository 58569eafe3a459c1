package confgen

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseMosquittoTarget(t *testing.T) {
	for _, c := range []struct {
		in   string
		want MosquittoTarget
	}{{"2.0", Mosquitto20}, {"2.1", Mosquitto21}, {"2.0.11", Mosquitto20}, {"2.1.2", Mosquitto21}, {"3.0", ""}, {"1.6.9", ""}, {"2", ""}, {"", ""}, {"2.1.x", ""}} {
		got, err := ParseMosquittoTarget(c.in)
		if got != c.want || (err == nil) != (c.want != "") {
			t.Errorf("%q: %q %v, want %q", c.in, got, err, c.want)
		}
		if err != nil && !errors.Is(err, ErrUnknownTarget) {
			t.Errorf("%q: %v is not ErrUnknownTarget", c.in, err)
		}
	}
}

// TestMosquittoPIDFile: Debian's main config names a pid_file and includes
// conf.d, so a file written there gets none (mosquitto refuses a second);
// elsewhere Debian's path as root, beside the file otherwise.
func TestMosquittoPIDFile(t *testing.T) {
	dir := t.TempDir()
	confd := filepath.Join(dir, "conf.d")
	main := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(main, []byte("pid_file /run/mosquitto/mosquitto.pid\ninclude_dir "+confd+"\n"), 0o644)
	for _, c := range []struct {
		out  string
		root bool
		want string
	}{
		{filepath.Join(confd, "mqttctl.conf"), true, ""},
		{filepath.Join(confd, "mqttctl.conf"), false, ""},
		{filepath.Join(dir, "other", "m.conf"), true, DebianPIDFile},
		{filepath.Join(dir, "other", "m.conf"), false, filepath.Join(dir, "other", "mosquitto.pid")},
	} {
		got, err := MosquittoPIDFile(c.out, main, c.root)
		if err != nil || got != c.want {
			t.Errorf("%s root %v: %q %v, want %q", c.out, c.root, got, err, c.want)
		}
	}
}

// TestResolvePluginFiles: mosquitto 2.1's password-file and acl-file
// plugins name the files password_file and acl_file name in 2.0; a
// plugin_opt_ of another plugin names no such file.
func TestResolvePluginFiles(t *testing.T) {
	c, err := Parse([]byte("allow_anonymous false\nplugin /usr/lib/mosquitto_password_file.so\nplugin_opt_password_file /etc/pw\n"+
		"plugin mosquitto_acl_file.so\nplugin_opt_acl_file /etc/acl\nlistener 1883 127.0.0.1\n"+
		"plugin /usr/lib/other.so\nplugin_opt_password_file /etc/not-this\n"), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, _ := c.Resolve()
	s := r.Listeners[0].Security
	if s.PasswordFile != "/etc/pw" || s.PasswordFilePos.Line != 3 || s.ACLFile != "/etc/acl" || s.ACLFilePos.Line != 5 {
		t.Fatalf("security %+v, want /etc/pw at line 3 and /etc/acl at line 5", s)
	}
}

// TestGenerateMosquitto21: the 2.1 file has no per_listener_settings,
// password_file nor acl_file, but the plugins that read the same files, and
// Resolve finds them as the same files the 2.0 one names.
func TestGenerateMosquitto21(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	os.Mkdir(pkiDir, 0o755)
	for _, f := range []string{"ca.crt", "server.crt", "server.key"} {
		os.WriteFile(filepath.Join(pkiDir, f), []byte("x"), 0o600)
	}
	pw, acl := filepath.Join(dir, "passwd"), filepath.Join(dir, "acl")
	os.WriteFile(pw, nil, 0o600)
	os.WriteFile(acl, []byte("user a\ntopic a/#\n"), 0o600)
	o := MosquittoOptions{PKIDir: pkiDir, Mode: "tls", PasswordFile: pw, ACLFile: acl, WebSockets: "127.0.0.1:9001", Origins: []string{"https://app.example.com/"}}
	files := map[MosquittoTarget][]string{}
	for _, target := range []MosquittoTarget{Mosquitto20, Mosquitto21} {
		o.Target, o.PluginDir = target, ""
		if target == Mosquitto21 {
			o.PluginDir = "/usr/lib/x86_64-linux-gnu"
		}
		c, err := GenerateMosquitto(o)
		if err != nil {
			t.Fatal(err)
		}
		text := string(c.Marshal())
		parsed, err := Parse([]byte(text), "m.conf")
		if err != nil {
			t.Fatal(err)
		}
		r, _ := parsed.Resolve()
		files[target] = r.Files()
		if got := r.Listeners[1].Origins; len(got) != 1 || got[0] != "https://app.example.com" {
			t.Errorf("%s: origins %v", target, got)
		}
		_, hasPLS := parsed.Get("per_listener_settings")
		_, hasPW := parsed.Get("password_file")
		if (target == Mosquitto21) == (hasPLS || hasPW) {
			t.Errorf("%s: per_listener_settings %v, password_file %v:\n%s", target, hasPLS, hasPW, text)
		}
		if target == Mosquitto21 && !contains(parsed.values("plugin"), "/usr/lib/x86_64-linux-gnu/mosquitto_password_file.so") {
			t.Errorf("no password-file plugin from the plugin directory:\n%s", text)
		}
	}
	if len(files[Mosquitto20]) != len(files[Mosquitto21]) || len(files[Mosquitto21]) != 5 {
		t.Errorf("the files differ: 2.0 %v, 2.1 %v", files[Mosquitto20], files[Mosquitto21])
	}
	o.Target = "3.0"
	if _, err := GenerateMosquitto(o); !errors.Is(err, ErrUnknownTarget) {
		t.Errorf("target 3.0: %v", err)
	}
}

func (c *Config) values(key string) []string {
	var out []string
	for _, d := range c.Global {
		if d.Key == key {
			out = append(out, d.Value)
		}
	}
	return out
}

// TestCheckMosquittoFor: each version says what it would of the same file:
// 2.0 stops at 2.1's options and plugins, 2.1 warns about what it
// deprecates and about a password file others can read; a password-file
// plugin without its file is an error for both.
func TestCheckMosquittoFor(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "passwd")
	os.WriteFile(pw, nil, 0o644)
	text := "per_listener_settings false\nallow_anonymous false\npassword_file " + pw + "\n" +
		"listener 9001 127.0.0.1\nprotocol websockets\nwebsockets_origin https://app.example.com\n"
	c, err := Parse([]byte(text), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	at := func(ds []Diagnostic, line int, warning bool, text string) bool {
		for _, d := range ds {
			if d.Pos.Line == line && d.Warning == warning && strings.Contains(d.Msg, text) {
				return true
			}
		}
		return false
	}
	_, ds20 := c.CheckMosquittoFor(Mosquitto20)
	if !at(ds20, 6, false, "websockets_origin came in mosquitto 2.1") || at(ds20, 1, true, "deprecated") {
		t.Errorf("2.0: %v", ds20)
	}
	_, ds21 := c.CheckMosquittoFor(Mosquitto21)
	if !at(ds21, 1, true, "per_listener_settings is deprecated") || !at(ds21, 3, true, "password_file is deprecated") || HasErrors(ds21) {
		t.Errorf("2.1: %v", ds21)
	}
	if _, err := user.Lookup(brokerUser(&Resolved{})); err == nil && !at(ds21, 3, true, "chmod o-rwx "+pw) {
		t.Errorf("2.1 warns about a password file others can read; the check does not: %v", ds21)
	}
	c, _ = Parse([]byte("plugin /usr/lib/mosquitto_password_file.so\nplugin mosquitto_acl_file.so\nplugin_opt_acl_file "+pw+"\nlistener 1883\n"), "p.conf")
	_, ds20 = c.CheckMosquittoFor(Mosquitto20)
	_, ds21 = c.CheckMosquittoFor(Mosquitto21)
	if !at(ds20, 1, false, "2.0 has none; use password_file") || !at(ds20, 2, false, "use acl_file") {
		t.Errorf("2.0 with 2.1's plugins: %v", ds20)
	}
	if !at(ds21, 1, false, "has no plugin_opt_password_file line") || at(ds21, 2, false, "has no") {
		t.Errorf("2.1, a password-file plugin without its file: %v", ds21)
	}
}

// FuzzMosquittoVersionOutput: what `mosquitto -h` prints is outside input;
// a version is found only as X.Y[.Z] and a target only for 2.0 and 2.1.
func FuzzMosquittoVersionOutput(f *testing.F) {
	f.Add([]byte("mosquitto version 2.1.2\n\nmosquitto is an MQTT v5.0/v3.1.1/v3.1 broker."))
	f.Add([]byte("mosquitto version 2.0.11"))
	f.Add([]byte("mosquitto version 10.99999999999999999999.1"))
	f.Fuzz(func(t *testing.T, out []byte) {
		m := mosquittoVersionRe.FindSubmatch(out)
		if m == nil {
			return
		}
		tgt, err := ParseMosquittoTarget(string(m[1]))
		if err == nil && tgt != Mosquitto20 && tgt != Mosquitto21 {
			t.Fatalf("%q gave target %q", m[1], tgt)
		}
	})
}

// TestPluginOptOfTheOtherFilePlugin: a plugin_opt_ line goes to the latest
// plugin line; after the other file plugin, mosquitto 2.1 gives it to that
// one, which refuses it and stops mosquitto: refused at its line.
func TestPluginOptOfTheOtherFilePlugin(t *testing.T) {
	for _, c := range []struct{ conf, want string }{
		{"plugin mosquitto_password_file.so\nplugin_opt_password_file /a\nplugin mosquitto_acl_file.so\nplugin_opt_password_file /b\nplugin_opt_acl_file /acl\n",
			"m.conf:4: error: plugin_opt_password_file follows plugin mosquitto_acl_file.so"},
		{"plugin mosquitto_password_file.so\nplugin_opt_acl_file /acl\n",
			"m.conf:2: error: plugin_opt_acl_file follows plugin mosquitto_password_file.so"},
	} {
		p, err := Parse([]byte(c.conf+"listener 1883 127.0.0.1\n"), "m.conf")
		if err != nil {
			t.Fatal(err)
		}
		_, ds := p.Resolve()
		if !HasErrors(ds) || !strings.Contains(fmt.Sprint(ds), c.want) {
			t.Errorf("%q: %v, want %q", c.conf, ds, c.want)
		}
	}
}

// TestCheck21WarnsOfSymlinkedAuthFiles: mosquitto 2.1 does not follow a
// symlink to its password or ACL file (without
// MOSQUITTO_UNSAFE_ALLOW_SYMLINKS) and does not start: config check
// --target mosquitto-2.1 says so at the line; 2.0 follows it.
func TestCheck21WarnsOfSymlinkedAuthFiles(t *testing.T) {
	dir := t.TempDir()
	real, link := filepath.Join(dir, "acl.real"), filepath.Join(dir, "acl")
	if err := os.WriteFile(real, []byte("user a\ntopic a/#\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	c, err := Parse([]byte("allow_anonymous true\nacl_file "+link+"\nlistener 1883 127.0.0.1\n"), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, ds21 := c.CheckMosquittoFor(Mosquitto21)
	if !strings.Contains(fmt.Sprint(ds21), "m.conf:2: warning: acl_file: "+link+" is a symlink") {
		t.Errorf("2.1: %v", ds21)
	}
	if _, ds20 := c.CheckMosquittoFor(Mosquitto20); strings.Contains(fmt.Sprint(ds20), "symlink") {
		t.Errorf("2.0 follows symlinks: %v", ds20)
	}
}

// TestPluginOptInAnotherBlock: a plugin_opt_ line in another listener
// block than its plugin line configures that other listener's plugin in
// mosquitto: refused at its line.
func TestPluginOptInAnotherBlock(t *testing.T) {
	p, err := Parse([]byte("per_listener_settings true\nlistener 1883 127.0.0.1\nplugin mosquitto_password_file.so\n"+
		"listener 1884 127.0.0.1\nplugin_opt_password_file /pw\n"), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	_, ds := p.Resolve()
	if !HasErrors(ds) || !strings.Contains(fmt.Sprint(ds), "m.conf:5: error: plugin_opt_password_file configures the plugin of m.conf:3, in another block") {
		t.Fatalf("%v", ds)
	}
	ok, err := Parse([]byte("per_listener_settings true\nlistener 1883 127.0.0.1\nplugin mosquitto_password_file.so\nplugin_opt_password_file /pw\n"), "m.conf")
	if err != nil {
		t.Fatal(err)
	}
	if _, ds := ok.Resolve(); strings.Contains(fmt.Sprint(ds), "another block") {
		t.Fatalf("a plugin_opt_ right after its plugin: %v", ds)
	}
}
