package confgen

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const sampleConf = `# a hand-written config
per_listener_settings false
allow_anonymous false
password_file /etc/mosquitto/passwd
log_dest stderr
log_type error
log_type warning

listener 8883 0.0.0.0
cafile /etc/mosquitto/ca.crt
certfile /etc/mosquitto/server.crt
keyfile /etc/mosquitto/server.key
require_certificate true
use_identity_as_username true
tls_version tlsv1.3

listener 1883 127.0.0.1
acl_file /etc/mosquitto/acl
`

// strip removes positions so that models can be compared.
func strip(c *Config) *Config {
	out := &Config{}
	for _, d := range c.Global {
		out.Global = append(out.Global, Directive{Key: d.Key, Value: d.Value})
	}
	for _, l := range c.Listener {
		nl := &Listener{Port: l.Port, Bind: l.Bind}
		for _, d := range l.Options {
			nl.Options = append(nl.Options, Directive{Key: d.Key, Value: d.Value})
		}
		out.Listener = append(out.Listener, nl)
	}
	return out
}

func TestConfigRoundTrip(t *testing.T) {
	c, err := Parse([]byte(sampleConf), "sample.conf")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := Parse(c.Marshal(), "rendered")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(strip(c), strip(c2)) {
		t.Fatalf("round trip changed the model:\n%s", c.Marshal())
	}
	if !reflect.DeepEqual(c.Marshal(), c2.Marshal()) {
		t.Fatal("rendering is not stable")
	}
	r, ds := c.Resolve()
	if HasErrors(ds) {
		t.Fatal(ds)
	}
	if len(r.Listeners) != 2 || r.Listeners[0].TLS == nil || !r.Listeners[0].TLS.RequireCertificate || r.Listeners[0].TLS.TLSVersion != "tlsv1.3" {
		t.Fatalf("listeners: %+v", r.Listeners)
	}
	// Without per_listener_settings the acl_file after the second listener is global.
	if r.Listeners[0].Security.ACLFile != "/etc/mosquitto/acl" || r.Listeners[1].TLS != nil || r.Listeners[0].Security.AllowAnonymous {
		t.Fatalf("security: %+v", r.Listeners)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name, conf, want string
	}{
		{"unknown option", "listener 1883\nallow_anonymus true\n", `test.conf:2: unknown option "allow_anonymus"`},
		{"bad bool", "allow_anonymous yes\n", "test.conf:1: allow_anonymous \"yes\": use true or false"},
		{"bad int", "max_packet_size lots\n", "test.conf:1: max_packet_size"},
		{"int out of mosquitto's range", "global_max_connections 99999999999\n", "test.conf:1: global_max_connections 99999999999: out of range"},
		{"int with a leading zero", "listener 1\nmax_connections 010\n", "test.conf:2: max_connections \"010\": write it without leading zeros"},
		{"bad enum", "listener 8883\ntls_version tlsv1.4\n", "test.conf:2: tls_version"},
		{"bad listener", "listener eighty\n", "test.conf:1: listener port"},
		{"listener option outside", "certfile /x\n", "test.conf:1: certfile belongs to a listener"},
		{"missing value", "listener 1\nkeyfile\n", "test.conf:2: keyfile needs a value"},
		// A comment that looks like an mqttctl option is refused at its
		// line: mosquitto ignores it, and so would serve.
		{"mqttctl option without the space", "listener 1\nprotocol websockets\n#mqttctl: http_origin https://a.test\n", "test.conf:3: \"#mqttctl: http_origin https://a.test\" looks like an mqttctl option"},
		{"mqttctl option in capitals", "listener 1\n# MQTTCTL: http_origin https://a.test\n", "test.conf:2: "},
		{"mqttctl option with a space before the colon", "listener 1\n# mqttctl : http_origin https://a.test\n", "test.conf:2: "},
		{"mqttctl option without the colon", "listener 1\n# mqttctl http_origin https://a.test\n", "test.conf:2: "},
		{"mqttctl option with a tab", "listener 1\n#\tmqttctl: http_origin https://a.test\n", "test.conf:2: "},
		{"mqttctl option without its prefix", "listener 1\n# http_origin https://a.test\n", "test.conf:2: "},
		{"unknown mqttctl option", "listener 1\n# mqttctl: http_orign https://a.test\n", "test.conf:2: unknown mqttctl option"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.conf), "test.conf")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
		})
	}
}

