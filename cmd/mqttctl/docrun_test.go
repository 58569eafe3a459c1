package main

// The documentation runner: it runs the README's shell blocks (and the
// --help examples) as a newcomer would paste them, so that the README can
// never drift from the tool (issue 22). The rules, also written in
// CONTRIBUTING.md:
//
//   - Each `## ` section of README.md runs in a fresh empty directory; its
//     ```sh blocks run in order, one command at a time (a line ending in `\`
//     continues on the next), with bash -o pipefail and bin/mqttctl first on
//     PATH. Every command must exit 0, except:
//   - `# fails: "TEXT"`: the command must fail and print TEXT.
//   - `# prints: "TEXT"`: the command must succeed and print TEXT.
//   - A command that runs a server in the foreground (`make run`,
//     `mqttctl up`, `mqttctl serve`, `mqttctl enroll serve`,
//     `mosquitto -c`) runs in the background until the section ends; the
//     runner waits until it says it listens. A command ending in `&` runs in
//     the background too, and must exit 0 by the end of the section.
//   - Host names and ports: every `NAME.example.com` becomes `localhost`,
//     `0.0.0.0` becomes `127.0.0.1`, and each port a command names
//     (`HOST:PORT`, `-p PORT`) becomes a free port: one per distinct host and
//     port, where `localhost`, `127.0.0.1` and `0.0.0.0` are the section's
//     one `*.example.com` host with that port if it has one (two RabbitMQ
//     nodes keep two ports; a broker and the name clients dial share one).
//   - `make test` is what runs this test: it is not run again. `make run`
//     runs in the repository with RUNDIR set to the section's directory.
//   - Run as root, each command sees directories of the section's own as
//     /var/lib/mosquitto, /var/lib/rabbitmq and /var/log/rabbitmq (a private
//     mount namespace), so brokers keep their state in the section, not on
//     the machine; the section's directory may be entered by other accounts
//     (0711), as a broker that switches to its own user needs.
//   - A RabbitMQ node (`rabbitmq-server`) is a server too; it is ready when
//     it says "completed with N plugins". `mqttctl serve --print-config`
//     prints and exits: it is not a server.
//   - A command whose comment says `on the terminal` (`passwd add passwd
//     alice   # asks twice on the terminal`) gets a terminal as its standard
//     input, on which the runner types $PW and Enter at each question (three
//     lines are typed ahead; a password prompt reads one line).
//   - Only where a test calls isolateNetwork (the --help examples of serve
//     and up), as root: each command runs in a network namespace of its
//     own, so that a server on a port the example does not name (up's
//     default 127.0.0.1:8883) never takes the machine's.
//   - Only where a test sets sysPaths (the --help examples, see
//     help_examples_test.go): an absolute path under /etc/ or /srv/ becomes
//     the same path relative to the command's directory (`etc/...`,
//     `srv/...`), so that examples that name the machine's files use the
//     fixture's.

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// docLine is one command of a documentation block.
type docLine struct {
	src    string // README.md:LINE
	cmd    string // as written, continuations joined
	fails  string // from `# fails: "TEXT"`
	prints string // from `# prints: "TEXT"`
}

type docSection struct {
	title string
	lines []docLine
}

var (
	failsComment  = regexp.MustCompile(`#\s*fails:\s*"([^"]+)"`)
	printsComment = regexp.MustCompile(`#\s*prints:\s*"([^"]+)"`)
)

// readmeSections parses the README's `## ` sections and their ```sh
// blocks.
func readmeSections(t *testing.T) []docSection {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var secs []docSection
	in := false
	var cont *docLine
	for i, l := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.HasPrefix(l, "## "):
			secs = append(secs, docSection{title: strings.TrimPrefix(l, "## ")})
		case !in && strings.HasPrefix(l, "```sh"):
			in = true
		case in && strings.HasPrefix(l, "```"):
			in = false
		case in && cont != nil:
			cont.cmd += "\n" + l
			if !strings.HasSuffix(l, "\\") {
				cont = nil
			}
		case in && strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#"):
			if len(secs) == 0 {
				t.Fatalf("README.md:%d: a shell block before the first section", i+1)
			}
			s := &secs[len(secs)-1]
			s.lines = append(s.lines, docLine{src: fmt.Sprintf("README.md:%d", i+1), cmd: l})
			if strings.HasSuffix(l, "\\") {
				cont = &s.lines[len(s.lines)-1]
			}
		}
	}
	for si := range secs {
		for li := range secs[si].lines {
			l := &secs[si].lines[li]
			if m := failsComment.FindStringSubmatch(l.cmd); m != nil {
				l.fails = m[1]
			}
			if m := printsComment.FindStringSubmatch(l.cmd); m != nil {
				l.prints = m[1]
			}
		}
	}
	return secs
}

