package main

// TestHelpExamples runs every example of every command's --help, as
// written, so that --help can never drift from the tool (issue 22). The
// rules, also written in CONTRIBUTING.md:
//
//   - The examples are the cobra Example field of every command of the tree
//     from newRootCmd (hidden commands, `help` and `completion` excluded).
//     Comment lines are skipped, a line ending in `\` continues on the next;
//     each command runs with the documentation runner (docrun_test.go), so
//     its rules hold: the host and port rule, `# fails: "TEXT"`,
//     `# prints: "TEXT"`, `on the terminal`, a private /var/lib/mosquitto as
//     root. Every example must exit 0 unless marked `# fails:`.
//   - Path rule (sysPaths): an absolute path under /etc/ or /srv/ is the same
//     path in the command's directory (`/etc/mqttctl/pki` → `etc/mqttctl/pki`).
//   - One fixture (helpFixture below, itself run by the runner with these
//     rules) is prepared once in a directory; each command's examples then
//     run in order in a fresh copy of it (cp -a), so that commands do not
//     disturb each other. $PW is alice's password, in every environment.
//   - The fixture's brokers (helpFixtureServers) listen on the ports the
//     examples name: `localhost:8883` mutual TLS (demo, alice, sensor-07 log
//     in with their certificates) with wss on 8884, `127.0.0.1:1883` plain
//     and anonymous, `broker.example.com:8883` one-way TLS with passwd, and
//     `mqtt1.example.com:8883` and `mqtt2.example.com:8883` two mutual-TLS
//     brokers joined by a bridge (`topic # both`), so that a message
//     crosses from each to the other as in a cluster (a live two-node
//     RabbitMQ cluster runs `check --cross` in TestRabbitMQCluster, too slow
//     for here). And `mqtt.example.com:8883` is a real mosquitto (mutual
//     TLS, /etc/mosquitto/broker.conf) whose pid file is /srv/run/mosquitto.pid
//     in every copy, for `reload mosquitto`. A command's HOST:PORT that the fixture names gets the
//     fixture's free port; any other gets one of its own.
//   - Commands whose examples start a server (serve, up) run first, before
//     the fixture's brokers start (`serve -c /etc/mosquitto/mosquitto.conf`
//     runs the fixture's own config, on its ports), and each server an
//     example starts is stopped before the next example: a command's
//     examples are alternatives, not a sequence of brokers. As root they run
//     in network namespaces of their own (the runner's isolateNetwork), so
//     that `mqttctl up` without --listen takes 127.0.0.1:8883 and 8884 as
//     written without meeting the machine's; not root, those ports must be
//     free.
//   - The bench commands, which measure for a fixed time, run alongside the
//     other commands (each in its own copy), to keep the test near 20 s.
//   - Every command that runs (not a group such as `pki`, which lists its
//     subcommands) has an Example: TestHelpHasExamples.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// helpFixture makes the directory every command's examples start from.
const helpFixture = `
# a CA, a broker certificate (localhost, 127.0.0.1, ::1, this host) and clients
mqttctl pki init --client sensor-07 --client demo --client alice
# a certificate that renew replaced (pki revoke --serial)
mqttctl pki renew demo
# a device that made its own key and was signed (pki renew sensor-08)
mqttctl pki csr sensor-08
mqttctl pki sign --csr sensor-08.csr --profile client
# requests waiting to be signed (pki sign)
mqttctl pki csr sensor-09
mqttctl pki csr broker2 --host broker2.example.com
# the pki directory the examples name as /etc/mqttctl/pki
mqttctl pki init --dir /etc/mqttctl/pki --host mqtt.example.com --host 192.0.2.10 --intermediate
# a CA key password (pki init --ca-password-file)
(umask 077; openssl rand -hex 16 > ca.pass)
# alice's password is $PW; users.txt is a plain user:password file
printf '%s\n' "$PW" | mqttctl passwd add passwd alice --password-stdin
printf 'bob:%s\ncarol:%s\n' "$PW" "$PW" > users.txt
mqttctl acl add acl readwrite 'sensors/%u/#' --pattern
# a device with the CA certificate and a one-time token (agent), and
# systemd's unit directory (agent --print-unit)
mkdir -p /etc/mqttctl/device /etc/systemd/system
cp pki/ca.crt /etc/mqttctl/device/
mqttctl enroll token create sensor-21 > /etc/mqttctl/device/sensor-21.token
mqttctl enroll token create sensor-22 > /etc/mqttctl/device/sensor-22.token
# devices made in a batch (enroll token create --batch, pki issue client --batch)
printf 'sensor-101\nsensor-102\n' > devices.csv
# mosquitto's directories and config: mutual TLS on 8883, wss on 8884
mkdir -p /etc/mosquitto/conf.d /etc/mosquitto/certs /srv
# node-exporter's textfile collector directory (pki list -o prometheus)
mkdir -p /srv/textfile
mqttctl config mosquitto --pki pki --mode mtls --listen 0.0.0.0:8883 --websockets 0.0.0.0:8884 --out /etc/mosquitto/mosquitto.conf
# a real mosquitto with a pid file (reload mosquitto): mutual TLS on
# mqtt.example.com:8883; the pid file is in run/, which /srv/run names in
# every copy (a symlink to the fixture's)
mkdir -m 1777 run
ln -s "$PWD/run" /srv/run
mqttctl config mosquitto --pki pki --mode mtls --listen mqtt.example.com:8883 --data-dir '' --out /etc/mosquitto/broker.conf
echo "pid_file $PWD/run/mosquitto.pid" >> /etc/mosquitto/broker.conf
# a local broker that lets anyone in on 127.0.0.1:1883 (as mosquitto 2.0 with no config)
echo 127.0.0.1:1883 | sed 's/^\(.*\):\(.*\)$/listener \2 \1/' > anonymous.conf
echo 'allow_anonymous true' >> anonymous.conf
# mqtt2, bridged to mqtt1 in both directions
mqttctl pki issue bridge mqtt2 --host mqtt2.example.com
mqttctl config mosquitto --pki pki --mode mtls --listen mqtt2.example.com:8883 --data-dir mqtt2-data --out mqtt2.conf \
  --bridge-to mqtt1.example.com:8883 --bridge-name mqtt2 --bridge-topic '# both 1'
`