// TestConfigOrdinaryCommentsAboutMqttctl: comments that mention mqttctl
// without looking like an option stay comments.
func TestConfigOrdinaryCommentsAboutMqttctl(t *testing.T) {
	for _, line := range []string{"# mosquitto.conf written by mqttctl config mosquitto (mode mtls).", "# mqttctl generated this file",
		"#", "# Check it with: mqttctl config check FILE", "# the http origin is checked by mqttctl"} {
		if _, err := Parse([]byte(line+"\nlistener 1\n"), "test.conf"); err != nil {
			t.Errorf("%q: %v", line, err)
		}
	}
}

// mtlsConf is a mutual-TLS listener, lines 1 to 5.
const mtlsConf = "listener 8883 127.0.0.1\ncertfile /c\nkeyfile /k\ncafile /ca\nrequire_certificate true\n"

// TestConfigEnrolOptions: renew_pki and provision_by_claim on a mutual-TLS
// listener resolve into its spec.
func TestConfigEnrolOptions(t *testing.T) {
	c, err := Parse([]byte(mtlsConf+"# mqttctl: renew_pki /etc/mqttctl/pki\n# mqttctl: provision_by_claim on\n# mqttctl: renew_days 30\nlistener 8884 127.0.0.1\ncertfile /c\nkeyfile /k\n"), "c.conf")
	if err != nil {
		t.Fatal(err)
	}
	r, ds := c.Resolve()
	if HasErrors(ds) {
		t.Fatal(ds)
	}
	if l := r.Listeners[0]; l.RenewPKI != "/etc/mqttctl/pki" || !l.Provision || l.RenewDays != 30 {
		t.Fatalf("listener 1: %+v", l)
	}
	if l := r.Listeners[1]; l.RenewPKI != "" || l.Provision || l.RenewDays != 0 {
		t.Fatalf("listener 2 has the first's options: %+v", l)
	}
	if _, err := Parse([]byte("# mqttctl: renew_pki /p\n"), "c.conf"); err == nil || !strings.Contains(err.Error(), "c.conf:1: renew_pki belongs to a listener") {
		t.Fatalf("outside a listener: %v", err)
	}
	if _, err := Parse([]byte("listener 1\n# provision_by_claim on\n"), "c.conf"); err == nil || !strings.Contains(err.Error(), "c.conf:2: ") {
		t.Fatalf("a near miss: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name, conf string
		want       string
		warning    bool
	}{
		{"certfile without keyfile", "listener 8883\ncertfile /c\n", "c.conf:2: error: certfile without keyfile: mosquitto would silently serve plain MQTT", false},
		{"require_certificate without CA", "listener 8883\ncertfile /c\nkeyfile /k\nrequire_certificate true\n", "c.conf:4: error: require_certificate true needs cafile", false},
		{"security before per_listener_settings", "password_file /p\nper_listener_settings true\nlistener 1\n", "c.conf:1: error: password_file comes before per_listener_settings", false},
		{"security before first listener", "per_listener_settings true\nacl_file /a\nlistener 1\n", "c.conf:2: error: acl_file is before the first listener", false},
		{"TLS option on a plain listener", "listener 8883\ncafile /ca\n", "c.conf:2: error: cafile is set but the listener on port 8883 has no certfile/keyfile", false},
		{"tls 1.1", "listener 8883\ncertfile /c\nkeyfile /k\ntls_version tlsv1.1\n", "c.conf:4: error: tls_version tlsv1.1", false},
		{"identity without require", "listener 8883 127.0.0.1\ncertfile /c\nkeyfile /k\nuse_identity_as_username true\n", "c.conf:4: warning: use_identity_as_username without require_certificate", true},
		{"open TLS listener", "allow_anonymous true\nlistener 8883\ncertfile /c\nkeyfile /k\n", "c.conf:2: warning: TLS listener on port 8883 listens on every interface", true},
		{"duplicate listener", "listener 1883\nlistener 1883\n", "c.conf:2: error: a listener on :1883 is already defined at c.conf:1", false},
		// The MQTT enrolment topics: only where the client's certificate
		// is verified, on an mqtt listener without a mount point.
		{"renew_pki on a plain listener", "listener 1883 127.0.0.1\n# mqttctl: renew_pki /p\n", "c.conf:2: error: renew_pki needs a listener that requires client certificates", false},
		{"renew_pki without require_certificate", "listener 8883 127.0.0.1\ncertfile /c\nkeyfile /k\n# mqttctl: renew_pki /p\n", "c.conf:4: error: renew_pki needs a listener that requires client certificates", false},
		{"renew_pki on websockets", mtlsConf + "protocol websockets\n# mqttctl: renew_pki /p\n", "c.conf:7: error: renew_pki applies to an mqtt listener", false},
		{"renew_pki with a mount point", mtlsConf + "mount_point site1/\n# mqttctl: renew_pki /p\n", "c.conf:7: error: renew_pki cannot apply on a listener with mount_point", false},
		{"renew_pki without a directory", mtlsConf + "# mqttctl: renew_pki\n", "c.conf:6: error: renew_pki \"\": give the pki directory", false},
		{"provision_by_claim without renew_pki", mtlsConf + "# mqttctl: provision_by_claim on\n", "c.conf:6: error: provision_by_claim on needs renew_pki", false},
		{"provision_by_claim yes", mtlsConf + "# mqttctl: renew_pki /p\n# mqttctl: provision_by_claim yes\n", "c.conf:7: error: provision_by_claim \"yes\": use on or off", false},
		{"http_origin with capitals", "listener 9001 127.0.0.1\nprotocol websockets\n# mqttctl: http_origin https://App.example.com\n", "c.conf:3: error: http_origin \"https://App.example.com\": browsers send the origin in lower case", false},
		{"websockets_origin with capitals", "listener 9001 127.0.0.1\nprotocol websockets\nwebsockets_origin HTTPS://app.example.com\n", "c.conf:3: error: websockets_origin \"HTTPS://app.example.com\": browsers send the origin in lower case", false},
		{"renew_days without renew_pki", mtlsConf + "# mqttctl: renew_days 30\n", "c.conf:6: error: renew_days needs renew_pki", false},
		{"renew_days 0", mtlsConf + "# mqttctl: renew_pki /p\n# mqttctl: renew_days 0\n", "c.conf:7: error: renew_days \"0\": give a number of days from 1 to 825", false},
		{"renew_days 826", mtlsConf + "# mqttctl: renew_pki /p\n# mqttctl: renew_days 826\n", "c.conf:7: error: renew_days \"826\"", false},
		{"renew_days 30d", mtlsConf + "# mqttctl: renew_pki /p\n# mqttctl: renew_days 30d\n", "c.conf:7: error: renew_days \"30d\"", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.conf), "c.conf")
			if err != nil {
				t.Fatal(err)
			}
			_, ds := c.Resolve()
			var all []string
			found := false
			for _, d := range ds {
				all = append(all, d.String())
				if strings.Contains(d.String(), tt.want) {
					found = true
				}
			}
			if !found {
				t.Fatalf("want %q in:\n%s", tt.want, strings.Join(all, "\n"))
			}
			if HasErrors(ds) == tt.warning {
				t.Fatalf("HasErrors=%v for %v", HasErrors(ds), all)
			}
		})
	}
}

