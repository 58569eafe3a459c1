package confgen

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"unicode"

	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// Access is what an ACL rule grants; Deny refuses.
type Access int

// ACL access values, as mosquitto's MOSQ_ACL_* bits.
const (
	Deny      Access = 0
	Read      Access = 1
	Write     Access = 2
	ReadWrite Access = Read | Write
)

func (a Access) String() string {
	switch a {
	case Read:
		return "read"
	case Write:
		return "write"
	case ReadWrite:
		return "readwrite"
	}
	return "deny"
}

// ParseAccess reads an ACL access keyword.
func ParseAccess(s string) (Access, bool) {
	switch s {
	case "read":
		return Read, true
	case "write":
		return Write, true
	case "readwrite":
		return ReadWrite, true
	case "deny":
		return Deny, true
	}
	return 0, false
}

// ACLRule is one topic or pattern line.
type ACLRule struct {
	Access Access
	Topic  string
	Line   int
}

// ACLUser is a user block.
type ACLUser struct {
	Name  string
	Rules []ACLRule
	Line  int
}

// ACL is a mosquitto acl_file: rules for anonymous clients (topic lines
// before any user line), user blocks, and patterns that apply to everyone.
type ACL struct {
	Anonymous []ACLRule
	Users     []*ACLUser
	Patterns  []ACLRule
}

// User returns the block of name, or nil.
func (a *ACL) User(name string) *ACLUser {
	for _, u := range a.Users {
		if u.Name == name {
			return u
		}
	}
	return nil
}

// AddUser returns the block of name, creating it.
func (a *ACL) AddUser(name string) *ACLUser {
	if u := a.User(name); u != nil {
		return u
	}
	u := &ACLUser{Name: name}
	a.Users = append(a.Users, u)
	return u
}

// ValidateTopicFilter checks a topic filter as mosquitto does ('+' and '#'
// only as whole levels, '#' only last, not empty) and refuses what an ACL
// line cannot carry: line breaks (they would inject rules), NUL and other
// control characters, invalid UTF-8, bidirectional controls, and leading or
// trailing white space (mosquitto strips it from the line).
func ValidateTopicFilter(t string) error {
	if t == "" {
		return fmt.Errorf("empty topic")
	}
	if err := ident.CheckText("topic", t); err != nil {
		return err
	}
	if strings.TrimSpace(t) != t {
		return fmt.Errorf("topic %q has leading or trailing white space, which an ACL line cannot keep", t)
	}
	levels := strings.Split(t, "/")
	for i, l := range levels {
		if strings.ContainsAny(l, "+#") && len(l) > 1 {
			return fmt.Errorf("topic %q: '+' and '#' must be whole levels", t)
		}
		if l == "#" && i != len(levels)-1 {
			return fmt.Errorf("topic %q: '#' must be the last level", t)
		}
	}
	return nil
}

// ValidateTopicName checks a topic name: a filter without wildcards.
func ValidateTopicName(t string) error {
	if strings.ContainsAny(t, "+#") {
		return fmt.Errorf("topic %q: a topic name cannot hold '+' or '#'", t)
	}
	return ValidateTopicFilter(t)
}

// ParseACL reads an ACL file with mosquitto's rules. name is used in errors,
// which say file:line and the fix. An unknown keyword is an error, as in
// mosquitto, where it stops the broker.
func ParseACL(data []byte, name string) (*ACL, error) {
	a := &ACL{}
	var cur *ACLUser
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		// As mosquitto: trailing white space goes, and words are separated
		// by spaces only (a tab is part of a word, so "topic\tread" is
		// no keyword and stops mosquitto).
		line := strings.TrimRightFunc(raw, unicode.IsSpace)
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue
		}
		line = strings.TrimLeft(line, " ")
		kw, rest, _ := strings.Cut(line, " ")
		rest = strings.TrimSpace(rest)
		switch kw {
		case "user":
			if rest == "" {
				return nil, fmt.Errorf("%s:%d: 'user' needs a username (user alice)", name, n)
			}
			cur = a.AddUser(rest)
			if cur.Line == 0 {
				cur.Line = n
			}
		case "topic", "pattern":
			// "topic [ACCESS] TOPIC": with two words the first must be an
			// access type (mosquitto refuses to start on "topic READ x");
			// with one, it is the topic and the access is readwrite.
			access := ReadWrite
			topic := rest
			if first, after, two := strings.Cut(rest, " "); two {
				acc, ok := ParseAccess(first)
				if !ok {
					return nil, fmt.Errorf("%s:%d: invalid access type %q: use read, write, readwrite or deny (mosquitto refuses to start on this line)", name, n, first)
				}
				access, topic = acc, strings.TrimSpace(after)
			}
			if topic == "" {
				return nil, fmt.Errorf("%s:%d: %s line without a topic (%s [read|write|readwrite|deny] TOPIC)", name, n, kw, kw)
			}
			if err := ValidateTopicFilter(topic); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", name, n, err)
			}
			r := ACLRule{Access: access, Topic: topic, Line: n}
			switch {
			case kw == "pattern":
				a.Patterns = append(a.Patterns, r)
			case cur != nil:
				cur.Rules = append(cur.Rules, r)
			default:
				a.Anonymous = append(a.Anonymous, r)
			}
		default:
			return nil, fmt.Errorf("%s:%d: unknown keyword %q: ACL lines start with topic, pattern or user, separated by spaces (mosquitto refuses to start on this line)", name, n, kw)
		}
	}
	return a, nil
}

