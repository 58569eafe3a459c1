package confgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestRabbitTopicRegexp(t *testing.T) {
	for _, tc := range []struct {
		filter   string
		match    []string // routing keys
		notMatch []string
	}{
		{"a/b", []string{"a.b"}, []string{"a.bc", "a.b.c", "xa.b", "a.b\n"}},
		{"a/+/c", []string{"a.x.c", "a..c", "a.*.c", "a.#x.c"}, []string{"a.x.y.c", "a.c", "a.#.c"}},
		{"a/+", []string{"a.x", "a.*"}, []string{"a.#", "a.x.y"}}, // a subscription a/# is the key a.#
		{"a/#", []string{"a", "a.b", "a.b.c", "a.#", "a.b\nc"}, []string{"ab", "b.a"}},
		{"#", []string{"a", "a.b", "#"}, []string{"$SYS.x", "$x"}},
		{"+/x", []string{"a.x", ".x", "*.x"}, []string{"$a.x", "#.x"}},
		{"{client_id}/x|y", []string{"{client_id}.x|y"}, []string{"x", "y"}},
	} {
		re := regexp.MustCompile(rabbitAlternatives([]string{rabbitTopicRegexp(tc.filter)}))
		for _, k := range tc.match {
			if !re.MatchString(k) {
				t.Errorf("%s (%s) does not match %q", tc.filter, re, k)
			}
		}
		for _, k := range tc.notMatch {
			if re.MatchString(k) {
				t.Errorf("%s (%s) matches %q", tc.filter, re, k)
			}
		}
	}
}

// TestRabbitTopicPermissionsRefused: each rule RabbitMQ cannot hold
// exactly is refused at its line, with the reason.
func TestRabbitTopicPermissionsRefused(t *testing.T) {
	for _, tc := range []struct{ acl, want string }{
		{"user alice\ntopic write a\npattern readwrite devices/%c/#\n", "acl:3: pattern readwrite devices/%c/#: the client id (%c) is chosen by the client"},
		{"pattern readwrite devices/%c/#\n", "use %u (the username, which is the certificate's CN with use_identity_as_username)"},
		{"pattern write devices-%u/#\n", `acl:1: pattern write devices-%u/#: level "devices-%u": mosquitto 2.0 replaces %u inside a level, 2.1 only a whole level`},
		{"pattern deny devices/%u/secret\n", "acl:1: pattern deny devices/%u/secret: RabbitMQ has one allow expression"},
		{"pattern write devices/%u/#\n", `acl:1: pattern write devices/%u/#: for user "a.b" (devices/a.b/#): RabbitMQ turns each '/' of a topic into '.'`},
		{"pattern write devices/%u/#\n", `acl:1: pattern write devices/%u/#: for user "x*" (devices/x*/#): RabbitMQ reads a '*' level`},
		{"pattern write devices/%u/#\n", `acl:1: pattern write devices/%u/#: for user "a/b": the username holds '/': mosquitto 2.0 makes %u several levels, 2.1 matches nothing`},
		{"pattern write %u/#\n", `acl:1: pattern write %u/#: for user "$s": "$s/#" starts with '$'`},
		{"pattern write %u\n", `acl:1: pattern write %u: for user "x ": topic "x " has leading or trailing white space`},
		{"user alice\ntopic readwrite tenants/acme.corp/#\n", "acl:2: topic readwrite tenants/acme.corp/#: RabbitMQ turns each '/' of a topic into '.'"},
		{"user alice\ntopic read a/*\n", "acl:2: topic read a/*: RabbitMQ reads a '*' level"},
		{"user alice\ntopic read $SYS/#\n", "acl:2: topic read $SYS/#: RabbitMQ's '#' and '+' subscriptions also match topics starting with '$'"},
		{"user alice\ntopic write sensors/+/temp\ntopic deny sensors/secret/temp\n", "acl:3: topic deny sensors/secret/temp: RabbitMQ has one allow expression"},
	} {
		acl, err := ParseACL([]byte(tc.acl), "acl")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := RabbitTopicPermissions(acl, "acl", []string{"alice", "a.b", "x*", "a/b", "$s", "x "}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.acl, err, tc.want)
		}
	}
}

