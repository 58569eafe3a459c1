package main

import "testing"

func TestPKIList(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost")
	runSteps(t, []cliStep{
		{name: "text", args: []string{"pki", "list", "--dir", dir}, out: []string{"alice", "server"}},
		{name: "json", args: []string{"pki", "list", "--dir", dir, "-o", "json"}, out: []string{`"name": "alice"`}},
		{name: "no CA", args: []string{"pki", "list", "--dir", dir + "-none"}, code: 1, errOut: []string{"no CA in"}},
		{name: "nothing expiring within 30 days", args: []string{"pki", "list", "--dir", dir, "--expiring", "30d"}, absent: []string{"alice"}},
		{name: "expiring within 400 days", args: []string{"pki", "list", "--dir", dir, "--expiring", "400d"}, code: 1,
			out: []string{"alice", "server"}, errOut: []string{"expire within"}},
		{name: "a revoked one is not listed", args: []string{"pki", "revoke", "alice", "--dir", dir}},
		{name: "after the revocation", args: []string{"pki", "list", "--dir", dir, "--expiring", "400d"}, code: 1, out: []string{"server"}, absent: []string{"alice"}},
		{name: "a bad window", args: []string{"pki", "list", "--dir", dir, "--expiring", "0d"}, code: 1, errOut: []string{"whole days"}},
	})
}
