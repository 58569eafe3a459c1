package main

// A live two-node RabbitMQ cluster (Debian's rabbitmq-server, MQTT plugin),
// started by the README's "Outgrowing one broker" block run as written (the
// documentation runner's rules: both nodes on this machine, host names
// become localhost, each HOST:PORT a free port), then proven with mosquitto
// clients: a certificate client's QoS 1 message crosses from node 1 to node
// 2; no certificate, another CA's certificate, a revoked one, or
// credentials in CONNECT are refused on both nodes; the ACL-derived topic
// permissions hold (a %u pattern among them), and the escalations of issue
// 17 (client ids ".*" and "x|.*") are refused.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

func TestRabbitMQCluster(t *testing.T) {
	testutil.RequireBinary(t, "rabbitmq-server")
	testutil.RequireBinary(t, "rabbitmqctl")
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	if os.Geteuid() != 0 {
		if testutil.InCI() {
			t.Fatal("the README's RabbitMQ block runs as root (Debian's rabbitmq-server switches to the rabbitmq user)")
		}
		t.Skip("SKIPPED LOUDLY: the README's RabbitMQ block runs as root; run the tests as root to prove it")
	}
	sec := readmeSection(t, "Outgrowing one broker")
	dir := t.TempDir()
	r := newDocRunner(t, dir, sec.lines)
	epmdBefore := exec.Command("epmd", "-names").Run() == nil
	if !epmdBefore {
		t.Cleanup(func() { _ = exec.Command("epmd", "-kill").Run() })
	}
	// Registered after the runner's: runs before it. rabbitmq-server's
	// su puts the node in a session of its own, out of reach of the
	// runner's process-group signal: stop each node, then kill what is
	// left of the nodes started from this directory.
	t.Cleanup(func() {
		for _, n := range []string{"rabbit1", "rabbit2"} {
			stop := r.command(fmt.Sprintf("RABBITMQ_CONF_ENV_FILE=%s rabbitmqctl -q stop", filepath.Join(dir, "rabbit", n, "rabbitmq-env.conf")))
			stop.CombinedOutput()
		}
		killEnv("RABBITMQ_CONF_ENV_FILE=" + dir)
	})
	start := time.Now()
	for _, l := range sec.lines {
		r.run(l)
		if t.Failed() {
			r.logServers()
			t.Fatalf("%s failed: the cluster is not up\n%s", l.src, rabbitLog(r, 1)+rabbitLog(r, 2))
		}
	}
	t.Logf("the README's block: cluster up and checked in %s", time.Since(start).Round(time.Second))
	ports := []int{r.ports["mqtt1.example.com:8883"], r.ports["mqtt2.example.com:8883"]}
	if ports[0] == 0 || ports[1] == 0 || ports[0] == ports[1] {
		t.Fatalf("the README's nodes are no longer mqtt1.example.com:8883 and mqtt2.example.com:8883: %v", r.ports)
	}
	ctl := func(i int, args string) (string, error) {
		out, err := r.command(fmt.Sprintf("RABBITMQ_CONF_ENV_FILE=%s rabbitmqctl -q %s", filepath.Join(dir, "rabbit", fmt.Sprint("rabbit", i), "rabbitmq-env.conf"), args)).CombinedOutput()
		return string(out), err
	}
	// Node 1 imported the definitions: no default user, on either node.
	if o, err := ctl(2, "list_users"); err != nil || strings.Contains(o, "guest") || strings.Contains(o, "mqttctl-default-unused") || !strings.Contains(o, "alice") || strings.Contains(o, "bob") {
		t.Fatalf("users on node 2: %v %s", err, o)
	}
	p := filepath.Join(dir, "pki")
	if code, _, e := runCLI(t, "", "pki", "init", "--dir", filepath.Join(dir, "other"), "--ca-name", "Other CA", "--host", "localhost", "--client", "eve"); code != 0 {
		t.Fatal(e)
	}
	cert := func(dir, name string) []string {
		return []string{"--cafile", filepath.Join(p, "ca.crt"), "--cert", filepath.Join(dir, "clients", name+".crt"), "--key", filepath.Join(dir, "clients", name+".key")}
	}
	mqtt := func(bin string, port int, args ...string) (string, error) {
		return testutil.Run(t, dir, nil, bin, append([]string{"-h", "localhost", "-p", fmt.Sprint(port)}, args...)...)
	}
	// A QoS 1 message from node 1 to a subscriber on node 2.
	_, got := testutil.Start(t, dir, "stdbuf", append([]string{"-oL", sub, "-h", "localhost", "-p", fmt.Sprint(ports[1]), "-t", "sensors/#", "-q", "1", "-v", "-d"}, cert(p, "alice")...)...)
	waitFor(t, got, "received SUBACK", "subscriber on node 2")
	if o, err := mqtt(pub, ports[0], append(cert(p, "alice"), "-t", "sensors/cross", "-m", "from-node-1", "-q", "1")...); err != nil {
		t.Fatalf("publish on node 1: %v %s\n%s", err, o, rabbitLog(r, 1))
	}
	waitFor(t, got, "sensors/cross from-node-1", "the message across the cluster")
	// A topic with '.' is the routing key of the topic with '/': it
	// arrives as sensors/dot (what the translation's soundness test assumes).
	if o, err := mqtt(pub, ports[0], append(cert(p, "alice"), "-t", "sensors.dot", "-m", "dotted", "-q", "1")...); err != nil {
		t.Fatalf("publish sensors.dot on node 1: %v %s", err, o)
	}
	waitFor(t, got, "sensors/dot dotted", "sensors.dot delivered as sensors/dot")
	// Refused on both nodes.
	for _, port := range ports {
		for _, tc := range []struct {
			name  string
			args  []string
			topic string
		}{
			{"no certificate", []string{"--cafile", filepath.Join(p, "ca.crt")}, "sensors/refused"},
			{"another CA's certificate", cert(filepath.Join(dir, "other"), "eve"), "sensors/refused"},
			{"a revoked certificate", cert(p, "bob"), "sensors/refused"},
			{"credentials beside the certificate", append(cert(p, "alice"), "-u", "mqttctl-default-unused", "-P", "x"), "sensors/refused"},
			{"a topic the ACL does not grant", cert(p, "alice"), "y/z"},
			// issue 17: a client id was a regular expression in the
			// permission; here it is only a client id.
			{"client id '.*' writing another device's topic", append(cert(p, "alice"), "-i", ".*"), "devices/victim/cmd"},
			{"client id 'x|.*' writing another device's topic", append(cert(p, "alice"), "-i", "x|.*"), "devices/victim/cmd"},
			{"client id 'x|.*' writing any topic", append(cert(p, "alice"), "-i", "x|.*"), "y/z"},
			{"another user's topic under 'pattern readwrite devices/%u/#'", cert(p, "alice"), "devices/bob/x"},
		} {
			if o, err := mqtt(pub, port, append(tc.args, "-t", tc.topic, "-m", "no", "-q", "1")...); err == nil {
				t.Errorf("port %d, %s: accepted\n%s", port, tc.name, o)
			}
		}
		// A subscription is checked on its filter: "status/+" grants
		// "status/+", not "status/#" (the routing key status.#), which
		// would receive status/a/b.
		if o, err := mqtt(sub, port, append(cert(p, "alice"), "-t", "status/+", "-E", "-W", "10")...); err != nil {
			t.Errorf("port %d, subscribe status/+: %v %s", port, err, o)
		}
		if o, err := mqtt(sub, port, append(cert(p, "alice"), "-t", "status/#", "-E", "-W", "5")...); err == nil {
			t.Errorf("port %d, subscribe status/# under 'read status/+': accepted\n%s", port, o)
		}
		// 'pattern readwrite devices/%u/#' gives alice devices/alice/#, under any client id.
		for _, id := range []string{"alice-1", ".*", "x|.*"} {
			if o, err := mqtt(pub, port, append(cert(p, "alice"), "-i", id, "-t", "devices/alice/cmd", "-m", "ok", "-q", "1")...); err != nil {
				t.Errorf("port %d, client id %q on devices/alice/cmd: %v %s", port, id, err, o)
			}
		}
	}
}

