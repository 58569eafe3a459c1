package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs the root command with captured output.
func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	s := &streams{In: strings.NewReader(stdin), Out: &out, Err: &errb, terminal: func() bool { return false }}
	code = run(args, s)
	return code, out.String(), errb.String()
}

// TestHelpHasExamples: the root and every command that runs (not a group
// such as pki, which lists its subcommands) have an Example, walked from
// newRootCmd as TestHelpExamples walks it.
func TestHelpHasExamples(t *testing.T) {
	cmds := helpCommands()
	for _, c := range cmds {
		// A group (pki, passwd, ...) only lists its subcommands.
		if c.HasParent() && (!c.Runnable() || c.HasSubCommands()) {
			continue
		}
		if strings.TrimSpace(c.Example) == "" {
			t.Errorf("%s has no Example: add one (TestHelpExamples runs it)", c.CommandPath())
			continue
		}
		args := append(strings.Fields(strings.TrimPrefix(c.CommandPath(), "mqttctl")), "--help")
		code, out, _ := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(out, "Examples:") {
			t.Errorf("%v: exit %d, no Examples section:\n%s", args, code, out)
		}
	}
	if len(cmds) < 20 {
		t.Fatalf("only %d commands in the tree: is the walk broken?", len(cmds))
	}
}

func TestVersion(t *testing.T) {
	code, out, _ := runCLI(t, "", "version")
	if code != 0 || !strings.HasPrefix(out, "mqttctl ") {
		t.Fatalf("version: %d %q", code, out)
	}
}

// cliStep is one command of a table-driven CLI test and what it must give.
type cliStep struct {
	name   string
	stdin  string
	args   []string
	code   int
	out    []string // each must be in standard output
	errOut []string // each must be in standard error
	absent []string // none may be in either
	check  func(t *testing.T, stdout, stderr string)
}

// runSteps runs steps in order, each as a subtest, so that one failure
// does not hide the others.
func runSteps(t *testing.T, steps []cliStep) {
	t.Helper()
	for _, st := range steps {
		t.Run(strings.ReplaceAll(st.name, " ", "_"), func(t *testing.T) {
			code, stdout, stderr := runCLI(t, st.stdin, st.args...)
			if code != st.code {
				t.Errorf("%v: exit %d, want %d\n%s%s", st.args, code, st.code, stdout, stderr)
			}
			for _, w := range st.out {
				if !strings.Contains(stdout, w) {
					t.Errorf("%v: stdout lacks %q:\n%s", st.args, w, stdout)
				}
			}
			for _, w := range st.errOut {
				if !strings.Contains(stderr, w) {
					t.Errorf("%v: stderr lacks %q:\n%s", st.args, w, stderr)
				}
			}
			for _, w := range st.absent {
				if strings.Contains(stdout+stderr, w) {
					t.Errorf("%v: output holds %q", st.args, w)
				}
			}
			if st.check != nil {
				st.check(t, stdout, stderr)
			}
		})
	}
}

// newPKIDir makes a pki directory with `pki init` and the given extra
// arguments; it returns its path.
func newPKIDir(t *testing.T, args ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "pki")
	if code, _, e := runCLI(t, "", append([]string{"pki", "init", "--dir", dir}, args...)...); code != 0 {
		t.Fatal(e)
	}
	return dir
}

var mqttctlBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mqttctl-bin")
	if err != nil {
		panic(err)
	}
	mqttctlBin = filepath.Join(dir, "mqttctl")
	if out, err := exec.Command("go", "build", "-o", mqttctlBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build mqttctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// TestWrongArgumentCount: a missing or extra argument is named, with the
// usage line (issue 22: cobra's bare "accepts 2 arg(s), received 1").
func TestWrongArgumentCount(t *testing.T) {
	runSteps(t, []cliStep{
		{name: "passwd add without USER", args: []string{"passwd", "add", "passwd"}, code: 1,
			errOut: []string{"missing USER; usage: mqttctl passwd add FILE USER"}, absent: []string{"arg(s)"}},
		{name: "passwd add without both", args: []string{"passwd", "add"}, code: 1,
			errOut: []string{"missing FILE and USER; usage: mqttctl passwd add FILE USER"}},
		{name: "passwd add with one too many", args: []string{"passwd", "add", "passwd", "alice", "pw"}, code: 1,
			errOut: []string{`"pw" is one too many; usage: mqttctl passwd add FILE USER`}},
		{name: "pki issue without NAME", args: []string{"pki", "issue", "client"}, code: 1,
			errOut: []string{"missing NAME; usage: mqttctl pki issue server|client|bridge|bootstrap|claim NAME"}},
		{name: "check without URL", args: []string{"check"}, code: 1,
			errOut: []string{"missing URL; usage: mqttctl check URL [URL...]"}},
		{name: "version with an argument", args: []string{"version", "x"}, code: 1,
			errOut: []string{`mqttctl version takes no arguments, got "x"`}},
	})
}
