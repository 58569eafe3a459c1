package main

// A live two-node RabbitMQ cluster (Debian's rabbitmq-server, MQTT plugin)
// from the files `config rabbitmq` writes, proven with mosquitto clients:
// a certificate client's QoS 1 message crosses from node 1 to node 2;
// no certificate, another CA's certificate, or credentials in CONNECT are
// refused on both nodes; the ACL-derived topic permissions hold (a %u
// pattern among them), and the escalations of issue 17 (client ids ".*"
// and "x|.*", the acme.corp topic) are refused. config rabbitmq runs as the README writes it.

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

const rabbitBin = "/usr/lib/rabbitmq/bin"

func TestRabbitMQCluster(t *testing.T) {
	testutil.RequireBinary(t, "rabbitmq-server")
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	if _, err := os.Stat(filepath.Join(rabbitBin, "rabbitmq-server")); err != nil {
		t.Fatalf("rabbitmq-server is installed but %s is not there: %v", rabbitBin, err)
	}
	dir := t.TempDir()
	p := filepath.Join(dir, "pki")
	steps := [][]string{
		{"pki", "init", "--dir", p, "--node", "rabbit1=localhost", "--node", "rabbit2=localhost", "--client", "alice", "--client", "bob"},
		{"pki", "revoke", "bob", "--dir", p},
		{"pki", "init", "--dir", filepath.Join(dir, "other"), "--ca-name", "Other CA", "--host", "localhost", "--client", "eve"},
	}
	for _, s := range steps {
		if code, _, e := runCLI(t, "", s...); code != 0 {
			t.Fatalf("%v: %s", s, e)
		}
	}
	acl := filepath.Join(dir, "acl")
	ports := testutil.FreePorts(t, 6) // MQTT 1 and 2, AMQP (unused) 1 and 2, distribution 1 and 2
	out := filepath.Join(dir, "rabbit")
	// The README's command as written (no --bind: RabbitMQ 3.10 refuses to
	// boot on a host name there).
	readme := func(acl string) []string {
		return []string{"config", "rabbitmq", "--pki", p, "--mode", "mtls", "--acl", acl,
			"--node", fmt.Sprintf("rabbit1=localhost:%d", ports[0]), "--node", fmt.Sprintf("rabbit2=localhost:%d", ports[1]), "--out", out}
	}
	// The escalations of issue 17 are refused by the translation: a
	// client id in the expression (".*" wrote devices/victim/cmd, "x|.*"
	// any topic), and "tenants/acme.corp/#", which also granted
	// tenants/acme/corp/#.
	for _, tc := range []struct{ rule, want string }{
		{"pattern readwrite devices/%c/#", "acl:2: pattern readwrite devices/%c/#: the client id (%c) is chosen by the client"},
		{"topic readwrite tenants/acme.corp/#", "acl:3: topic readwrite tenants/acme.corp/#: RabbitMQ turns each '/' of a topic into '.'"},
	} {
		os.WriteFile(acl, []byte("user alice\n"+strings.Repeat("topic read x/#\n", strings.Count(tc.want, ":3:"))+tc.rule+"\n"), 0o600)
		if code, o, e := runCLI(t, "", readme(acl)...); code == 0 || !strings.Contains(e, tc.want) {
			t.Fatalf("config rabbitmq with %q: exit %d, want a refusal %q\n%s%s", tc.rule, code, tc.want, o, e)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("a refused config rabbitmq left %s", out)
		}
	}
	// What those rules meant for alice, written as the translation takes
	// it: a %u pattern, expanded for each user (devices/alice/# for alice).
	os.WriteFile(acl, []byte("user alice\ntopic readwrite x/#\ntopic read status/+\npattern readwrite devices/%u/#\n"), 0o600)
	if code, o, e := runCLI(t, "", readme(acl)...); code != 0 {
		t.Fatalf("config rabbitmq: %s%s", o, e)
	}
	home := filepath.Join(dir, "home")
	os.MkdirAll(home, 0o700)
	os.WriteFile(filepath.Join(home, ".erlang.cookie"), []byte(fmt.Sprintf("MQTTCTLTEST%d", os.Getpid())), 0o400)
	// The node names must not collide with anything else epmd knows.
	suffix := fmt.Sprint(os.Getpid())
	node := func(i int) string { return fmt.Sprintf("rabbit%d_%s@localhost", i, suffix) }
	epmdBefore := exec.Command("epmd", "-names").Run() == nil
	env := func(i int) []string {
		n := fmt.Sprint(i)
		return append(os.Environ(), "HOME="+home, "ERL_EPMD_ADDRESS=127.0.0.1", "RABBITMQ_NODENAME="+node(i),
			"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1", fmt.Sprintf("RABBITMQ_NODE_PORT=%d", ports[1+i]), fmt.Sprintf("RABBITMQ_DIST_PORT=%d", ports[3+i]),
			"RABBITMQ_MNESIA_BASE="+filepath.Join(dir, "data"+n), "RABBITMQ_LOG_BASE="+filepath.Join(dir, "log"+n),
			"RABBITMQ_CONFIG_FILE="+filepath.Join(out, "rabbit"+n, "rabbitmq"), "RABBITMQ_ENABLED_PLUGINS_FILE="+filepath.Join(out, "rabbit"+n, "enabled_plugins"),
			"RABBITMQ_PLUGINS_EXPAND_DIR="+filepath.Join(dir, "plugins"+n), "RABBITMQ_CONF_ENV_FILE=/dev/null",
			"RABBITMQ_ADVANCED_CONFIG_FILE="+filepath.Join(dir, "none.config"))
	}
	// The generated cluster list names rabbit1@localhost and rabbit2@localhost;
	// the nodes here carry a suffix: point the list at them.
	for i := 1; i <= 2; i++ {
		f := filepath.Join(out, fmt.Sprint("rabbit", i), "rabbitmq.conf")
		data, _ := os.ReadFile(f)
		s := strings.NewReplacer("= rabbit1@localhost", "= "+node(1), "= rabbit2@localhost", "= "+node(2)).Replace(string(data))
		os.WriteFile(f, []byte(s), 0o600)
	}
	// Registered first, so it runs after the nodes are stopped: epmd
	// outlives them.
	t.Cleanup(func() {
		if !epmdBefore {
			_ = exec.Command("epmd", "-kill").Run()
		}
	})
	ctl := func(i int, args ...string) (string, error) {
		cmd := exec.Command(filepath.Join(rabbitBin, "rabbitmqctl"), append([]string{"-q", "-n", node(i)}, args...)...)
		cmd.Env = env(i)
		o, err := cmd.CombinedOutput()
		return string(o), err
	}
	start := time.Now()
	logs := make([]*testutil.SyncBuffer, 3)
	booted := func() bool {
		for _, l := range logs[1:] {
			if l != nil && strings.Contains(l.String(), "BOOT FAILED") {
				return false
			}
		}
		return true
	}
	// until polls ok every 500 ms; past limit (from start) or once a node
	// failed to boot, the test fails with why().
	until := func(limit time.Duration, ok func() bool, why func() string) {
		t.Helper()
		for !ok() {
			if time.Since(start) > limit || !booted() {
				t.Fatal(why())
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	// Node 1 first, as the README says: booted together, node 1 sometimes
	// came up with vhost '/' down and dropped every MQTT connection (2 runs
	// in 14 here, under load).
	for i := 1; i <= 2; i++ {
		cmd := exec.Command(filepath.Join(rabbitBin, "rabbitmq-server"))
		cmd.Env = env(i)
		logs[i] = &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = logs[i], logs[i]
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-done
			}
		})
		if i == 1 {
			until(60*time.Second, func() bool { _, err := ctl(1, "list_users"); return err == nil },
				func() string { return "node 1 did not start:\n" + logs[1].String() })
			t.Logf("node 1 up in %s", time.Since(start).Round(time.Second))
		}
	}
	until(90*time.Second, func() bool {
		o, _ := ctl(1, "cluster_status")
		i := strings.Index(o, "Running Nodes")
		return i >= 0 && strings.Contains(o[i:], node(2)) && strings.Contains(o[i:], node(1))
	}, func() string {
		return fmt.Sprintf("the cluster did not form:\nnode 1:\n%s\nnode 2:\n%s", logs[1].String(), logs[2].String())
	})
	for i := 1; i <= 2; i++ { // both nodes' rabbit app running (a joining node restarts it)
		until(90*time.Second, func() bool { _, err := ctl(i, "list_users"); return err == nil },
			func() string { return fmt.Sprintf("node %d is not serving:\n%s", i, logs[i].String()) })
	}
	t.Logf("2-node cluster up in %s", time.Since(start).Round(time.Second))
	// A node that did not import definitions made the (locked) default
	// user; whether one did depends on the order the nodes booted in.
	if o, _ := ctl(1, "list_users"); strings.Contains(o, "mqttctl-default-unused") {
		if o, err := ctl(1, "delete_user", "mqttctl-default-unused"); err != nil {
			t.Fatalf("delete the default user: %v %s", err, o)
		}
	}
	if o, _ := ctl(2, "list_users"); strings.Contains(o, "guest") || strings.Contains(o, "mqttctl-default-unused") || !strings.Contains(o, "alice") || strings.Contains(o, "bob") {
		t.Fatalf("users on node 2: %s", o)
	}

	cert := func(dir, name string) []string {
		return []string{"--cafile", filepath.Join(p, "ca.crt"), "--cert", filepath.Join(dir, "clients", name+".crt"), "--key", filepath.Join(dir, "clients", name+".key")}
	}
	mqtt := func(bin string, port int, args ...string) (string, error) {
		return testutil.Run(t, dir, nil, bin, append([]string{"-h", "localhost", "-p", fmt.Sprint(port)}, args...)...)
	}
	// Ready when a certificate client can publish on each node (the MQTT
	// plugin keeps client ids in a Raft group the joining node enters after
	// its app runs); a node that never gets there fails with its log.
	tries := 0
	for i, port := range ports[:2] {
		var o string
		var err error
		until(120*time.Second, func() bool {
			tries++
			o, err = mqtt(pub, port, append(cert(p, "alice"), "-t", "x/ready", "-m", "ready", "-q", "1")...)
			return err == nil
		}, func() string {
			return fmt.Sprintf("node %d does not take MQTT clients: %v %s\n%s", i+1, err, o, rabbitLog(dir, i+1))
		})
	}
	t.Logf("MQTT on both nodes in %s (%d tries)", time.Since(start).Round(time.Second), tries)
	// A QoS 1 message from node 1 to a subscriber on node 2.
	subCmd, got := testutil.Start(t, dir, "stdbuf", append([]string{"-oL", sub, "-h", "localhost", "-p", fmt.Sprint(ports[1]), "-t", "x/#", "-q", "1", "-v", "-d"}, cert(p, "alice")...)...)
	_ = subCmd
	waitFor(t, got, "received SUBACK", "subscriber on node 2")
	if o, err := mqtt(pub, ports[0], append(cert(p, "alice"), "-t", "x/cross", "-m", "from-node-1", "-q", "1")...); err != nil {
		t.Fatalf("publish on node 1: %v %s\n%s", err, o, rabbitLog(dir, 1))
	}
	waitFor(t, got, "x/cross from-node-1", "the message across the cluster")
	// mqttctl check on both nodes, and --cross.
	checkArgs := append([]string{"check", "--cross", fmt.Sprintf("mqtts://localhost:%d", ports[0]), fmt.Sprintf("mqtts://localhost:%d", ports[1]), "--topic", "x/check"}, cert(p, "alice")...)
	if code, o, e := runCLI(t, "", checkArgs...); code != 0 || strings.Count(o, "OK: published on") != 2 {
		t.Errorf("check --cross: exit %d\n%s%s", code, o, e)
	}
	// A topic with '.' is the routing key of the topic with '/': it
	// arrives as x/dot (what the translation's soundness test assumes).
	if o, err := mqtt(pub, ports[0], append(cert(p, "alice"), "-t", "x.dot", "-m", "dotted", "-q", "1")...); err != nil {
		t.Fatalf("publish x.dot on node 1: %v %s", err, o)
	}
	waitFor(t, got, "x/dot dotted", "x.dot delivered as x/dot")
	// Refused on both nodes.
	for _, port := range ports[:2] {
		for _, tc := range []struct {
			name  string
			args  []string
			topic string
		}{
			{"no certificate", []string{"--cafile", filepath.Join(p, "ca.crt")}, "x/refused"},
			{"another CA's certificate", cert(filepath.Join(dir, "other"), "eve"), "x/refused"},
			{"a revoked certificate", cert(p, "bob"), "x/refused"},
			{"credentials beside the certificate", append(cert(p, "alice"), "-u", "mqttctl-default-unused", "-P", "x"), "x/refused"},
			{"a topic the ACL does not grant", cert(p, "alice"), "y/z"},
			// issue 17: a client id was a regular expression in the
			// permission; here it is only a client id.
			{"client id '.*' writing another device's topic", append(cert(p, "alice"), "-i", ".*"), "devices/victim/cmd"},
			{"client id 'x|.*' writing another device's topic", append(cert(p, "alice"), "-i", "x|.*"), "devices/victim/cmd"},
			{"client id 'x|.*' writing any topic", append(cert(p, "alice"), "-i", "x|.*"), "y/z"},
			{"the topic acme.corp's grant would have reached", cert(p, "alice"), "tenants/acme/corp/x"},
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
		// 'pattern readwrite devices/%u/#' gives alice devices/alice/#.
		if o, err := mqtt(pub, port, append(cert(p, "alice"), "-t", "devices/alice/x", "-m", "ok", "-q", "1")...); err != nil {
			t.Errorf("port %d, devices/alice/x under 'pattern readwrite devices/%%u/#': %v %s", port, err, o)
		}
		// The same client ids may publish where alice may: what refused
		// them above was the topic.
		for _, id := range []string{".*", "x|.*"} {
			if o, err := mqtt(pub, port, append(cert(p, "alice"), "-i", id, "-t", "devices/alice/cmd", "-m", "ok", "-q", "1")...); err != nil {
				t.Errorf("port %d, client id %q on devices/alice/cmd: %v %s", port, id, err, o)
			}
		}
	}
}

// rabbitLog is what node i logged about clustering, virtual hosts and
// definitions, and the end of its log, for a failure message.
func rabbitLog(dir string, i int) string {
	files, _ := filepath.Glob(filepath.Join(dir, fmt.Sprint("log", i), "*.log"))
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
