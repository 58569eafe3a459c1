// Package ident holds the one rule for MQTT identities (client certificate
// names and CNs, password-file and ACL usernames) and the text rule for
// anything mqttctl writes into a line-based file (topics, paths). pki,
// confgen and the commands all use it, so a name one of them accepts is
// never refused by another.
package ident

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/mqttctl/mqttctl/internal/errs"
)

// MaxLen is the longest identity: the X.509 CN limit, since a client
// certificate's CN is its MQTT username.
const MaxLen = 64

// ErrInvalid is wrapped by every error of this package.
var ErrInvalid = errors.New("invalid name")

// CheckText refuses what a line-based file cannot carry safely: invalid
// UTF-8, control characters (a newline would start a new line, that is a
// new rule), and Unicode bidirectional controls, which make a name display
// as something else (U+202E).
func CheckText(what, s string) error {
	if !utf8.ValidString(s) {
		return errs.New(fmt.Sprintf("%s %q is not valid UTF-8", what, s), ErrInvalid)
	}
	for _, r := range s {
		switch {
		case r == '\n' || r == '\r':
			return errs.New(fmt.Sprintf("%s %q contains a line break", what, s), ErrInvalid)
		case r == 0:
			return errs.New(fmt.Sprintf("%s %q contains a NUL character", what, s), ErrInvalid)
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return errs.New(fmt.Sprintf("%s %q contains the control character U+%04X", what, s, r), ErrInvalid)
		case isBidiControl(r):
			return errs.New(fmt.Sprintf("%s %q contains the bidirectional control U+%04X, which makes text display as something else", what, s, r), ErrInvalid)
		}
	}
	return nil
}

func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069
}

// Validate checks an MQTT identity: a client certificate's name and CN (the
// username with use_identity_as_username), or a password-file or ACL
// username. It must be non-empty text (CheckText) of at most MaxLen bytes,
// without leading or trailing white space (mosquitto strips it), without
// ':' (the password file's separator), '/' or '\' (it names a file, and a
// %u ACL pattern would gain levels), '+' or '#' (wildcards in %u patterns),
// invisible (format) characters and spaces other than U+0020, in Unicode
// normal form C (so that two names that display alike are the same name),
// and not "." or "..". Look-alike letters of other scripts (a Cyrillic
// 'і' for a Latin 'i') are not refused: the name is still one identity.
func Validate(name string) error {
	if strings.TrimSpace(name) == "" {
		return errs.New("the name is empty: give the MQTT identity, e.g. sensor-01", ErrInvalid)
	}
	if err := CheckText("name", name); err != nil {
		return err
	}
	if strings.TrimSpace(name) != name {
		return errs.New(fmt.Sprintf("name %q has leading or trailing white space, which mosquitto strips", name), ErrInvalid)
	}
	if len(name) > MaxLen {
		return errs.New(fmt.Sprintf("name %q is longer than %d bytes (the X.509 CN limit)", name, MaxLen), ErrInvalid)
	}
	if name == "." || name == ".." {
		return errs.New(fmt.Sprintf("name %q is a directory name", name), ErrInvalid)
	}
	if strings.HasPrefix(name, ".") {
		return errs.New(fmt.Sprintf("name %q starts with '.': its files would be hidden (and look like mqttctl's temporary files); start it with a letter or digit", name), ErrInvalid)
	}
	for _, r := range name {
		switch {
		case unicode.Is(unicode.Cf, r):
			return errs.New(fmt.Sprintf("name %q contains the invisible character U+%04X, which makes it display like another name", name, r), ErrInvalid)
		case r != ' ' && unicode.IsSpace(r):
			return errs.New(fmt.Sprintf("name %q contains the space U+%04X, which displays like an ordinary space", name, r), ErrInvalid)
		}
	}
	if !norm.NFC.IsNormalString(name) {
		return errs.New(fmt.Sprintf("name %q is not in Unicode normal form C (a letter and a combining accent display like the accented letter): write it with composed characters (%q)", name, norm.NFC.String(name)), ErrInvalid)
	}
	if i := strings.IndexAny(name, ":/\\+#"); i >= 0 {
		return errs.New(fmt.Sprintf("name %q contains %q; MQTT identities may not contain ':', '/', '\\', '+' or '#'", name, name[i]), ErrInvalid)
	}
	return nil
}

// ValidateNew is Validate for a name that is being given to a new identity
// (a certificate issued, a key and CSR made, an enrolment token, a user
// added to a password file): it also refuses a name that starts with '-'
// (a command would read it as an option: mqttctl pki revoke -rf), '=' or
// '@' (a spreadsheet opening a CSV of names, the factory's tokens.csv,
// would run it as a formula; '+' is refused anywhere). Names that already
// exist (read from a file, a certificate, a device's directory) are
// checked with Validate, so that what an earlier mqttctl made keeps
// working.
func ValidateNew(name string) error {
	if err := Validate(name); err != nil {
		return err
	}
	switch name[0] {
	case '-':
		return errs.New(fmt.Sprintf("name %q starts with '-': commands would read it as an option; start it with a letter or digit", name), ErrInvalid)
	case '=', '@':
		return errs.New(fmt.Sprintf("name %q starts with %q: a spreadsheet opening a CSV of names (tokens.csv) would run it as a formula; start it with a letter or digit", name, name[0]), ErrInvalid)
	}
	return nil
}
