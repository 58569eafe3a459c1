package main

import "testing"

func TestPKIIssue(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "over an existing client", args: []string{"pki", "issue", "client", "alice", "--dir", dir}, code: 1, errOut: []string{"already exists", "--force"}},
		{name: "a new client", args: []string{"pki", "issue", "client", "bob", "--dir", dir}, out: []string{"Issued client certificate", "CN=bob"}},
		{name: "a server without names", args: []string{"pki", "issue", "server", "server", "--dir", dir}, code: 1, errOut: []string{"--host"}},
		{name: "a client with names", args: []string{"pki", "issue", "client", "carol", "--dir", dir, "--host", "x.example"}, code: 1, errOut: []string{"leave out --host"}},
		{name: "in a directory without a CA", args: []string{"pki", "issue", "client", "dan", "--dir", dir + "-none"}, code: 1, errOut: []string{"no CA in", "mqttctl pki init --dir " + dir + "-none"}},
	})
}
