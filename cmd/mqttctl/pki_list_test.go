package main

import "testing"

func TestPKIList(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "text", args: []string{"pki", "list", "--dir", dir}, out: []string{"alice", "server"}},
		{name: "json", args: []string{"pki", "list", "--dir", dir, "-o", "json"}, out: []string{`"name": "alice"`}},
		{name: "no CA", args: []string{"pki", "list", "--dir", dir + "-none"}, code: 1, errOut: []string{"no CA in"}},
	})
}
