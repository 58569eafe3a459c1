package main

import (
	"os"
	"regexp"
	"testing"
)

// TestAdviceKeepsPasswordsOutOfArgv: the README and pki export's help never
// show a password on a command line (visible in ps and shell history):
// keytool reads it with -storepass:file, openssl with -passin file:.
func TestAdviceKeepsPasswordsOutOfArgv(t *testing.T) {
	inArgv := regexp.MustCompile(`-(storepass|keypass|srcstorepass|deststorepass)(\s|=|$)|-pass(in|out)\s+pass:`)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, help, _ := runCLI(t, "", "pki", "export", "--help")
	for name, text := range map[string]string{"README.md": string(readme), "pki export --help": help} {
		if m := inArgv.FindString(text); m != "" {
			t.Errorf("%s puts a password in argv: %q", name, m)
		}
	}
	if !regexp.MustCompile(`-storepass:file \S+`).MatchString(help) {
		t.Errorf("pki export --help shows no keytool -storepass:file FILE:\n%s", help)
	}
}