func TestLoadIncludeDir(t *testing.T) {
	dir := t.TempDir()
	inc := filepath.Join(dir, "conf.d")
	os.Mkdir(inc, 0o755)
	os.WriteFile(filepath.Join(inc, "b.conf"), []byte("listener 1884\n"), 0o644)
	os.WriteFile(filepath.Join(inc, "a.conf"), []byte("listener 1883 127.0.0.1\nbogus 1\n"), 0o644)
	os.WriteFile(filepath.Join(inc, "ignored.txt"), []byte("junk\n"), 0o644)
	main := filepath.Join(dir, "m.conf")
	os.WriteFile(main, []byte("include_dir "+inc+"\n"), 0o644)
	_, err := Load(main)
	if err == nil || !strings.Contains(err.Error(), "a.conf:2: unknown option") {
		t.Fatalf("error from an included file: %v", err)
	}
	os.WriteFile(filepath.Join(inc, "a.conf"), []byte("listener 1883 127.0.0.1\n"), 0o644)
	c, err := Load(main)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Listener) != 2 || c.Listener[0].Port != 1883 || c.Listener[1].Port != 1884 {
		t.Fatalf("include order: %+v", c.Listener)
	}
}

func TestGenerateMosquittoRefusesIncomplete(t *testing.T) {
	if _, err := GenerateMosquitto(MosquittoOptions{PKIDir: t.TempDir(), Mode: "mtls"}); err == nil || !strings.Contains(err.Error(), "pki init") {
		t.Fatalf("empty pki dir: %v", err)
	}
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(sampleConf))
	f.Add([]byte("listener 1883\nallow_anonymous true\n"))
	f.Add([]byte("global_max_connections 2\nplugin /usr/lib/mosquitto_password_file.so\nplugin_opt_password_file /p\n" +
		"plugin mosquitto_acl_file.so\nplugin_opt_acl_file /a\nlistener 9001\nprotocol websockets\nwebsockets_origin https://a.example.com\n" +
		"accept_protocol_versions 3, 4\ncertfile /c\nkeyfile /k\nrequire_certificate true\ncafile /ca\ndisable_client_cert_date_checks true\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz")
		if err != nil {
			return
		}
		c.Resolve()
		c.CheckMosquittoFor(Mosquitto20)
		c.CheckMosquittoFor(Mosquitto21)
		c2, err := Parse(c.Marshal(), "again")
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, c.Marshal())
		}
		if string(c2.Marshal()) != string(c.Marshal()) {
			t.Fatalf("render not stable:\n%s\n---\n%s", c.Marshal(), c2.Marshal())
		}
	})
}