// readmeSection is the section called title; it must have commands.
func readmeSection(t *testing.T, title string) docSection {
	t.Helper()
	for _, s := range readmeSections(t) {
		if s.title == title {
			if len(s.lines) == 0 {
				t.Fatalf("README section %q has no commands", title)
			}
			return s
		}
	}
	t.Fatalf("README.md has no section %q", title)
	return docSection{}
}

var (
	hostPort    = regexp.MustCompile(`\b([a-z0-9-]+\.example\.com|localhost|127\.0\.0\.1|0\.0\.0\.0):(\d{2,5})\b`)
	dashP       = regexp.MustCompile(`(\s-p\s+)(\d{2,5})\b`)
	exampleHost = regexp.MustCompile(`\b[a-z0-9-]+\.example\.com\b`)
	sysPath     = regexp.MustCompile(`(^|[\s='"(])/(etc|srv)/`)
	onTerminal  = regexp.MustCompile(`#.*\bon the terminal\b`)
	printConfig = regexp.MustCompile(`\s--print-config\b`)
	serverCmd   = regexp.MustCompile(`^(?:[A-Z_]+=\S+\s+)*(?:make run|mqttctl (?:up|serve|enroll serve)|mosquitto\s+-c|rabbitmq-server)(?:\s|$)`)
	// What a server prints once it listens.
	serverReady = regexp.MustCompile(`\blistening\b|broker running on|mosquitto version \S+ running|completed with \d+ plugins`)
)

// docRunner runs the commands of one section in one directory.
type docRunner struct {
	t     *testing.T
	dir   string
	env   []string
	ports map[string]int // "HOST:PORT" or "local:PORT" → free port
	bg    []*docProc
	// binds are the section's own directories mounted over the machine's
	// (root only): pairs of source and target.
	binds []string
	// sysPaths: /etc/... and /srv/... become etc/... and srv/... (the
	// --help examples' rule).
	sysPaths bool
	// netns: each command runs in a network namespace of its own (root
	// only, with binds; set by isolateNetwork).
	netns bool
}

// isolateNetwork makes each command run in a network namespace of its own,
// with only a loopback interface, when root (and ip(8) is there): servers
// that listen on a port nobody rewrote (mqttctl up's default 8883) never
// meet the machine's. It reports whether it did.
func (r *docRunner) isolateNetwork() bool {
	if len(r.binds) == 0 {
		return false
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return false
	}
	r.netns = true
	return true
}

type docProc struct {
	line   docLine
	cmd    *exec.Cmd
	out    *testutil.SyncBuffer
	done   chan struct{}
	server bool
}

