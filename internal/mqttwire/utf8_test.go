package mqttwire

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// validStringRef is ValidString written plainly with unicode/utf8.
func validStringRef(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r <= 0x1f || (r >= 0x7f && r <= 0x9f) || (r >= 0xfdd0 && r <= 0xfdef) || r&0xfffe == 0xfffe {
			return false
		}
	}
	return true
}

// validFilterRef is ValidTopicFilter written plainly, level by level.
func validFilterRef(f string) bool {
	if f == "" || len(f) > 65535 || strings.Count(f, "/") > 200 {
		return false
	}
	if rest, ok := strings.CutPrefix(f, "$share/"); ok {
		group, filter, found := strings.Cut(rest, "/")
		if !found || group == "" || strings.ContainsAny(group, "+#") || filter == "" {
			return false
		}
		f = filter
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "+") && l != "+" {
			return false
		}
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return false
		}
	}
	return true
}

func TestValidString(t *testing.T) {
	for s, want := range map[string]bool{
		"": true, "a/b": true, "ü€😀": true, "\u00a0": true, "\ufffd": true,
		"\x00": false, "\x1f": false, "\x7f": false, "\u0080": false, "\u009f": false,
		"\xc0\x80": false, "\xe0\x80\x80": false, "\xed\xa0\x80": false, "\xf4\x90\x80\x80": false,
		"\ufdd0": false, "\ufffe": false, "\U0001fffe": false, "\xe2\x82": false, "\x80": false,
	} {
		if got := ValidString(s); got != want {
			t.Errorf("ValidString(%q) = %v, want %v", s, got, want)
		}
	}
}

var (
	stringSeeds = []string{"a/b", "ü", "\x00", "\xc0\x80", "\xed\xa0\x80", "\ufdd0", "\U0010ffff", "\xf4\x90\x80\x80", "\u0085"}
	filterSeeds = []string{strings.Repeat("/", 200), strings.Repeat("a/", 201), "$share/g/" + strings.Repeat("/", 198), "a/+/#", "#", "+", "a#", "$share/g/a/#", "$share/g", "$share//a", "$share/+/a", "a/#/b", "//", "+a"}
)

func FuzzValidString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidString(s), validStringRef(s); got != want {
			t.Fatalf("ValidString(%q) = %v, reference %v", s, got, want)
		}
		if ValidString(s) != ValidString([]byte(s)) {
			t.Fatalf("string and []byte disagree on %q", s)
		}
	})
}

func FuzzValidTopicFilter(f *testing.F) {
	for _, s := range filterSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidTopicFilter(s), validFilterRef(s); got != want {
			t.Fatalf("ValidTopicFilter(%q) = %v, reference %v", s, got, want)
		}
		if ValidTopicName(s) && !strings.HasPrefix(s, SharePrefix) && !ValidTopicFilter(s) {
			t.Fatalf("%q is a topic name but not a filter", s)
		}
	})
}