// TestListenerKind: config check's words for each transport; a websockets
// listener is never "plain MQTT".
func TestListenerKind(t *testing.T) {
	tests := []struct {
		conf, want string
	}{
		{"listener 1883\n", "plain MQTT (mqtt://, no TLS)"},
		{"listener 8883\ncertfile /s.crt\nkeyfile /s.key\n", "MQTT over TLS (tlsv1.2+) (mqtts://)"},
		{"listener 8883\ncafile /ca.crt\ncertfile /s.crt\nkeyfile /s.key\nrequire_certificate true\ntls_version tlsv1.3\n", "MQTT over mutual TLS (tlsv1.3+) (mqtts://)"},
		{"listener 8080\nprotocol websockets\n", "MQTT over WebSocket (ws://, no TLS)"},
		{"listener 8884\nprotocol websockets\ncafile /ca.crt\ncertfile /s.crt\nkeyfile /s.key\nrequire_certificate true\n", "MQTT over WebSocket (wss://, mutual TLS (tlsv1.2+))"},
	}
	for _, tt := range tests {
		c, err := Parse([]byte(tt.conf), "t.conf")
		if err != nil {
			t.Fatal(err)
		}
		r, _ := c.Resolve()
		if got := r.Listeners[0].Kind(); got != tt.want {
			t.Errorf("%q: %q, want %q", tt.conf, got, tt.want)
		}
	}
}
