package main

import (
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/confgen"
)

// TestConfigRabbitMQRefusals: what config rabbitmq cannot write exactly is
// refused with the reason and leaves every file and directory as it was
// (issue 17: newlines from --node and --bind went into rabbitmq.conf, a
// host the node's certificate does not name was accepted, a refusal left
// empty directories).
func TestConfigRabbitMQRefusals(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", p, "--node", "rabbit1=localhost", "--node", "rabbit2=localhost", "--client", "alice"); code != 0 {
		t.Fatal(e)
	}
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("user alice\ntopic readwrite x/#\n"), 0o600)
	badACL := filepath.Join(dir, "bad-acl")
	os.WriteFile(badACL, []byte("user alice\ntopic readwrite x/#\npattern readwrite devices/%c/#\ntopic readwrite tenants/acme.corp/#\n"), 0o600)
	out := filepath.Join(dir, "rabbit")
	taken := filepath.Join(dir, "taken")
	os.Mkdir(taken, 0o700)
	os.WriteFile(filepath.Join(taken, "definitions.json"), []byte("{}\n"), 0o600)
	base := func(args ...string) []string {
		return append([]string{"config", "rabbitmq", "--pki", p, "--mode", "mtls"}, args...)
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"a newline in --node", base("--node", "rabbit1=localhost:8883\nmqtt.allow_anonymous = true", "--out", out), []string{"--node"}},
		{"a newline in the node's host", base("--node", "rabbit1=local\nhost:8883", "--out", out), []string{"--node", "not a DNS name or IP address"}},
		{"a line in the node name", base("--node", "rabbit1\nmqtt.allow_anonymous=true=localhost:8883", "--out", out), []string{"--node", "node name"}},
		{"a newline in --bind", base("--node", "rabbit1=localhost:8883", "--bind", "127.0.0.1\nmqtt.allow_anonymous = true", "--out", out), []string{"--bind", "not an IP address"}},
		{"an IPv6 node host", base("--node", "rabbit1=[::1]:8883", "--out", out), []string{"--node", "Erlang node name"}},
		{"a host name in --bind", base("--node", "rabbit1=localhost:8883", "--bind", "localhost", "--out", out), []string{"--bind", "IP address only"}},
		{"a host the certificate does not name", base("--node", "rabbit1=mqtt1.example.com:8883", "--out", out), []string{"--node", "servers/rabbit1.crt is for rabbit1, localhost, not mqtt1.example.com", "--host mqtt1.example.com --force"}},
		{"ACL rules RabbitMQ cannot hold", base("--acl", badACL, "--node", "rabbit1=localhost:8883", "--out", out), []string{"bad-acl:3: pattern readwrite devices/%c/#", "bad-acl:4: topic readwrite tenants/acme.corp/#", "nothing written"}},
		{"an existing file (the node directories it made go again)", base("--node", "rabbit1=localhost:8883", "--node", "rabbit2=localhost:8893", "--out", taken), []string{"definitions.json", "--force"}},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			before := snapshot(t, dir)
			code, o, e := runCLI(t, "", tc.args...)
			if code == 0 {
				t.Fatalf("accepted:\n%s%s", o, e)
			}
			for _, w := range tc.want {
				if !strings.Contains(e, w) {
					t.Errorf("stderr lacks %q:\n%s", w, e)
				}
			}
			if after := snapshot(t, dir); after != before {
				t.Errorf("a refused command changed files or directories:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	// The README's form (no --bind, a host name): RabbitMQ 3.10 refuses a
	// name in mqtt.listeners.ssl.default, so the listener takes a port
	// alone (every interface); an IP address HOST is bound as given.
	if code, o, e := runCLI(t, "", base("--acl", acl, "--node", "rabbit1=localhost:8883", "--node", "rabbit2=localhost:8893", "--out", out)...); code != 0 {
		t.Fatalf("config rabbitmq: %s%s", o, e)
	} else if !strings.Contains(o, "warning: "+confgen.RabbitRevocationWarning+"\n") {
		t.Errorf("certificate login without the warning that RabbitMQ reads no CRL:\n%s", o)
	}
	conf, _ := os.ReadFile(filepath.Join(out, "rabbit2", "rabbitmq.conf"))
	if !strings.Contains(string(conf), "\nmqtt.listeners.ssl.default = 8893\n") {
		t.Errorf("rabbit2/rabbitmq.conf:\n%s", conf)
	}
	// Issue 22: each node's environment file names the node and its files
	// by absolute path (Debian's rabbitmq-server changes to
	// /var/lib/rabbitmq first), a second node on a host gets its own
	// distribution port, and "Next:" prints what to run, absolute.
	absOut, _ := filepath.Abs(out)
	for _, tc := range []struct {
		node string
		want []string
		not  []string
	}{
		{"rabbit1", []string{"NODENAME=rabbit1@localhost\n", "CONFIG_FILE=" + filepath.Join(absOut, "rabbit1", "rabbitmq") + "\n", "ENABLED_PLUGINS_FILE=" + filepath.Join(absOut, "rabbit1", "enabled_plugins") + "\n"}, []string{"DIST_PORT", "USE_LONGNAME"}},
		{"rabbit2", []string{"NODENAME=rabbit2@localhost\n", "DIST_PORT=25673\n"}, []string{"USE_LONGNAME"}},
	} {
		env, err := os.ReadFile(filepath.Join(out, tc.node, "rabbitmq-env.conf"))
		for _, w := range tc.want {
			if err != nil || !strings.Contains(string(env), w) {
				t.Errorf("%s/rabbitmq-env.conf lacks %q (%v):\n%s", tc.node, w, err, env)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(string(env), w) {
				t.Errorf("%s/rabbitmq-env.conf has %q:\n%s", tc.node, w, env)
			}
		}
	}
	if code, o, e := runCLI(t, "", base("--acl", acl, "--node", "rabbit1=localhost:8883", "--node", "rabbit2=localhost:8893", "--out", out, "--force")...); code != 0 ||
		!strings.Contains(o, "RABBITMQ_CONF_ENV_FILE="+filepath.Join(absOut, "rabbit2", "rabbitmq-env.conf")+" rabbitmq-server") ||
		!strings.Contains(o, "rabbitmqctl list_users shows it") {
		t.Errorf("config rabbitmq's Next: %d\n%s%s", code, o, e)
	} else if os.Geteuid() == 0 && !strings.Contains(o, "Gave group rabbitmq read access") {
		if _, err := user.LookupGroup("rabbitmq"); err == nil {
			t.Errorf("run as root, config rabbitmq should give the rabbitmq group read access:\n%s", o)
		}
	}
	if code, _, e := runCLI(t, "", "pki", "issue", "server", "rabbit3", "--dir", p, "--host", "127.0.0.1"); code != 0 {
		t.Fatal(e)
	}
	if code, o, e := runCLI(t, "", base("--node", "rabbit3=127.0.0.1:8883", "--out", filepath.Join(dir, "r3"))...); code != 0 {
		t.Fatalf("config rabbitmq: %s%s", o, e)
	}
	if conf, _ := os.ReadFile(filepath.Join(dir, "r3", "rabbit3", "rabbitmq.conf")); !strings.Contains(string(conf), "\nmqtt.listeners.ssl.default = 127.0.0.1:8883\n") {
		t.Errorf("rabbit3/rabbitmq.conf:\n%s", conf)
	}
}