// ReadACL reads and parses an ACL file.
func ReadACL(path string) (*ACL, error) {
	data, err := fsx.ReadRegular(path, fsx.MaxEditSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &MissingFileError{Kind: "ACL", Path: path, Err: err}
	}
	if err != nil {
		return nil, fmt.Errorf("read ACL file: %w", err)
	}
	return ParseACL(data, path)
}

// Marshal renders the ACL: anonymous rules, patterns, then user blocks.
func (a *ACL) Marshal() []byte {
	var b bytes.Buffer
	rule := func(kw string, r ACLRule) {
		fmt.Fprintf(&b, "%s %s %s\n", kw, r.Access, r.Topic)
	}
	if len(a.Anonymous) > 0 {
		b.WriteString("# anonymous clients\n")
		for _, r := range a.Anonymous {
			rule("topic", r)
		}
		b.WriteString("\n")
	}
	if len(a.Patterns) > 0 {
		b.WriteString("# every client (%u = username, %c = client id)\n")
		for _, r := range a.Patterns {
			rule("pattern", r)
		}
		b.WriteString("\n")
	}
	for _, u := range a.Users {
		fmt.Fprintf(&b, "user %s\n", u.Name)
		for _, r := range u.Rules {
			rule("topic", r)
		}
		b.WriteString("\n")
	}
	return b.Bytes()
}

// TopicMatches reports whether topic matches the MQTT filter. Topics that
// start with '$' do not match filters that start with a wildcard.
func TopicMatches(filter, topic string) bool {
	return matchLevels(filter, topic, nil)
}

// matchLevels matches filter against topic level by level; with c set, a
// filter level "%c" or "%u" stands for the client id or username. It does
// not allocate.
func matchLevels(filter, topic string, c *Client) bool {
	if topic != "" && topic[0] == '$' && filter != "" && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if c != nil {
			switch fl {
			case "%c":
				fl = c.ClientID
			case "%u":
				fl = c.Username
			}
		}
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// "a/#" matches "a"
			return frest == "#"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}

// Client identifies a client for an ACL check.
type Client struct {
	Username  string
	Anonymous bool // no username
	ClientID  string
}

// SysWritable is mosquitto's decision (acl__check_dollar) for a publish to
// topic before any ACL: a topic starting with $SYS (case counts) is refused
// but for a bridge's notification $SYS/broker/connection/CLIENTID/state,
// which then goes to the ACL like any other topic.
func SysWritable(topic string) bool {
	if !strings.HasPrefix(topic, "$SYS") {
		return true
	}
	rest, ok := strings.CutPrefix(topic, "$SYS/broker/connection/")
	if !ok {
		return false
	}
	id, ok := strings.CutSuffix(rest, "/state")
	return ok && !strings.Contains(id, "/") // + matches an empty level too
}

// Allowed decides whether the client may read (receive) or write (publish)
// topic, with mosquitto 2.0's order: publishing to $SYS is denied, but for
// a bridge's connection state (SysWritable); the
// client's own rules (its user block, or the anonymous rules), denials first;
// then patterns, denials first; otherwise denied.
func (a *ACL) Allowed(c Client, topic string, access Access) bool {
	if access&Write != 0 && !SysWritable(topic) {
		return false
	}
	var rules []ACLRule
	if c.Anonymous {
		rules = a.Anonymous
	} else if u := a.User(c.Username); u != nil {
		rules = u.Rules
	}
	if d, ok := decide(rules, topic, access, nil); ok {
		return d
	}
	if len(a.Patterns) == 0 {
		return false
	}
	if strings.ContainsAny(c.ClientID, "+#") || strings.ContainsAny(c.Username, "+#") {
		return false // mosquitto refuses wildcard characters in identities used in patterns
	}
	d, _ := decide(a.Patterns, topic, access, &c)
	return d
}

// decide applies rules, denials first. ok is false when no rule matched.
// With subst set, rules are patterns: %c and %u levels stand for the
// client's id and username, and a pattern naming %u does not apply to a
// client without a username.
func decide(rules []ACLRule, topic string, access Access, subst *Client) (allowed, ok bool) {
	applies := func(r ACLRule) bool {
		return subst == nil || !subst.Anonymous || !strings.Contains(r.Topic, "%u")
	}
	for _, r := range rules {
		if r.Access == Deny && applies(r) && matchLevels(r.Topic, topic, subst) {
			return false, true
		}
	}
	for _, r := range rules {
		if r.Access == Deny || r.Access&access == 0 || !applies(r) {
			continue
		}
		if topic != "" && topic[0] == '$' && r.Topic[0] != '$' {
			continue
		}
		if matchLevels(r.Topic, topic, subst) {
			return true, true
		}
	}
	return false, false
}