// helpFixtureServers are the fixture's brokers, started once the commands
// that run servers of their own are done.
const helpFixtureServers = `
mqttctl serve -c /etc/mosquitto/mosquitto.conf
mqttctl serve -c anonymous.conf
mqttctl serve --tls --pki pki --passwd passwd --listen broker.example.com:8883
mqttctl serve --mtls --pki pki --listen mqtt1.example.com:8883
mqttctl serve -c mqtt2.conf
mosquitto -c /etc/mosquitto/broker.conf
mqttctl enroll serve --pki pki --listen ca.example.com:8443
`

// helpFixturePW is $PW.
const helpFixturePW = "correct-horse-7"

// docScript parses commands as the examples are written: blank and comment
// lines skipped, `\` continuations joined, markers read.
func docScript(src, text string) []docLine {
	var lines []docLine
	var cont *docLine
	for _, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case cont != nil:
			cont.cmd += "\n" + l
		case l == "" || strings.HasPrefix(l, "#"):
			continue
		default:
			lines = append(lines, docLine{src: src, cmd: l})
			cont = &lines[len(lines)-1]
		}
		if !strings.HasSuffix(l, "\\") {
			cont = nil
		}
	}
	for i := range lines {
		l := &lines[i]
		l.src = fmt.Sprintf("%s, example %d (%s)", src, i+1, strings.SplitN(l.cmd, "\n", 2)[0])
		if m := failsComment.FindStringSubmatch(l.cmd); m != nil {
			l.fails = m[1]
		}
		if m := printsComment.FindStringSubmatch(l.cmd); m != nil {
			l.prints = m[1]
		}
	}
	return lines
}

// helpCommands are the commands of the tree (hidden ones, help and
// completion excluded), root first.
func helpCommands() []*cobra.Command {
	var all []*cobra.Command
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" || c.Name() == "completion" {
			return
		}
		all = append(all, c)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&streams{In: strings.NewReader(""), Out: new(strings.Builder), Err: new(strings.Builder)}))
	return all
}

