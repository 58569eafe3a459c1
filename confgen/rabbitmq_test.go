package confgen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestTopicRegexp(t *testing.T) {
	for _, tc := range []struct {
		filter   string
		match    []string // routing keys
		notMatch []string
	}{
		{"a/b", []string{"a.b"}, []string{"a.bc", "a.b.c", "xa.b"}},
		{"a/+/c", []string{"a.x.c", "a..c"}, []string{"a.x.y.c", "a.c"}},
		{"a/#", []string{"a", "a.b", "a.b.c"}, []string{"ab", "b.a"}},
		{"#", []string{"a", "a.b"}, nil},
		{"s.x/y", []string{"s.x.y"}, []string{"sXx.y"}}, // a dot in a level is literal (RabbitMQ maps it too)
	} {
		re := regexp.MustCompile("^(" + topicRegexp(tc.filter) + ")$")
		for _, k := range tc.match {
			if !re.MatchString(k) {
				t.Errorf("%s (%s) does not match %s", tc.filter, re, k)
			}
		}
		for _, k := range tc.notMatch {
			if re.MatchString(k) {
				t.Errorf("%s (%s) matches %s", tc.filter, re, k)
			}
		}
	}
}

func TestGenerateRabbitMQ(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("topic read public/#\npattern readwrite devices/%u/#\nuser alice\ntopic write sensors/+/temp\ntopic deny sensors/secret\n"), 0o600)
	for _, n := range []string{"rabbit1", "rabbit2"} {
		os.MkdirAll(filepath.Join(dir, "pki", "servers"), 0o700)
		os.WriteFile(filepath.Join(dir, "pki", "servers", n+".crt"), nil, 0o600)
		os.WriteFile(filepath.Join(dir, "pki", "servers", n+".key"), nil, 0o600)
	}
	o := RabbitOptions{PKIDir: filepath.Join(dir, "pki"), Mode: "mtls", ACLFile: acl, Users: []string{"bob", "alice"},
		Nodes: []RabbitNode{{"rabbit1", "localhost", 8883}, {"rabbit2", "localhost", 8884}}}
	if _, err := GenerateRabbitMQ(o); err == nil || !strings.Contains(err.Error(), "acl:5: deny sensors/secret") {
		t.Fatalf("a deny line: %v", err)
	}
	os.WriteFile(acl, []byte("topic read public/#\npattern readwrite devices/%u/#\nuser alice\ntopic write sensors/+/temp\n"), 0o600)
	f, err := GenerateRabbitMQ(o)
	if err != nil {
		t.Fatal(err)
	}
	conf := string(f.Conf["rabbit2"])
	for _, want := range []string{"mqtt.listeners.ssl.default = localhost:8884", "ssl_options.fail_if_no_peer_cert = true", "mqtt.ssl_cert_login = true",
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
	if alice.User != "alice" || alice.Write != `^(devices\.{username}(\..*)?|sensors\.[^.]*\.temp)$` || alice.Read != `^(devices\.{username}(\..*)?)$` {
		t.Errorf("alice's topic permissions: %+v", alice)
	}
	if len(f.Warnings) != 0 {
		t.Errorf("warnings: %q", f.Warnings)
	}
}
