package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// opensslAccepts reports whether openssl verify -crl_check accepts a client
// certificate of dir with dir's CRL.
func opensslAccepts(t *testing.T, dir, client string) bool {
	t.Helper()
	openssl := testutil.RequireBinary(t, "openssl")
	out, err := testutil.Run(t, dir, nil, openssl, "verify", "-crl_check", "-CAfile", filepath.Join(dir, "ca.crt"),
		"-CRLfile", filepath.Join(dir, "crl.pem"), filepath.Join(dir, "clients", client+".crt"))
	if err != nil && !strings.Contains(out, "certificate revoked") {
		t.Fatalf("openssl verify %s: %v\n%s", client, err, out)
	}
	return err == nil
}

// TestRevokeKilledBetweenRenames reproduces the fail-open of issue 17 as
// written: a real `mqttctl pki revoke dev1` is held by strace at a rename
// and killed with SIGKILL; the README's cron `pki crl` then runs. At every
// rename, dev1 stays revoked for openssl once it was revoked in crl.pem, and
// the CRL number is never reused.
func TestRevokeKilledBetweenRenames(t *testing.T) {
	strace := testutil.RequireBinary(t, "strace")
	for when := 1; when <= 2; when++ {
		t.Run("rename_"+strconv.Itoa(when), func(t *testing.T) {
			dir := newPKIDir(t, "--client", "dev1", "--client", "dev2", "--host", "localhost")
			crlBefore, _ := os.ReadFile(filepath.Join(dir, "crl.pem"))
			// The renames after the journal: crl.pem, then index.yaml. The
			// one to hold is chosen by its path (-P): strace counts `when=`
			// per thread, and the Go runtime may make the second rename on
			// another thread than the first (a full run then never held).
			target := filepath.Join(dir, "crl.pem")
			if when == 2 {
				target = filepath.Join(dir, "index.yaml")
			}
			cmd := exec.Command(strace, "-f", "-qq", "-o", "/dev/null", "-P", target, "-e", "trace=renameat", "-e", "inject=renameat:delay_enter=30000000:when=1",
				mqttctlBin, "pki", "revoke", "dev1", "--dir", dir, "--reason", "keyCompromise")
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Held at rename number `when`: the journal is in place, and
			// crl.pem is the new one from the second rename on.
			deadline := time.Now().Add(20 * time.Second)
			for {
				crlNow, _ := os.ReadFile(filepath.Join(dir, "crl.pem"))
				_, err := os.Stat(filepath.Join(dir, "journal.json"))
				if err == nil && (when == 1) == bytes.Equal(crlNow, crlBefore) {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					cmd.Wait()
					t.Fatalf("revoke never reached rename %d", when)
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(100 * time.Millisecond)
			// SIGKILL mqttctl itself (killing strace would let it go on).
			kids, _ := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/task/" + strconv.Itoa(cmd.Process.Pid) + "/children")
			for _, f := range strings.Fields(string(kids)) {
				if pid, err := strconv.Atoi(f); err == nil {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			cmd.Process.Kill()
			cmd.Wait()
			if _, err := os.Stat(filepath.Join(dir, "journal.json")); err != nil {
				t.Fatalf("mqttctl was not stopped mid-write (no journal left): %v", err)
			}
			if when == 2 && opensslAccepts(t, dir, "dev1") {
				t.Fatal("the killed revoke's CRL is in place, yet openssl accepts dev1")
			}
			runSteps(t, []cliStep{
				{name: "cron pki crl", args: []string{"pki", "crl", "--dir", dir}, out: []string{"CRL number 3, 1 revoked"}, errOut: []string{"completed a change that was interrupted"}},
				{name: "list", args: []string{"pki", "list", "--dir", dir}, out: []string{"revoked"}},
				{name: "revoke again", args: []string{"pki", "revoke", "dev1", "--dir", dir}, code: 1, errOut: []string{"was revoked on"}},
			})
			if opensslAccepts(t, dir, "dev1") {
				t.Error("after the interrupted revoke and pki crl, openssl accepts dev1")
			}
			if !opensslAccepts(t, dir, "dev2") {
				t.Error("openssl refuses dev2")
			}
		})
	}
}

// TestRevocationSurvivesOldIndexAndRebuild: the states an older mqttctl
// (without the journal) or an operator could leave: a crl.pem that revokes
// dev1 beside an index that says valid, and an index moved away with a
// stray certificate of another CA in clients/. No pki command undoes the
// revocation or reuses the CRL number, and every rebuild says so.
func TestRevocationSurvivesOldIndexAndRebuild(t *testing.T) {
	dir := newPKIDir(t, "--client", "dev1", "--client", "dev2", "--host", "localhost")
	oldIndex, err := os.ReadFile(filepath.Join(dir, "index.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	other := newPKIDir(t, "--client", "dev9", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "revoke", args: []string{"pki", "revoke", "dev1", "--dir", dir, "--reason", "keyCompromise"}, out: []string{"CRL number 2, 1 revoked"}},
	})
	// The index of before the revoke, beside the CRL of after it.
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), oldIndex, 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []cliStep{
		{name: "list says revoked", args: []string{"pki", "list", "--dir", dir}, out: []string{"revoked"}, errOut: []string{"is revoked in crl.pem but index.yaml listed it valid"}},
		{name: "renew refused", args: []string{"pki", "renew", "dev1", "--dir", dir}, code: 1, errOut: []string{"was revoked on"}},
		{name: "cron pki crl", args: []string{"pki", "crl", "--dir", dir}, out: []string{"CRL number 3, 1 revoked"}, errOut: []string{"recorded revoked again", "CRL number 2"}},
	})
	if opensslAccepts(t, dir, "dev1") {
		t.Fatal("openssl accepts dev1 after pki crl with the old index")
	}
	// A stray certificate of another CA in clients/.
	stray := filepath.Join(dir, "clients", "dev9.crt")
	if err := os.WriteFile(stray, mustReadFile(t, filepath.Join(other, "clients", "dev9.crt")), 0o644); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []cliStep{
		{name: "stray copy named, the CRL written all the same", args: []string{"pki", "crl", "--dir", dir}, code: 1, out: []string{"CRL number 4, 1 revoked"},
			errOut: []string{stray, "not issued by this directory's CA", "mv " + stray + " " + stray + ".stray"}},
		{name: "revoke refused while it is there", args: []string{"pki", "revoke", "dev2", "--dir", dir}, code: 1, errOut: []string{stray}},
	})
	// Following the old hint anyway: the index moved away.
	if err := os.Rename(filepath.Join(dir, "index.yaml"), filepath.Join(dir, "index.yaml.bad")); err != nil {
		t.Fatal(err)
	}
	runSteps(t, []cliStep{
		{name: "list after rebuild", args: []string{"pki", "list", "--dir", dir}, out: []string{"revoked"},
			errOut: []string{"rebuilt it", "1 revoked", "CRL number 4", "skipped " + stray},
			check: func(t *testing.T, stdout, _ string) {
				if strings.Contains(stdout, "dev9") {
					t.Errorf("the other CA's dev9 is listed:\n%s", stdout)
				}
			}},
		{name: "crl after rebuild", args: []string{"pki", "crl", "--dir", dir}, out: []string{"CRL number 5, 1 revoked"}, errOut: []string{"rebuilt it"}},
	})
	if opensslAccepts(t, dir, "dev1") {
		t.Fatal("openssl accepts dev1 after the index was rebuilt")
	}
}

// TestReindexUnrecordedRenewal: the state a renewal stopped between its
// renames left before the journal (new certificate in place, index of
// before): every command refuses it, naming the file, the cause and pki
// reindex; reindex records it, and revoking by name then reaches it.
func TestReindexUnrecordedRenewal(t *testing.T) {
	dir := newPKIDir(t, "--client", "dev1", "--host", "localhost")
	oldIndex := mustReadFile(t, filepath.Join(dir, "index.yaml"))
	runSteps(t, []cliStep{{name: "renew", args: []string{"pki", "renew", "dev1", "--dir", dir}, out: []string{"Renewed"}}})
	if err := os.WriteFile(filepath.Join(dir, "index.yaml"), oldIndex, 0o644); err != nil {
		t.Fatal(err)
	}
	crt := filepath.Join(dir, "clients", "dev1.crt")
	runSteps(t, []cliStep{
		{name: "revoke refused", args: []string{"pki", "revoke", "dev1", "--dir", dir}, code: 1, errOut: []string{crt, "does not list it there", "mqttctl pki reindex --dir " + dir}},
		{name: "reindex", args: []string{"pki", "reindex", "--dir", dir}, out: []string{"Moved", "dev1.prev.crt", "Recorded", "dev1.crt"}},
		{name: "reindex again", args: []string{"pki", "reindex", "--dir", dir}, out: []string{"Kept index"}},
		{name: "revoke reaches both", args: []string{"pki", "revoke", "dev1", "--dir", dir}, out: []string{"CRL number 2, 2 revoked"}},
	})
	if opensslAccepts(t, dir, "dev1") {
		t.Fatal("openssl accepts the renewed dev1 after revoke")
	}
}
