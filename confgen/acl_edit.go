package confgen

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// ACLTarget says whom a rule is for: one user, anonymous clients, or every
// client (a pattern). Exactly one must be set.
type ACLTarget struct {
	User      string
	Anonymous bool
	Pattern   bool
}

func (t ACLTarget) validate() error {
	n := 0
	for _, b := range []bool{t.User != "", t.Anonymous, t.Pattern} {
		if b {
			n++
		}
	}
	if n != 1 {
		return errors.New("a rule is for exactly one of: a user, anonymous clients, every client (pattern)")
	}
	if t.User != "" {
		return ident.Validate(t.User)
	}
	return nil
}

// AddACLRule returns ACL text with one rule added where mosquitto reads it
// as meant for target, every other line (comments, blank lines, order)
// kept as it is: a user's rule after the last rule of that user's block (a
// new block at the end), an anonymous rule among the topic lines before the
// first user line, a pattern at the end. added is false when the same rule
// is there already. name is used in errors.
func AddACLRule(data []byte, name string, target ACLTarget, r ACLRule) (out []byte, added bool, err error) {
	if err := target.validate(); err != nil {
		return nil, false, err
	}
	if err := ValidateTopicFilter(r.Topic); err != nil {
		return nil, false, err
	}
	a, err := ParseACL(data, name)
	if err != nil {
		return nil, false, err
	}
	kw := "topic"
	if target.Pattern {
		kw = "pattern"
	}
	line := fmt.Sprintf("%s %s %s", kw, r.Access, r.Topic)
	same := func(rules []ACLRule) bool {
		return slices.ContainsFunc(rules, func(x ACLRule) bool { return x.Access == r.Access && x.Topic == r.Topic })
	}
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(data) == 0 {
		lines = nil
	}
	insertAt := len(lines) // index in lines before which the new lines go
	var add []string
	switch {
	case target.Pattern:
		if same(a.Patterns) {
			return data, false, nil
		}
		add = []string{line}
	case target.Anonymous:
		if same(a.Anonymous) {
			return data, false, nil
		}
		add = []string{line}
		if n := len(a.Anonymous); n > 0 {
			insertAt = maxLine(a.Anonymous)
		} else if first := firstUserLine(lines); first >= 0 {
			// Before the first user line and the comments right above it.
			insertAt = first
			for insertAt > 0 && strings.HasPrefix(strings.TrimSpace(lines[insertAt-1]), "#") {
				insertAt--
			}
		}
	default:
		u := a.User(target.User)
		switch {
		case u != nil && same(u.Rules):
			return data, false, nil
		case u != nil && len(u.Rules) > 0:
			insertAt = maxLine(u.Rules)
			add = []string{line}
		case u != nil:
			insertAt = u.Line
			add = []string{line}
		default:
			if len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) != "" {
				add = append(add, "")
			}
			add = append(add, "user "+target.User, line)
		}
	}
	lines = slices.Insert(lines, insertAt, add...)
	out = []byte(strings.Join(lines, "\n") + "\n")
	// The result must still parse, and give the target the new rule.
	b, err := ParseACL(out, name)
	if err != nil {
		return nil, false, fmt.Errorf("adding the rule would break %s: %w", name, err)
	}
	if !ruleFor(b, target, r) {
		return nil, false, fmt.Errorf("adding the rule to %s did not give it to the intended clients", name)
	}
	return out, true, nil
}

func maxLine(rules []ACLRule) int {
	m := 0
	for _, r := range rules {
		m = max(m, r.Line)
	}
	return m
}

func firstUserLine(lines []string) int {
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) > 0 && f[0] == "user" {
			return i
		}
	}
	return -1
}

func ruleFor(a *ACL, t ACLTarget, r ACLRule) bool {
	has := func(rules []ACLRule) bool {
		return slices.ContainsFunc(rules, func(x ACLRule) bool { return x.Access == r.Access && x.Topic == r.Topic })
	}
	switch {
	case t.Pattern:
		return has(a.Patterns)
	case t.Anonymous:
		return has(a.Anonymous)
	}
	u := a.User(t.User)
	return u != nil && has(u.Rules)
}

// AddACLRuleToFile adds a rule to an ACL file through fsx.Edit: locked,
// atomic, mode, owner, group and comments kept; created (0600) when
// missing. added is false when the rule was there already.
func AddACLRuleToFile(path string, target ACLTarget, r ACLRule) (added bool, err error) {
	check := func(data []byte) error {
		_, err := ParseACL(data, path)
		return err
	}
	err = fsx.Edit(path, true, check, func(data []byte) ([]byte, error) {
		out, ok, err := AddACLRule(data, path, target, r)
		added = ok
		return out, err
	})
	return added, err
}
