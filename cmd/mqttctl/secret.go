package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

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