// TestRabbitTopicPermissionsPattern: a %u pattern is each user's topic
// with its name, after its own rules; a username holding '+' or '#' gets
// nothing from patterns (mosquitto: "dangerous username"), nor does a user
// missing from users.
func TestRabbitTopicPermissionsPattern(t *testing.T) {
	acl, err := ParseACL([]byte("pattern readwrite devices/%u/#\npattern read public/#\nuser alice\ntopic write sensors/alice\nuser a.b\ntopic write x\n"), "acl")
	if err != nil {
		t.Fatal(err)
	}
	got, err := RabbitTopicPermissions(acl, "acl", []string{"alice", "bob", "a+b", "#"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]RabbitTopicPermission{
		"alice": {Read: `^(?:devices\.alice(?:\.[\s\S]*)?|public(?:\.[\s\S]*)?)\z`, Write: `^(?:sensors\.alice|devices\.alice(?:\.[\s\S]*)?)\z`},
		"bob":   {Read: `^(?:devices\.bob(?:\.[\s\S]*)?|public(?:\.[\s\S]*)?)\z`, Write: `^(?:devices\.bob(?:\.[\s\S]*)?)\z`},
		"a+b":   {Read: rabbitNothing, Write: rabbitNothing},
		"#":     {Read: rabbitNothing, Write: rabbitNothing},
	}
	for u, w := range want {
		if got[u] != w {
			t.Errorf("%s: %+v, want %+v", u, got[u], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("users: %v", got)
	}
}

func TestGenerateRabbitMQ(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("topic read public/#\nuser alice\ntopic readwrite devices/alice/#\ntopic write sensors/+/temp\ntopic deny sensors/secret\n"), 0o600)
	for _, n := range []string{"rabbit1", "rabbit2"} {
		writeServerCert(t, filepath.Join(dir, "pki"), n, "localhost")
	}
	o := RabbitOptions{PKIDir: filepath.Join(dir, "pki"), Mode: "mtls", ACLFile: acl, Users: []string{"bob", "alice"},
		Nodes: []RabbitNode{{"rabbit1", "localhost", 8883}, {"rabbit2", "localhost", 8884}}}
	if _, err := GenerateRabbitMQ(o); err == nil || !strings.Contains(err.Error(), "acl:5: topic deny sensors/secret") {
		t.Fatalf("a deny line: %v", err)
	}
	os.WriteFile(acl, []byte("topic read public/#\nuser alice\ntopic readwrite devices/alice/#\ntopic write sensors/+/temp\n"), 0o600)
	f, err := GenerateRabbitMQ(o)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(f.Conf["rabbit2"])
	for _, want := range []string{"mqtt.listeners.ssl.default = 8884\n", "ssl_options.fail_if_no_peer_cert = true", "mqtt.ssl_cert_login = true",
		"ssl_cert_login_from = common_name", "mqtt.allow_anonymous = false", "cluster_formation.classic_config.nodes.1 = rabbit1@localhost",
		"cluster_formation.classic_config.nodes.2 = rabbit2@localhost", "servers/rabbit2.crt"} {
		if !strings.Contains(conf, want) {
			t.Errorf("rabbitmq.conf lacks %q:\n%s", want, conf)
		}
	}
	var defs struct {
		Users []struct {
			Name         string
			PasswordHash string `json:"password_hash"`
		} `json:"users"`
		TopicPermissions []struct{ User, Read, Write string } `json:"topic_permissions"`
	}
	if err := json.Unmarshal(f.Definitions, &defs); err != nil {
		t.Fatal(err)
	}
	if len(defs.Users) != 2 || defs.Users[0].Name != "alice" || defs.Users[0].PasswordHash != "" || defs.Users[1].PasswordHash != "" {
		t.Fatalf("users: %+v (certificate users have no password, so CONNECT credentials cannot override the CN)", defs.Users)
	}
	alice := defs.TopicPermissions[0]
	if alice.User != "alice" || alice.Write != `^(?:devices\.alice(?:\.[\s\S]*)?|sensors\.(?:[^.#][^.]*|#[^.]+)?\.temp)\z` || alice.Read != `^(?:devices\.alice(?:\.[\s\S]*)?)\z` {
		t.Errorf("alice's topic permissions: %+v", alice)
	}
	if bob := defs.TopicPermissions[1]; bob.User != "bob" || bob.Read != rabbitNothing || bob.Write != rabbitNothing {
		t.Errorf("bob has no block, so no topic: %+v", bob)
	}
	// The one warning: persistent sessions follow the client id, not the
	// user (the adversarial run's takeover, live on RabbitMQ 3.10.8).
	if len(f.Warnings) != 1 || !strings.Contains(f.Warnings[0], "ties a persistent session to its client id") {
		t.Errorf("warnings: %q", f.Warnings)
	}
}

// TestRabbitEnv: a host with dots makes a long node name (RabbitMQ's CLI
// and server refuse a dotted host in a short name).
func TestRabbitEnv(t *testing.T) {
	env, err := rabbitEnv("/etc/rabbit", RabbitNode{Name: "rabbit1", Host: "mqtt1.example.com", MQTTPort: 8883}, 0)
	if err != nil || !strings.Contains(string(env), "NODENAME=rabbit1@mqtt1.example.com\n") || !strings.Contains(string(env), "\nUSE_LONGNAME=true\n") {
		t.Errorf("%v\n%s", err, env)
	}
	if _, err := rabbitEnv("/etc/my rabbit", RabbitNode{Name: "rabbit1", Host: "h", MQTTPort: 8883}, 0); err == nil {
		t.Error("a path with a space went into rabbitmq-env.conf, which sh sources unquoted")
	}
}
