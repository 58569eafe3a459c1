package ident

import (
	"errors"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, ok := range []string{"alice", "sensor-01", "Dash Board", "a.b", "bücher", "日本", "caf\u00e9"} {
		if err := Validate(ok); err != nil {
			t.Errorf("Validate(%q) = %v", ok, err)
		}
	}
	tests := []struct{ name, want string }{
		{"", "empty"},
		{"   ", "empty"},
		{" alice", "white space"},
		{"alice ", "white space"},
		{"a:b", "':'"},
		{"a/b", "'/'"},
		{`a\b`, `'\\'`},
		{"x+y", "'+'"},
		{"#", "'#'"},
		{".", "directory name"},
		{"..", "directory name"},
		{"a\nb", "line break"},
		{"a\rb", "line break"},
		{"a\x00b", "NUL"},
		{"a\x1bb", "U+001B"},
		{"a\u0085b", "U+0085"},
		{"admin\u202efdp.exe", "bidirectional"},
		{"a\u2066b", "bidirectional"},
		{"\xff\xfe", "UTF-8"},
		{strings.Repeat("x", 65), "longer than 64"},
		// look-alikes of existing names (an adversarial pass: each
		// displayed as "alice", "bob" or "x y" in pki list and logs)
		{"ali\u200bce", "invisible character U+200B"},
		{"\ufeffbob", "invisible character U+FEFF"},
		{"ali\u00adce", "invisible character U+00AD"},
		{"x\u00a0y", "space U+00A0"},
		{"x\u3000y", "space U+3000"},
		{"caf" + "e\u0301", "normal form C"},
	}
	for _, tt := range tests {
		err := Validate(tt.name)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("Validate(%q) = %v, want an ErrInvalid saying %q", tt.name, err, tt.want)
		}
	}
}

func TestCheckText(t *testing.T) {
	for _, ok := range []string{"sensors/#", "a b/c", "/etc/mosquitto/ca.crt", "température"} {
		if err := CheckText("topic", ok); err != nil {
			t.Errorf("CheckText(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"x\ntopic readwrite admin/x", "x\r", "\x00", "\xc3", "a\u202eb"} {
		if err := CheckText("topic", bad); err == nil {
			t.Errorf("CheckText(%q) accepted", bad)
		}
	}
}

// TestValidateNew: a new name may not start with '-', '=' or '@' (an
// option to a command, a formula to a spreadsheet); Validate, for names
// that exist already, still accepts them.
func TestValidateNew(t *testing.T) {
	for _, ok := range []string{"alice", "sensor-01", "a=b", "a@example", "a-"} {
		if err := ValidateNew(ok); err != nil {
			t.Errorf("ValidateNew(%q) = %v", ok, err)
		}
	}
	for _, tt := range []struct{ name, want string }{
		{"-rf", "starts with '-'"},
		{"=HYPERLINK(A1)", "formula"},
		{"@SUM(1)", "formula"},
		{"+1", "'+'"},
		{"a/b", "'/'"},
		{"", "empty"},
	} {
		err := ValidateNew(tt.name)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("ValidateNew(%q) = %v, want an ErrInvalid saying %q", tt.name, err, tt.want)
		}
		if tt.name != "" && tt.name[0] != '+' && !strings.Contains(tt.name, "/") {
			if err := Validate(tt.name); err != nil {
				t.Errorf("Validate(%q) = %v: an existing name must still be read", tt.name, err)
			}
		}
	}
}