// startsServer: one of lines is a server by the runner's rule.
func startsServer(lines []docLine) bool {
	for _, l := range lines {
		if trimmed := strings.TrimSpace(stripComment(l.cmd)); serverCmd.MatchString(trimmed) && !printConfig.MatchString(trimmed) {
			return true
		}
	}
	return false
}

func newHelpRunner(t *testing.T, dir string, lines []docLine) *docRunner {
	r := newDocRunner(t, dir, lines)
	r.sysPaths = true
	r.env = append(r.env, "PW="+helpFixturePW)
	return r
}

func TestHelpExamples(t *testing.T) {
	for _, tool := range []string{"openssl", "keytool", "jq", "mosquitto"} {
		testutil.RequireBinary(t, tool)
	}
	start := time.Now()
	type helpCmd struct {
		path  string
		lines []docLine
		dir   string
	}
	var cmds []helpCmd
	for _, c := range helpCommands() {
		if lines := docScript(c.CommandPath()+" --help", c.Example); len(lines) > 0 {
			cmds = append(cmds, helpCmd{path: c.CommandPath(), lines: lines})
		}
	}
	if len(cmds) < 20 {
		t.Fatalf("only %d commands with examples: is the walk broken?", len(cmds))
	}

	// The fixture, then one copy of it per command.
	// Reachable: the fixture's mosquitto, started as root, drops to the
	// mosquitto user before it reads its files and writes its pid file.
	fixture := filepath.Join(testutil.ReachableDir(t), "fixture")
	if err := os.Mkdir(fixture, 0o755); err != nil {
		t.Fatal(err)
	}
	prep := docScript("fixture", helpFixture)
	servers := docScript("fixture server", helpFixtureServers)
	fr := newHelpRunner(t, fixture, append(prep[:len(prep):len(prep)], servers...))
	for _, l := range prep {
		fr.run(l)
	}
	if t.Failed() {
		t.FailNow()
	}
	copies := t.TempDir()
	for i := range cmds {
		cmds[i].dir = filepath.Join(copies, strings.ReplaceAll(cmds[i].path, " ", "-"))
		if out, err := exec.Command("cp", "-a", fixture, cmds[i].dir).CombinedOutput(); err != nil {
			t.Fatalf("copy the fixture: %v\n%s", err, out)
		}
	}
	t.Logf("fixture ready in %s", time.Since(start).Round(time.Millisecond))

	runCmd := func(c helpCmd, shared bool) {
		t.Run(strings.TrimPrefix(c.path, "mqttctl "), func(t *testing.T) {
			r := newHelpRunner(t, c.dir, c.lines)
			if !shared {
				r.isolateNetwork()
			}
			if shared {
				for k := range r.ports {
					if p, ok := fr.ports[k]; ok {
						r.ports[k] = p
					}
				}
			}
			for _, l := range c.lines {
				n := len(r.bg)
				r.run(l)
				if len(r.bg) > n {
					r.stop()
				}
			}
			r.finish()
		})
	}
	// Commands that start servers, before the fixture's own start.
	for _, c := range cmds {
		if startsServer(c.lines) {
			runCmd(c, false)
		}
	}
	for _, l := range servers {
		fr.run(l)
	}
	if t.Failed() {
		fr.logServers()
		t.FailNow()
	}
	// The bench commands measure for a fixed time: they run alongside the
	// others.
	var wg sync.WaitGroup
	for _, c := range cmds {
		if !startsServer(c.lines) && strings.HasPrefix(c.path, "mqttctl bench ") {
			wg.Go(func() { runCmd(c, true) })
		}
	}
	for _, c := range cmds {
		if !startsServer(c.lines) && !strings.HasPrefix(c.path, "mqttctl bench ") {
			runCmd(c, true)
		}
	}
	wg.Wait()
	fr.finish()
	t.Logf("%d commands' examples in %s", len(cmds), time.Since(start).Round(time.Millisecond))
}
