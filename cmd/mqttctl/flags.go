package main

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/pki"

	"github.com/spf13/cobra"
)

// checkPositive refuses an int flag given with a value below 1. Library
// options read 0 as "the default", so without this --days 0 would silently
// mean 365.
func checkPositive(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil || !f.Changed {
			continue
		}
		v, err := cmd.Flags().GetInt(n)
		if err != nil {
			return err
		}
		if v < 1 {
			return fmt.Errorf("--%s %d: give a number from 1 up (leave the flag out for the default, %s)", n, v, f.DefValue)
		}
	}
	return nil
}

// checkDurations refuses duration flags below min (changed or not: their
// defaults are valid).
func checkDurations(cmd *cobra.Command, min time.Duration, names ...string) error {
	for _, n := range names {
		v, err := cmd.Flags().GetDuration(n)
		if err != nil {
			return err
		}
		if v < min || v == 0 && min > 0 {
			return fmt.Errorf("--%s %s: give a duration of at least %s, e.g. 5s", n, v, max(min, time.Millisecond))
		}
	}
	return nil
}

// passwordFlags is the one way commands take a password: --password-file
// FILE (- for standard input), --password-stdin, -b PASSWORD where
// mosquitto_passwd compatibility wants it, or a prompt on a terminal.
type passwordFlags struct {
	file  string
	stdin bool
	batch string // -b PASSWORD, as mosquitto_passwd
}

// add defines the flags; batch adds -b.
func (p *passwordFlags) add(cmd *cobra.Command, batch bool) {
	fl := cmd.Flags()
	fl.StringVar(&p.file, "password-file", "", "read the password from the first line of FILE (- for standard input)")
	fl.BoolVar(&p.stdin, "password-stdin", false, "read the password from the first line of standard input (as --password-file -)")
	cmd.MarkFlagsMutuallyExclusive("password-file", "password-stdin")
	if batch {
		fl.StringVarP(&p.batch, "batch", "b", "", "the password on the command line, as mosquitto_passwd -b (visible to other users in ps; prefer --password-stdin)")
		cmd.MarkFlagsMutuallyExclusive("batch", "password-stdin", "password-file")
	}
}

// given reports whether a password source was named.
func (p *passwordFlags) given() bool { return p.file != "" || p.stdin || p.batch != "" }

// read returns the password; without a source it asks on the terminal
// (twice when confirm is set).
func (p *passwordFlags) read(s *streams, prompt string, confirm bool) ([]byte, error) {
	switch {
	case p.batch != "":
		return []byte(p.batch), nil
	case p.stdin:
		return readSecret(s, "-", "", false)
	}
	return readSecret(s, p.file, prompt, confirm)
}

// outputFormat is the -o/--output flag of every command that prints a
// report: text or json, checked when the flag is parsed.
type outputFormat string

func (f *outputFormat) String() string { return string(*f) }
func (f *outputFormat) Type() string   { return "format" }
func (f *outputFormat) Set(v string) error {
	if v != "text" && v != "json" {
		return errChoice([]string{"text", "json"})
	}
	*f = outputFormat(v)
	return nil
}

// addOutputFlag defines -o/--output (text or json).
func addOutputFlag(cmd *cobra.Command, f *outputFormat) {
	*f = "text"
	cmd.Flags().VarP(f, "output", "o", "output format: text or json")
}

// choiceFlag is a string flag that takes one of a fixed set of values
// (--mode, --identity): --help lists them as the flag's type, and a bad
// value is refused when the flags are parsed, with errChoice.
type choiceFlag struct {
	v       *string
	allowed []string
}

func (c *choiceFlag) String() string {
	if c.v == nil {
		return ""
	}
	return *c.v
}
func (c *choiceFlag) Type() string { return strings.Join(c.allowed, "|") }
func (c *choiceFlag) Set(v string) error {
	if !slices.Contains(c.allowed, v) {
		return errChoice(c.allowed)
	}
	*c.v = v
	return nil
}

// errChoice is the one error for a value outside a flag's set; cobra puts
// the value and the flag before it: invalid argument "x" for "--mode"
// flag: use tls or mtls.
func errChoice(allowed []string) error {
	return fmt.Errorf("use %s or %s", strings.Join(allowed[:len(allowed)-1], ", "), allowed[len(allowed)-1])
}

// addModeFlag defines --mode: tls (one-way TLS, passwords) or mtls (client
// certificates), def by default.
func addModeFlag(cmd *cobra.Command, mode *string, def, usage string) {
	*mode = def
	cmd.Flags().Var(&choiceFlag{mode, []string{"tls", "mtls"}}, "mode", usage)
}

// addIdentityFlag defines --identity: which part of a client certificate
// is the username, cn by default.
func addIdentityFlag(cmd *cobra.Command, identity *string, usage string) {
	*identity = "cn"
	cmd.Flags().Var(&choiceFlag{identity, []string{"cn", "subject", "none"}}, "identity", usage)
}

// keyTypeFlag is the one --key-type definition.
type keyTypeFlag pki.KeyType

func (k *keyTypeFlag) String() string { return string(*k) }
func (k *keyTypeFlag) Type() string   { return "type" }
func (k *keyTypeFlag) Set(v string) error {
	kt, err := pki.ParseKeyType(v)
	if err != nil {
		return err
	}
	*k = keyTypeFlag(kt)
	return nil
}

// addKeyTypeFlag defines --key-type.
func addKeyTypeFlag(cmd *cobra.Command, k *pki.KeyType) {
	*k = pki.DefaultKeyType
	cmd.Flags().Var((*keyTypeFlag)(k), "key-type", "key type: ec-p256, ec-p384, ed25519 (not for ESP32/mbedTLS or EMQX clients), rsa2048, rsa3072 or rsa4096")
}

// daysFlag is a duration that also takes whole days ("30d"), for windows
// such as --expiring.
type daysFlag time.Duration

func (d *daysFlag) String() string {
	if *d == 0 {
		return "0"
	}
	if day := 24 * time.Hour; time.Duration(*d)%day == 0 {
		return fmt.Sprintf("%dd", time.Duration(*d)/day)
	}
	return time.Duration(*d).String()
}
func (d *daysFlag) Type() string { return "duration" }
func (d *daysFlag) Set(v string) error {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 1 || days > 36500 {
			return fmt.Errorf("%q: give whole days from 1 to 36500 (30d) or a duration (12h)", v)
		}
		*d = daysFlag(time.Duration(days) * 24 * time.Hour)
		return nil
	}
	dur, err := time.ParseDuration(v)
	if err != nil || dur <= 0 {
		return fmt.Errorf("%q: give whole days (30d) or a positive duration (12h)", v)
	}
	*d = daysFlag(dur)
	return nil
}

// addBrokerGroupFlag is --broker-group: run as root, a config command gives
// this group (the account the broker switches to) read access to exactly
// the files the config names.
func addBrokerGroupFlag(cmd *cobra.Command, group *string, def string) {
	cmd.Flags().StringVar(group, "broker-group", def, "group the broker runs as, given read access to the files it reads when run as root (none to skip)")
}
