package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// readmeSection returns the lines of the ```sh blocks of README.md's
// section titled title.
func readmeSection(t *testing.T, title string) []string {
	t.Helper()
	data, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, sec, ok := strings.Cut(string(data), "\n## "+title+"\n")
	if !ok {
		t.Fatalf("README.md has no section %q", title)
	}
	sec, _, _ = strings.Cut(sec, "\n## ")
	var lines []string
	in := false
	for _, l := range strings.Split(sec, "\n") {
		switch {
		case l == "```sh":
			in = true
		case l == "```":
			in = false
		case in && strings.TrimSpace(l) != "":
			lines = append(lines, l)
		}
	}
	return lines
}

var (
	exampleHost = regexp.MustCompile(`\b[a-z0-9-]+\.example\.com\b`)
	portNumber  = regexp.MustCompile(`(:|-p )(\d{4,5})\b`)
	failsMark   = regexp.MustCompile(`\s*# fails: "([^"]*)"\s*$`)
)

// TestREADMEFleets runs README.md's "Fleets" commands as written, line by
// line, each in its own bash, in a fresh directory, as the README runner
// does: host names NAME.example.com become localhost, each port number a
// free port, a server line (mqttctl enroll serve, mqttctl serve) runs in the
// background until its port listens, and a line marked # fails: "TEXT"
// must fail printing TEXT.
func TestREADMEFleets(t *testing.T) {
	for _, b := range []string{"openssl", "curl", "mosquitto_pub", "base64"} {
		testutil.RequireBinary(t, b)
	}
	lines := readmeSection(t, "Fleets")
	if len(lines) < 10 {
		t.Fatalf("the Fleets section has %d command lines", len(lines))
	}
	dir := testutil.ReachableDir(t)
	t.Setenv("PATH", filepath.Dir(mqttctlBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	ports := map[string]int{}
	var listening []string // ports a config line names, for the server line after it
	for i, line := range lines {
		want := ""
		fails := false
		if m := failsMark.FindStringSubmatch(line); m != nil {
			want, fails = m[1], true
			line = line[:len(line)-len(m[0])]
		}
		line = exampleHost.ReplaceAllString(line, "localhost")
		var own []string
		line = portNumber.ReplaceAllStringFunc(line, func(s string) string {
			m := portNumber.FindStringSubmatch(s)
			if ports[m[2]] == 0 {
				ports[m[2]] = testutil.FreePort(t)
			}
			own = append(own, strconv.Itoa(ports[m[2]]))
			return m[1] + strconv.Itoa(ports[m[2]])
		})
		if strings.HasPrefix(line, "mqttctl enroll serve") || strings.HasPrefix(line, "mqttctl serve") {
			_, log := testutil.Start(t, dir, "bash", "-c", "exec "+line)
			wait := own
			if len(wait) == 0 {
				wait, listening = listening, nil
			}
			for _, p := range wait {
				testutil.WaitPort(t, "127.0.0.1:"+p, 10*time.Second)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("log of line %d (%s):\n%s", i+1, line, log.String())
				}
			})
			continue
		}
		if strings.Contains(line, "--listen") {
			listening = append(listening, own...)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, "bash", "-c", line)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		cancel()
		switch {
		case fails && err == nil:
			t.Fatalf("line %d should fail but did not: %s\n%s", i+1, line, out)
		case fails && !strings.Contains(string(out), want):
			t.Fatalf("line %d failed without %q: %s\n%s", i+1, want, line, out)
		case !fails && err != nil:
			t.Fatalf("line %d: %v: %s\n%s", i+1, err, line, out)
		}
	}
	fmt.Fprintf(os.Stderr, "README Fleets: %d lines ran\n", len(lines))
}
