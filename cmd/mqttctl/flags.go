package main

import (
	"errors"
	"fmt"
	"io"
	"os"
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
		return fmt.Errorf("%q: use text or json", v)
	}
	*f = outputFormat(v)
	return nil
}

// addOutputFlag defines -o/--output (text or json).
func addOutputFlag(cmd *cobra.Command, f *outputFormat) {
	*f = "text"
	cmd.Flags().VarP(f, "output", "o", "output format: text or json")
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

// errNoPasswordSource: no file, no standard input, no terminal. withHint
// names the flags of the command that needs the password.
var errNoPasswordSource = errors.New("a password is needed and there is no terminal to ask on")

// readSecret reads a password from a file ("-" is standard input), or asks on
// the terminal (twice when confirm is set). The trailing newline of a file is
// dropped; an empty password is refused.
func readSecret(s *streams, file, prompt string, confirm bool) ([]byte, error) {
	var pw []byte
	switch {
	case file == "-":
		data, err := readSecretInput(s.In, "standard input")
		if err != nil {
			return nil, fmt.Errorf("read password from standard input: %w", err)
		}
		pw = []byte(firstLine(string(data)))
	case file != "":
		f, err := os.Open(file)
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		data, err := readSecretInput(f, file)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("read password file: %w", err)
		}
		pw = []byte(firstLine(string(data)))
	case s.terminal != nil && s.terminal():
		fmt.Fprint(s.Err, prompt+": ")
		p1, err := s.readPassword()
		fmt.Fprintln(s.Err)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		if confirm {
			fmt.Fprint(s.Err, "Again: ")
			p2, err := s.readPassword()
			fmt.Fprintln(s.Err)
			if err != nil {
				return nil, fmt.Errorf("read password: %w", err)
			}
			if string(p1) != string(p2) {
				return nil, errors.New("the passwords do not match")
			}
		}
		pw = p1
	default:
		return nil, errNoPasswordSource
	}
	src := "the password"
	if file != "" && file != "-" {
		src = "the password in " + file
	} else if file == "-" {
		src = "the password on standard input"
	}
	if len(pw) == 0 {
		return nil, fmt.Errorf("%s is empty: put it on the first line", src)
	}
	if strings.HasPrefix(string(pw), "-----BEGIN") {
		return nil, fmt.Errorf("%s is the start of a PEM file (a key or a certificate?), not a password: give the file that holds the password", src)
	}
	return pw, nil
}

// maxSecretInput bounds a password file or standard input read for a
// password: a big file (or /dev/zero) is refused instead of filling memory.
const maxSecretInput = 64 << 10

func readSecretInput(r io.Reader, name string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxSecretInput+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxSecretInput {
		return nil, fmt.Errorf("%s is over %d KiB: not a password file (the password is its first line)", name, maxSecretInput>>10)
	}
	return data, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return strings.TrimSuffix(s, "\r")
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
