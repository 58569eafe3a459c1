package main

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// TestLibraryKindsGetFlagHints: the advice that names flags for a confgen
// error kind comes from hints.go, in every command that meets it.
func TestLibraryKindsGetFlagHints(t *testing.T) {
	pkiDir := newPKIDir(t)
	dir := t.TempDir()
	passwd := filepath.Join(dir, "passwd")
	runSteps(t, []cliStep{
		{name: "alice", args: []string{"passwd", "add", passwd, "alice", "-b", "pw"}},
		{name: "bob", args: []string{"passwd", "add", passwd, "bob", "-b", "pw"}},
		{name: "dave other count", args: []string{"passwd", "add", passwd, "dave", "-b", "pw", "--iterations", "1000"}},
		{name: "mosquitto bridge without its certificate", code: 1,
			args: []string{"config", "mosquitto", "--pki", pkiDir, "--bridge-to", "central.example.com:8883", "--bridge-name", "site1",
				"--bridge-topic", "sensors/# out 1", "--out", filepath.Join(dir, "m.conf")},
			errOut: []string{"--bridge-name: ", "site1.crt is missing", "(issue it with: mqttctl pki issue bridge site1 --dir " + pkiDir + " --host NAME)"}},
		{name: "rabbitmq node without its certificate", code: 1,
			args: []string{"config", "rabbitmq", "--pki", pkiDir, "--mode", "mtls", "--node", "rabbit1=mq1.example.com:8883",
				"--out", filepath.Join(dir, "rabbit")},
			errOut: []string{"node rabbit1 has no certificate", "(issue it with: mqttctl pki issue server rabbit1 --dir " + pkiDir + " --host mq1.example.com)"}},
		{name: "rabbitmq certificate login with a password file", code: 1,
			args: []string{"config", "rabbitmq", "--pki", pkiDir, "--mode", "mtls", "--passwd", passwd, "--node", "rabbit1=mq1.example.com:8883",
				"--out", filepath.Join(dir, "rabbit")},
			errOut: []string{"certificate login takes its users from the pki", "(--passwd is for --mode tls: leave it out, or use --mode tls"}},
		{name: "rabbitmq password login without a password file", code: 1,
			args: []string{"config", "rabbitmq", "--pki", pkiDir, "--mode", "tls", "--node", "rabbit1=mq1.example.com:8883",
				"--out", filepath.Join(dir, "rabbit")},
			errOut: []string{"password login takes its users from a password file", "(--mode tls needs --passwd FILE"}},
		{name: "emqx user of another iteration count", code: 1,
			args:   []string{"config", "emqx", "--pki", pkiDir, "--mode", "tls", "--passwd", passwd, "--out", filepath.Join(dir, "emqx")},
			errOut: []string{"user dave not converted: 1000 iterations", "mqttctl passwd add (with --iterations 101)"}},
	})
}

// TestMissingFileSaysHowToCreate: a password or ACL file a command reads
// and that does not exist is named with the command that makes it (issue
// 22: the README's RabbitMQ block stopped at "read ACL file: open acl: no
// such file or directory").
func TestMissingFileSaysHowToCreate(t *testing.T) {
	p := newPKIDir(t, "--node", "rabbit1=localhost", "--client", "alice")
	dir := t.TempDir()
	acl, passwd := filepath.Join(dir, "acl"), filepath.Join(dir, "passwd")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "rabbitmq", "--pki", p, "--acl", acl, "--node", "rabbit1=localhost:8883", "--out", filepath.Join(dir, "r")}, "read ACL file: " + acl + " does not exist (create it with: mqttctl acl add " + acl + " read 'TOPIC' --user USER)"},
		{[]string{"config", "emqx", "--pki", p, "--mode", "tls", "--passwd", passwd, "--out", filepath.Join(dir, "e")}, "read password file: " + passwd + " does not exist (create it with: mqttctl passwd add " + passwd + " USER)"},
		{[]string{"acl", "check", acl, "write", "a/b", "--user", "alice"}, "create it with: mqttctl acl add " + acl},
		{[]string{"config", "mosquitto", "--pki", newPKIDir(t), "--mode", "tls", "--passwd", passwd, "--out", filepath.Join(dir, "m.conf")}, "create it with: mqttctl passwd add " + passwd + " USER"},
	} {
		if code, o, e := runCLI(t, "", tc.args...); code == 0 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, want %q\n%s%s", tc.args, code, tc.want, o, e)
		}
	}
}

// TestBatchExistHintHasNoForce: a file in the way of pki issue client
// --batch is never met with "use --force" (refused with --batch).
func TestBatchExistHintHasNoForce(t *testing.T) {
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--batch", "d.csv", "--bundle-dir", "om"}, "give it a new --bundle-dir"},
		{[]string{"--batch", "d.csv"}, "take out the line"},
		{nil, "use --force to replace it"},
	} {
		root := newRootCmd(&streams{})
		cmd, _, err := root.Find([]string{"pki", "issue"})
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(tc.flags); err != nil {
			t.Fatal(err)
		}
		got := withHint(cmd, fmt.Errorf("om/manifest.json: %w", fs.ErrExist)).Error()
		if !strings.Contains(got, tc.want) || len(tc.flags) > 0 && strings.Contains(got, "--force") {
			t.Errorf("%v: %q, want %q and no --force", tc.flags, got, tc.want)
		}
	}
}