// TestRabbitMQRefusesEscalations: the rules of issue 17 that RabbitMQ
// would have widened are refused by config rabbitmq, naming the line, with
// nothing written: a client id in the expression (".*" wrote
// devices/victim/cmd, "x|.*" any topic), and "tenants/acme.corp/#", which
// also granted tenants/acme/corp/#.
func TestRabbitMQRefusesEscalations(t *testing.T) {
	dir := t.TempDir()
	p := newPKIDir(t, "--node", "rabbit1=localhost", "--client", "alice")
	acl := filepath.Join(dir, "acl")
	out := filepath.Join(dir, "rabbit")
	for _, tc := range []struct{ rule, want string }{
		{"pattern readwrite devices/%c/#", "acl:2: pattern readwrite devices/%c/#: the client id (%c) is chosen by the client"},
		{"topic readwrite tenants/acme.corp/#", "acl:3: topic readwrite tenants/acme.corp/#: RabbitMQ turns each '/' of a topic into '.'"},
	} {
		os.WriteFile(acl, []byte("user alice\n"+strings.Repeat("topic read x/#\n", strings.Count(tc.want, ":3:"))+tc.rule+"\n"), 0o600)
		args := []string{"config", "rabbitmq", "--pki", p, "--mode", "mtls", "--acl", acl, "--node", "rabbit1=localhost:8883", "--out", out}
		if code, o, e := runCLI(t, "", args...); code == 0 || !strings.Contains(e, tc.want) {
			t.Fatalf("config rabbitmq with %q: exit %d, want a refusal %q\n%s%s", tc.rule, code, tc.want, o, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("a refused config rabbitmq left %s", out)
		}
	}
}

// killEnv kills every process whose environment holds the string (the
// nodes a test started, wherever su put them).
func killEnv(s string) {
	procs, _ := filepath.Glob("/proc/[0-9]*/environ")
	for _, f := range procs {
		data, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(data), s) {
			continue
		}
		var pid int
		fmt.Sscanf(filepath.Base(filepath.Dir(f)), "%d", &pid)
		if pid > 0 && pid != os.Getpid() {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// rabbitLog is what node i logged about clustering, virtual hosts and
// definitions, and the end of its log, for a failure message (the nodes
// log into the section's /var/log/rabbitmq).
func rabbitLog(r *docRunner, i int) string {
	var files []string
	for j := 0; j+1 < len(r.binds); j += 2 {
		if r.binds[j+1] == "/var/log/rabbitmq" {
			files, _ = filepath.Glob(filepath.Join(r.binds[j], fmt.Sprintf("rabbit%d@*.log", i)))
		}
	}
	var b strings.Builder
	for _, f := range files {
		data, _ := os.ReadFile(f)
		fmt.Fprintf(&b, "== %s (selected lines)\n", f)
		for _, line := range strings.Split(string(data), "\n") {
			l := strings.ToLower(line)
			if strings.Contains(l, "vhost") || strings.Contains(l, "cluster") || strings.Contains(l, "discovery") || strings.Contains(l, "definitions") || strings.Contains(l, "mqtt") {
				b.WriteString(line[:min(len(line), 300)] + "\n")
			}
		}
		if len(data) > 3000 {
			data = data[len(data)-3000:]
		}
		fmt.Fprintf(&b, "== end of %s\n%s\n", f, data)
	}
	return b.String()
}
