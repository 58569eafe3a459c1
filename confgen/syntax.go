package confgen

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// The one checked path for every value mqttctl writes into another engine's
// syntax: one small function per syntax. Each refuses a value its syntax
// cannot carry exactly instead of escaping it (an escape that is wrong for
// the reader is a rule or a setting injected), so a value is either written
// as given or the generation stops with the reason.

// checked applies one syntax's check to many values and keeps the first
// error, so that a file can be written line by line and refused at the end
// if any value could not be carried.
type checked struct {
	check func(what, v string) (string, error)
	err   error
}

// v returns the value as the syntax carries it; a refusal is kept in c.err.
func (c *checked) v(what, s string) string {
	out, err := c.check(what, s)
	if err != nil && c.err == nil {
		c.err = err
	}
	return out
}

// confValue checks a value for RabbitMQ's rabbitmq.conf (sysctl-like
// "key = value" lines parsed by cuttlefish, which has no quoting or
// escaping): one token of letters, digits and . _ - / : @ only. what names
// the value in the error.
func confValue(what, v string) (string, error) {
	if v == "" {
		return "", fmt.Errorf("%s is empty, which rabbitmq.conf cannot carry", what)
	}
	for _, c := range v {
		if c < 0x80 && (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == '/' || c == ':' || c == '@') {
			continue
		}
		return "", fmt.Errorf("%s %q holds %q, which rabbitmq.conf cannot carry (it has no quoting: only letters, digits and . _ - / : @)", what, v, c)
	}
	return v, nil
}

// checkText refuses invalid UTF-8 and control characters: encoders replace
// the first silently (encoding/json writes U+FFFD), and the second have no
// place in a name, path or topic.
func checkText(syntax, what, v string) error {
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s %q is not valid UTF-8, which %s cannot carry exactly", what, v, syntax)
	}
	for _, c := range v {
		if c < 0x20 || c == 0x7f || c >= 0x80 && c < 0xa0 {
			return fmt.Errorf("%s %q holds the control character %U, which %s cannot carry", what, v, c, syntax)
		}
	}
	return nil
}

// jsonString is v for a JSON document (definitions.json). encoding/json
// quotes every valid string exactly; what it cannot keep is refused.
func jsonString(what, v string) (string, error) {
	if err := checkText("JSON", what, v); err != nil {
		return "", err
	}
	return v, nil
}

// hoconString is v as a quoted HOCON string (EMQX's emqx.conf). A quoted
// HOCON string is a JSON string; "${" is refused, since EMQX expands
// placeholders in some values.
func hoconString(what, v string) (string, error) {
	if err := checkText("HOCON", what, v); err != nil {
		return "", err
	}
	if containsPlaceholder(v) {
		return "", fmt.Errorf("%s %q holds \"${\", which EMQX reads as a placeholder", what, v)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// erlString is v as an Erlang string term (EMQX's acl.conf, read with
// file:consult). Only printable ASCII without '"', '\' and "${" (EMQX expands
// ${username} and ${clientid} in acl.conf topics) is written: anything else
// depends on the reader's encoding or escapes.
func erlString(what, v string) (string, error) {
	for _, c := range v {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			return "", fmt.Errorf("%s %q holds %q: acl.conf takes printable ASCII without '\"' and '\\' only", what, v, c)
		}
	}
	if containsPlaceholder(v) {
		return "", fmt.Errorf("%s %q holds \"${\", which EMQX reads as a placeholder", what, v)
	}
	return `"` + v + `"`, nil
}

func containsPlaceholder(v string) bool {
	for i := 0; i+1 < len(v); i++ {
		if v[i] == '$' && v[i+1] == '{' {
			return true
		}
	}
	return false
}
