package main

import "testing"

func TestPKICheck(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--host", "localhost", "--host", "127.0.0.1")
	runSteps(t, []cliStep{
		{name: "a host the certificate names", args: []string{"pki", "check", "--dir", dir, "--host", "127.0.0.1"}, out: []string{"0 errors"}},
		{name: "a host it does not name", args: []string{"pki", "check", "--dir", dir, "--host", "mqtt.example.com"}, code: 1,
			out: []string{"does not name mqtt.example.com", "--host mqtt.example.com"}},
		{name: "bad output format", args: []string{"pki", "check", "--dir", dir, "-o", "yaml"}, code: 1, errOut: []string{"text or json"}},
	})
}
