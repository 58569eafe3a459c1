package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// TestChoiceFlagsTyped: every --mode and --identity of every command is a
// choiceFlag, so each lists its values in --help and refuses another value
// when the flags are parsed.
func TestChoiceFlagsTyped(t *testing.T) {
	found := map[string][]string{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, name := range []string{"mode", "identity"} {
			if f := c.Flags().Lookup(name); f != nil {
				if _, ok := f.Value.(*choiceFlag); !ok {
					t.Errorf("%s --%s is a %T, not a choiceFlag", c.CommandPath(), name, f.Value)
				}
				found[name] = append(found[name], c.CommandPath())
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRootCmd(&streams{In: strings.NewReader(""), Out: new(strings.Builder), Err: new(strings.Builder)}))
	// The commands known to have them today: a rename must not lose one.
	for name, want := range map[string][]string{
		"mode":     {"mqttctl config emqx", "mqttctl config mosquitto", "mqttctl config rabbitmq"},
		"identity": {"mqttctl config mosquitto", "mqttctl serve"},
	} {
		if strings.Join(found[name], ", ") != strings.Join(want, ", ") {
			t.Errorf("--%s on %q, want %q", name, found[name], want)
		}
	}
}

// TestChoiceFlagsRefuse: a value outside the set is refused with the one
// error, naming the flag, the value and the values it takes, before
// anything is written; --help lists the values.
func TestChoiceFlagsRefuse(t *testing.T) {
	dir := t.TempDir()
	p := newPKIDir(t)
	out := filepath.Join(dir, "out")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "mosquitto", "--pki", p, "--mode", "plain", "--out", out}, `invalid argument "plain" for "--mode" flag: use tls or mtls`},
		{[]string{"config", "mosquitto", "--pki", p, "--identity", "CN", "--out", out}, `invalid argument "CN" for "--identity" flag: use cn, subject or none`},
		{[]string{"config", "rabbitmq", "--pki", p, "--mode", "MTLS", "--node", "rabbit1=localhost:8883", "--out", out}, `invalid argument "MTLS" for "--mode" flag: use tls or mtls`},
		{[]string{"config", "emqx", "--pki", p, "--mode", "", "--out", out}, `invalid argument "" for "--mode" flag: use tls or mtls`},
		{[]string{"serve", "--mtls", "--pki", p, "--identity", "email", "--print-config"}, `invalid argument "email" for "--identity" flag: use cn, subject or none`},
		{[]string{"pki", "check", "--dir", p, "-o", "yaml"}, `invalid argument "yaml" for "-o, --output" flag: use text or json`},
	} {
		before := snapshot(t, dir)
		if code, o, e := runCLI(t, "", tc.args...); code == 0 || !strings.Contains(e, tc.want) {
			t.Errorf("%v: exit %d, want %q\n%s%s", tc.args, code, tc.want, o, e)
		}
		if snapshot(t, dir) != before {
			t.Errorf("%v: a refused value wrote files", tc.args)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"config", "mosquitto", "--help"}, "--identity cn|subject|none"},
		{[]string{"config", "mosquitto", "--help"}, "--mode tls|mtls"},
		{[]string{"config", "rabbitmq", "--help"}, "--mode tls|mtls"},
		{[]string{"config", "emqx", "--help"}, "--mode tls|mtls"},
		{[]string{"serve", "--help"}, "--identity cn|subject|none"},
	} {
		if code, o, e := runCLI(t, "", tc.args...); code != 0 || !strings.Contains(o, tc.want) {
			t.Errorf("%v: exit %d, want %q in\n%s%s", tc.args, code, tc.want, o, e)
		}
	}
}
