package confgen

import (
	"fmt"
	"strings"
)

// Pattern lines for brokers that have no %u of their own (RabbitMQ, EMQX):
// a pattern is expanded, at generation time, into a literal topic for each
// user the generated configuration has, as if that user's block held it.
// What mosquitto does with a pattern (2.0's security_default.c and 2.1's
// plugins/acl-file/acl_check.c, checked against mosquitto 2.0.11):
//   - after the client's own rules, which decide first; denials first;
//   - nothing from any pattern for a username holding '+' or '#' (nor for a
//     client id holding them, which the other brokers cannot see: they give
//     such a client what its username gets from patterns, that is what the
//     same user gets with any other client id);
//   - a %u pattern does not apply to a client without a username.
//
// Where mosquitto 2.0 and 2.1 differ the pattern is refused: 2.0 replaces
// %u as text (inside a level, and a username "a/b" adds a level), 2.1 only
// as a whole level and only by a username without '/'.

// patternUse says what a pattern line is to the translation: an error for a
// line no user can get exactly (%c, %u inside a level), else nil.
func patternUse(r ACLRule) error {
	if strings.Contains(r.Topic, "%c") {
		return fmt.Errorf("the client id (%%c) is chosen by the client, and the broker would put it into the rule unescaped, so a client id such as '#', 'a/b' or '.*' would widen it; use %%u (the username, which is the certificate's CN with use_identity_as_username), or write a topic line in each user's block")
	}
	for _, l := range strings.Split(r.Topic, "/") {
		if l != "%u" && strings.Contains(l, "%u") {
			return fmt.Errorf("level %q: mosquitto 2.0 replaces %%u inside a level, 2.1 only a whole level (they grant different topics); make %%u a level of its own, e.g. devices/%%u/#", l)
		}
	}
	return nil
}

// expandPattern is pattern r for user, as a topic of the user's block.
// ok is false when mosquitto gives user nothing from patterns (a username
// holding '+' or '#'). err says why it cannot be expanded exactly.
func expandPattern(r ACLRule, user string) (topic string, ok bool, err error) {
	if strings.ContainsAny(user, "+#") {
		return "", false, nil
	}
	if !strings.Contains(r.Topic, "%u") {
		return r.Topic, true, nil
	}
	switch {
	case user == "":
		return "", false, fmt.Errorf("the username is empty: mosquitto 2.0 puts nothing for %%u, 2.1 matches nothing")
	case strings.Contains(user, "/"):
		return "", false, fmt.Errorf("the username holds '/': mosquitto 2.0 makes %%u several levels, 2.1 matches nothing; rename the user or give it topic lines in its block")
	}
	ls := strings.Split(r.Topic, "/")
	for i, l := range ls {
		if l == "%u" {
			ls[i] = user
		}
	}
	topic = strings.Join(ls, "/")
	if topic[0] == '$' && r.Topic[0] != '$' {
		return "", false, fmt.Errorf("%q starts with '$': mosquitto 2.0 then matches it against $ topics, 2.1 never", topic)
	}
	if err := ValidateTopicFilter(topic); err != nil {
		return "", false, err
	}
	return topic, true, nil
}

// patternRefusal formats a refusal of pattern r for user.
func patternRefusal(file string, r ACLRule, user, topic, why string) string {
	if topic == "" {
		return fmt.Sprintf("%s:%d: pattern %s %s: for user %q: %s", file, r.Line, r.Access, r.Topic, user, why)
	}
	return fmt.Sprintf("%s:%d: pattern %s %s: for user %q (%s): %s", file, r.Line, r.Access, r.Topic, user, topic, why)
}
