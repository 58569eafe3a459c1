package main

import (
	"encoding/json"
	"path/filepath"
	"testing"
)

func TestPKIInspect(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "json", args: []string{"pki", "inspect", "-o", "json", filepath.Join(dir, "clients", "alice.crt")}, check: func(t *testing.T, out, _ string) {
			var sums []map[string]any
			if json.Unmarshal([]byte(out), &sums) != nil || len(sums) != 1 || sums[0]["profile"] != "client" {
				t.Errorf("inspect json:\n%s", out)
			}
		}},
		{name: "text", args: []string{"pki", "inspect", filepath.Join(dir, "server.crt")}, out: []string{"localhost"}},
		{name: "a missing file", args: []string{"pki", "inspect", filepath.Join(dir, "nope.crt")}, code: 1, errOut: []string{"nope.crt"}},
	})
}
