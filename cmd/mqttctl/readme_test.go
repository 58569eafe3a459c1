package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// readmeElsewhere are the README sections another test runs with the
// runner, because they need a peer and more checks after the commands.
var readmeElsewhere = map[string]string{
	"Outgrowing one broker": "TestRabbitMQCluster",
}

// TestREADME runs every shell block of the README, section by section, as
// written (the rules are in docrun_test.go and CONTRIBUTING.md).
func TestREADME(t *testing.T) {
	for _, tool := range []string{"openssl", "keytool", "mosquitto", "mosquitto_pub", "mosquitto_sub", "curl"} {
		testutil.RequireBinary(t, tool)
	}
	secs := readmeSections(t)
	ran := 0
	for _, s := range secs {
		if len(s.lines) == 0 {
			continue
		}
		if by := readmeElsewhere[s.title]; by != "" {
			t.Logf("section %q: run by %s", s.title, by)
			continue
		}
		ran++
		t.Run(s.title, func(t *testing.T) {
			r := runSection(t, s)
			defer r.finish()
			if s.title == "Day 2" {
				checkPassFiles(t, r.dir)
			}
		})
	}
	if ran < 5 {
		t.Fatalf("only %d README sections with commands: is the parser broken?", ran)
	}
}

// checkPassFiles: password files are secrets: only their owner may read
// them (issue 22: 'openssl rand ... > x.pass' left them 0644).
func checkPassFiles(t *testing.T, dir string) {
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