// newDocRunner prepares a runner for the commands lines, in dir.
func newDocRunner(t *testing.T, dir string, lines []docLine) *docRunner {
	r := &docRunner{t: t, dir: dir, ports: map[string]int{}}
	r.env = append(os.Environ(), "PATH="+filepath.Dir(mqttctlBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	keys := map[string]bool{}
	for _, l := range lines {
		for _, m := range hostPort.FindAllStringSubmatch(l.cmd, -1) {
			keys[portKey(m[1], m[2])] = true
		}
		for _, m := range dashP.FindAllStringSubmatch(l.cmd, -1) {
			keys[portKey("localhost", m[2])] = true
		}
	}
	var sorted []string
	for k := range keys {
		sorted = append(sorted, k)
	}
	sort.Strings(sorted)
	free := testutil.FreePorts(t, len(sorted)+1)
	byPort := map[string][]string{} // port → example.com keys
	for i, k := range sorted {
		r.ports[k] = free[i]
		if h, p, _ := strings.Cut(k, ":"); h != "local" {
			byPort[p] = append(byPort[p], k)
		}
	}
	for _, k := range sorted {
		if h, p, _ := strings.Cut(k, ":"); h == "local" && len(byPort[p]) == 1 {
			r.ports[k] = r.ports[byPort[p][0]]
		}
	}
	if os.Geteuid() == 0 {
		for _, d := range []string{filepath.Dir(dir), dir} {
			if err := os.Chmod(d, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		for _, target := range []string{"/var/lib/mosquitto", "/var/lib/rabbitmq", "/var/log/rabbitmq"} {
			st, err := os.Stat(target)
			if err != nil {
				continue
			}
			src := filepath.Join(dir, ".mnt"+strings.ReplaceAll(target, "/", "-"))
			os.Mkdir(src, 0o755)
			sys := st.Sys().(*syscall.Stat_t)
			if err := os.Chown(src, int(sys.Uid), int(sys.Gid)); err != nil {
				t.Fatal(err)
			}
			r.binds = append(r.binds, src, target)
		}
	}
	t.Cleanup(r.stop)
	return r
}

func portKey(host, port string) string {
	if exampleHost.MatchString(host) {
		return host + ":" + port
	}
	return "local:" + port
}

// rewrite applies the host and port rule to a command.
func (r *docRunner) rewrite(cmd string) string {
	cmd = hostPort.ReplaceAllStringFunc(cmd, func(s string) string {
		m := hostPort.FindStringSubmatch(s)
		host := m[1]
		if exampleHost.MatchString(host) {
			host = "localhost"
		} else if host == "0.0.0.0" {
			host = "127.0.0.1"
		}
		return fmt.Sprintf("%s:%d", host, r.ports[portKey(m[1], m[2])])
	})
	cmd = dashP.ReplaceAllStringFunc(cmd, func(s string) string {
		m := dashP.FindStringSubmatch(s)
		return fmt.Sprintf("%s%d", m[1], r.ports[portKey("localhost", m[2])])
	})
	cmd = exampleHost.ReplaceAllString(cmd, "localhost")
	if r.sysPaths {
		cmd = sysPath.ReplaceAllString(cmd, "$1$2/")
	}
	return cmd
}

// command makes the process for a rewritten command line.
func (r *docRunner) command(line string) *exec.Cmd {
	var cmd *exec.Cmd
	if len(r.binds) > 0 {
		// sh -c SCRIPT LINE SRC TARGET...: mount each pair, then run LINE.
		script := `line=$0; while [ $# -gt 0 ]; do mount --bind "$1" "$2" || exit 125; shift 2; done; exec bash -o pipefail -c "$line"`
		flags := []string{"-m"}
		if r.netns {
			flags = []string{"-m", "-n"}
			script = `ip link set lo up || exit 125; ` + script
		}
		cmd = exec.Command("unshare", append(append(flags, "sh", "-c", script, line), r.binds...)...)
	} else {
		cmd = exec.Command("bash", "-o", "pipefail", "-c", line)
	}
	cmd.Dir, cmd.Env = r.dir, r.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// run runs one documented command by the rules above.
func (r *docRunner) run(l docLine) {
	t := r.t
	t.Helper()
	line := r.rewrite(l.cmd)
	trimmed := strings.TrimSpace(stripComment(line))
	switch {
	case trimmed == "make test":
		t.Logf("%s: `make test` is what runs this test: not run again", l.src)
		return
	case serverCmd.MatchString(trimmed) && !printConfig.MatchString(trimmed):
		r.start(l, line, true)
		return
	case strings.HasSuffix(trimmed, "&"):
		r.start(l, strings.TrimSuffix(trimmed, "&"), false)
		return
	}
	cmd := r.command(line)
	var out []byte
	var err error
	if onTerminal.MatchString(l.cmd) {
		out, err = r.typeOnTerminal(cmd)
	} else {
		out, err = cmd.CombinedOutput()
	}
	switch {
	case l.fails != "":
		if err == nil || !strings.Contains(string(out), l.fails) {
			t.Errorf("%s should fail with %q: %s\nerr=%v\n%s", l.src, l.fails, line, err, out)
		}
	case err != nil:
		t.Errorf("%s fails: %s\n%v\n%s", l.src, line, err, out)
	case l.prints != "" && !strings.Contains(string(out), l.prints):
		t.Errorf("%s should print %q: %s\n%s", l.src, l.prints, line, out)
	}
}

// typeOnTerminal runs cmd with a terminal as its standard input and types
// $PW and Enter on it (three times: one line per question).
func (r *docRunner) typeOnTerminal(cmd *exec.Cmd) ([]byte, error) {
	ptm, pts, err := openPTY()
	if err != nil {
		return nil, fmt.Errorf("a terminal for the command: %w", err)
	}
	defer ptm.Close()
	var pw string
	for _, kv := range cmd.Env {
		if v, ok := strings.CutPrefix(kv, "PW="); ok {
			pw = v
		}
	}
	var out bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = pts, &out, &out
	err = cmd.Start()
	pts.Close()
	if err != nil {
		return nil, err
	}
	// The terminal echoes what is typed before a prompt turns echo off:
	// read it away (the read ends with EIO once the command has exited).
	go io.Copy(io.Discard, ptm)
	_, werr := ptm.Write([]byte(strings.Repeat(pw+"\n", 3)))
	if err = cmd.Wait(); err == nil && werr != nil {
		err = fmt.Errorf("type on the terminal: %w", werr)
	}
	return out.Bytes(), err
}

// stripComment drops a trailing shell comment (outside quotes).
func stripComment(line string) string {
	var q byte
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case q != 0 && c == q:
			q = 0
		case q == 0 && (c == '\'' || c == '"'):
			q = c
		case q == 0 && c == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t'):
			return line[:i]
		}
	}
	return line
}

// start runs a command in the background; a server must say it listens.
func (r *docRunner) start(l docLine, line string, server bool) {
	t := r.t
	t.Helper()
	var cmd *exec.Cmd
	if strings.HasPrefix(strings.TrimSpace(line), "make run") {
		// make run in the repository, its data in the section's directory.
		cmd = exec.Command("bash", "-c", line)
		cmd.Dir = "../.."
		cmd.Env = append(r.env[:len(r.env):len(r.env)], "RUNDIR="+filepath.Join(r.dir, "mqttctl-data"))
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	} else {
		cmd = r.command(line)
	}
	p := &docProc{line: l, cmd: cmd, out: &testutil.SyncBuffer{}, done: make(chan struct{}), server: server}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", l.src, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	r.bg = append(r.bg, p)
	if !server {
		return
	}
	deadline := time.Now().Add(60 * time.Second)
	for !serverReady.MatchString(p.out.String()) {
		select {
		case <-p.done:
			t.Fatalf("%s: the server stopped: %s\n%s", l.src, line, p.out.String())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server did not say it listens within 60 s: %s\n%s", l.src, line, p.out.String())
		}
	}
	// It logs each listener as it opens it: give the rest a moment.
	time.Sleep(300 * time.Millisecond)
}

// finish waits for the background commands that are not servers (each
// must exit 0), then stops the servers.
func (r *docRunner) finish() {
	t := r.t
	for _, p := range r.bg {
		if p.server {
			continue
		}
		select {
		case <-p.done:
		case <-time.After(60 * time.Second):
			t.Errorf("%s: still running after 60 s: %s\n%s", p.line.src, p.line.cmd, p.out.String())
			continue
		}
		if !p.cmd.ProcessState.Success() {
			t.Errorf("%s fails: %s\n%v\n%s", p.line.src, p.line.cmd, p.cmd.ProcessState, p.out.String())
		}
	}
	r.stop()
}

// stop stops every background process by its process group.
func (r *docRunner) stop() {
	for _, p := range r.bg {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
			<-p.done
		}
	}
	r.bg = nil
}

// logServers prints what the section's servers logged (after a failure).
func (r *docRunner) logServers() {
	for _, p := range r.bg {
		sc := bufio.NewScanner(strings.NewReader(p.out.String()))
		var b strings.Builder
		for n := 0; sc.Scan() && n < 200; n++ {
			b.WriteString(sc.Text() + "\n")
		}
		r.t.Logf("%s (%s) logged:\n%s", p.line.src, p.line.cmd, b.String())
	}
}

// runSection runs every command of a section in a fresh directory and
// returns the runner (its servers are still running until the test ends).
func runSection(t *testing.T, s docSection) *docRunner {
	r := newDocRunner(t, t.TempDir(), s.lines)
	for _, l := range s.lines {
		r.run(l)
	}
	if t.Failed() {
		r.logServers()
	}
	return r
}
