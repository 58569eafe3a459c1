package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckCrossNeedsOneCluster: two brokers that are not a cluster fail
// check --cross (each works alone).
func TestCheckCrossNeedsOneCluster(t *testing.T) {
	dir, p := newServePKI(t, "alice")
	a := startServe(t, dir, 0, "--mtls", "--pki", p)
	b := startServe(t, dir, 0, "--mtls", "--pki", p, "--data-dir", filepath.Join(dir, "b"))
	args := []string{"check", "--cross", fmt.Sprintf("mqtts://localhost:%d", a.port), fmt.Sprintf("mqtts://localhost:%d", b.port),
		"--cafile", filepath.Join(p, "ca.crt"), "--cert", filepath.Join(p, "clients", "alice.crt"), "--key", filepath.Join(p, "clients", "alice.key"), "--timeout", "2s"}
	code, out, e := runCLI(t, "", args...)
	if code != 1 || strings.Count(out, "OK: everything works") != 2 || !strings.Contains(out, "never received") {
		t.Fatalf("check --cross on two separate brokers: exit %d\n%s%s", code, out, e)
	}
	if code, _, e := runCLI(t, "", "check", "--cross", fmt.Sprintf("mqtts://localhost:%d", a.port)); code != 1 || !strings.Contains(e, "two or more") {
		t.Errorf("--cross with one URL: %d %s", code, e)
	}
}
