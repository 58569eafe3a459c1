package mqttwire

import "strings"

// ValidString reports whether b is an MQTT UTF-8 string as mosquitto
// accepts it (mosquitto_validate_utf8): well-formed UTF-8 (no overlong
// forms, no surrogates, nothing above U+10FFFF), and none of U+0000, the
// control characters U+0001-U+001F and U+007F-U+009F, or the
// non-characters U+FDD0-U+FDEF and U+xFFFE/U+xFFFF. The spec makes the
// first group a MUST and the others a SHOULD NOT that a receiver may
// refuse; mosquitto refuses them all, as a malformed packet, and so does
// this package.
func ValidString[T []byte | string](b T) bool {
	for i := 0; i < len(b); {
		c := b[i]
		if c < 0x80 {
			if c <= 0x1f || c == 0x7f {
				return false
			}
			i++
			continue
		}
		var n int
		var cp rune
		switch {
		case c&0xe0 == 0xc0:
			if c < 0xc2 {
				return false // overlong
			}
			n, cp = 2, rune(c&0x1f)
		case c&0xf0 == 0xe0:
			n, cp = 3, rune(c&0x0f)
		case c&0xf8 == 0xf0:
			if c > 0xf4 {
				return false
			}
			n, cp = 4, rune(c&0x07)
		default:
			return false // a continuation byte or 0xf8-0xff
		}
		if i+n > len(b) {
			return false
		}
		for j := 1; j < n; j++ {
			d := b[i+j]
			if d&0xc0 != 0x80 {
				return false
			}
			cp = cp<<6 | rune(d&0x3f)
		}
		i += n
		switch {
		case cp >= 0xd800 && cp <= 0xdfff,
			n == 3 && cp < 0x800,
			n == 4 && (cp < 0x10000 || cp > 0x10ffff),
			cp >= 0xfdd0 && cp <= 0xfdef,
			cp&0xfffe == 0xfffe,
			cp <= 0x9f: // U+0080-U+009F (two-byte controls)
			return false
		}
	}
	return true
}

// MaxLevels is the most levels mosquitto (2.0 and 2.1) accepts in a topic
// name or filter: 200 slashes. It refuses more as a malformed packet.
const MaxLevels = 201

// ValidTopicName reports whether t may be the topic of a PUBLISH or a
// will: at least one character, no wildcard, at most MaxLevels levels.
// (The string rules are ValidString's, checked when the packet is
// decoded.)
func ValidTopicName[T []byte | string](t T) bool {
	if len(t) == 0 || len(t) > 65535 {
		return false
	}
	slashes := 0
	for i := 0; i < len(t); i++ {
		switch t[i] {
		case '+', '#':
			return false
		case '/':
			slashes++
		}
	}
	return slashes < MaxLevels
}

// SharePrefix starts a shared subscription's filter: $share/GROUP/FILTER.
const SharePrefix = "$share/"

// ValidTopicFilter reports whether f is a topic filter: at least one
// character; '+' alone in its level; '#' alone in the last level; at most
// MaxLevels levels (counted in the whole filter, as mosquitto does); and,
// for $share/GROUP/FILTER, a GROUP of at least one character without '+'
// or '#' and a valid FILTER.
func ValidTopicFilter[T []byte | string](f T) bool {
	if len(f) == 0 || len(f) > 65535 {
		return false
	}
	if len(f) >= len(SharePrefix) && string(f[:len(SharePrefix)]) == SharePrefix {
		_, filter, _, ok := SplitShared(string(f))
		return ok && validFilter(filter, 2)
	}
	return validFilter(f, 0)
}

// validFilter checks f, which follows slashes slashes of the whole filter.
func validFilter[T []byte | string](f T, slashes int) bool {
	if len(f) == 0 {
		return false
	}
	for i := 0; i < len(f); i++ {
		switch f[i] {
		case '/':
			slashes++
			if slashes >= MaxLevels {
				return false
			}
		case '+':
			if (i > 0 && f[i-1] != '/') || (i+1 < len(f) && f[i+1] != '/') {
				return false
			}
		case '#':
			if (i > 0 && f[i-1] != '/') || i+1 != len(f) {
				return false
			}
		}
	}
	return true
}

// SplitShared splits $share/GROUP/FILTER. shared says whether f starts
// with $share/; ok whether GROUP is valid (non-empty, no wildcard) and a
// FILTER follows.
func SplitShared(f string) (group, filter string, shared, ok bool) {
	rest, found := strings.CutPrefix(f, SharePrefix)
	if !found {
		return "", f, false, false
	}
	group, filter, found = strings.Cut(rest, "/")
	ok = found && group != "" && !strings.ContainsAny(group, "+#") && filter != ""
	return group, filter, true, ok
}
