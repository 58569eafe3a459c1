package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// readmeCommands returns the command lines of the ```sh blocks in the
// README section that starts with heading.
func readmeCommands(t *testing.T, heading string) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(data)
	i := strings.Index(s, "\n"+heading+"\n")
	if i < 0 {
		t.Fatalf("README.md has no %q section", heading)
	}
	s = s[i+len(heading)+2:]
	if j := strings.Index(s, "\n## "); j >= 0 {
		s = s[:j]
	}
	var lines []string
	in := false
	for _, l := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(l, "```sh"):
			in = true
		case strings.HasPrefix(l, "```"):
			in = false
		case in && strings.TrimSpace(l) != "" && !strings.HasPrefix(strings.TrimSpace(l), "#"):
			lines = append(lines, l)
		}
	}
	return lines
}

var failsComment = regexp.MustCompile(`#\s*fails:\s*"([^"]+)"`)

// TestREADMEDay2 runs the README's day-2 blocks as a newcomer would paste
// them: every line must succeed, except a line marked `# fails: "TEXT"`,
// which must fail and print TEXT.
func TestREADMEDay2(t *testing.T) {
	for _, tool := range []string{"openssl", "keytool"} {
		testutil.RequireBinary(t, tool)
	}
	lines := readmeCommands(t, "## Day 2")
	if len(lines) < 10 {
		t.Fatalf("only %d commands in the README's day 2 section", len(lines))
	}
	dir := t.TempDir()
	env := append(os.Environ(), "PATH="+filepath.Dir(mqttctlBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, l := range lines {
		cmd := exec.Command("bash", "-c", l)
		cmd.Dir, cmd.Env = dir, env
		out, err := cmd.CombinedOutput()
		if m := failsComment.FindStringSubmatch(l); m != nil {
			if err == nil || !strings.Contains(string(out), m[1]) {
				t.Errorf("README line should fail with %q: %s\nerr=%v\n%s", m[1], l, err, out)
			}
			continue
		}
		if err != nil {
			t.Errorf("README line fails: %s\n%v\n%s", l, err, out)
		}
	}
	// Password files are secrets: only their owner may read them (issue
	// 22: 'openssl rand ... > x.pass' left them 0644).
	passFiles, _ := filepath.Glob(filepath.Join(dir, "*.pass"))
	if len(passFiles) == 0 {
		t.Error("the day 2 section makes no .pass file any more: update this check")
	}
	for _, f := range passFiles {
		fi, err := os.Stat(f)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s: mode %v, want no group or other access (umask 077 or install -m 600)", filepath.Base(f), fi.Mode().Perm())
		}
	}
}
