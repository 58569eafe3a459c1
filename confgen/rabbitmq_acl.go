package confgen

import (
	"fmt"
	"regexp"
	"strings"
)

// RabbitTopicPermission is one user's topic permissions on amq.topic: the
// regular expressions RabbitMQ matches routing keys against (RabbitMQ's
// MQTT plugin turns each '/' of a topic into '.' and each '+' into '*').
type RabbitTopicPermission struct {
	Read, Write string
}

// rabbitNothing is a regular expression that matches no routing key (not
// even the empty one, which "^$" would, and "a\n", which PCRE's "$" also
// takes).
const rabbitNothing = `[^\s\S]`

// RabbitTopicPermissions translates acl into topic permissions for each of
// users, exactly or not at all. RabbitMQ 3.10 matches a topic permission
// like this (rabbit_auth_backend_internal and rabbit_mqtt_processor): it
// replaces {username}, {vhost} and {client_id} in the expression by the
// values, unescaped, turns the topic into a routing key ('/' to '.', '+' to
// '*'), and runs the expression on it with Erlang's re (PCRE). A publish is
// checked on its topic, a subscription on its filter; a subscriber then gets
// every message whose routing key the filter's binding matches, under the
// topic the routing key turns back into ('.' to '/', '*' to '+').
//
// Pattern lines are expanded for each of users (expandPattern): a pattern
// without %c, %u only as a whole level, gives each user the topic with %u
// replaced by its name, after its own rules, as mosquitto does; RabbitMQ's
// own {username} is not used (it goes into the expression unescaped).
//
// So a rule is refused, at its file:line with the reason (and for a
// pattern the user it is refused for), when RabbitMQ cannot hold it
// exactly:
//   - pattern lines with %c: the client id is the client's choice, and
//     RabbitMQ's {client_id} goes into the expression unescaped (client id
//     ".*" matches every device, "x|.*" every topic); %u inside a level, or
//     a username with '/': mosquitto 2.0 and 2.1 differ.
//   - deny lines, and deny patterns: RabbitMQ has one allow expression per
//     direction.
//   - a topic holding '.' or '*': 'a.b' and 'a/b' are one routing key, and a
//     '*' level of a subscription is a wildcard in RabbitMQ (for a pattern,
//     also when the username brings them).
//   - a topic starting with '$': RabbitMQ's wildcard subscriptions match
//     such topics, MQTT's do not.
//
// The topic lines before any user line are for anonymous clients, which the
// generated configuration does not admit: they grant nothing and are left
// out. A user without a block gets only what patterns give it, as in
// mosquitto.
func RabbitTopicPermissions(acl *ACL, file string, users []string) (map[string]RabbitTopicPermission, error) {
	var refused []string
	refuse := func(r ACLRule, kw, why string) {
		refused = append(refused, fmt.Sprintf("%s:%d: %s %s %s: %s", file, r.Line, kw, r.Access, r.Topic, why))
	}
	// why is the reason RabbitMQ cannot hold topic rule r exactly, or "".
	why := func(r ACLRule, topic string) string {
		switch {
		case r.Access == Deny:
			return "RabbitMQ has one allow expression per direction, so a deny cannot be expressed (left out, RabbitMQ would grant what it denies); remove the deny line, or narrow the allow lines so they do not grant it"
		case strings.Contains(topic, "."):
			return "RabbitMQ turns each '/' of a topic into '.', so 'a.b' and 'a/b' are the same routing key and this rule would also grant the topics with '/' for '.'"
		case strings.Contains(topic, "*"):
			return "RabbitMQ reads a '*' level of a subscription as a wildcard (it turns '+' into '*'), so this rule would grant a wildcard subscription"
		case strings.HasPrefix(topic, "$"):
			return "RabbitMQ's '#' and '+' subscriptions also match topics starting with '$' (MQTT keeps them apart), and RabbitMQ has no $SYS"
		}
		return ""
	}
	for _, u := range acl.Users {
		for _, r := range u.Rules {
			if w := why(r, r.Topic); w != "" {
				refuse(r, "topic", w)
			}
		}
	}
	// Each pattern becomes, for each user, a topic of its block (see
	// expandPattern): patterns only add to what the user's own rules grant,
	// and there are no denials.
	patterns := map[string][]ACLRule{}
	for _, r := range acl.Patterns {
		if err := patternUse(r); err != nil {
			refuse(r, "pattern", err.Error())
			continue
		}
		if r.Access == Deny {
			refuse(r, "pattern", why(r, r.Topic))
			continue
		}
		for _, u := range users {
			topic, ok, err := expandPattern(r, u)
			switch {
			case err != nil:
				refused = append(refused, patternRefusal(file, r, u, topic, err.Error()))
			case !ok:
			case why(r, topic) != "":
				refused = append(refused, patternRefusal(file, r, u, topic, why(r, topic)))
			default:
				patterns[u] = append(patterns[u], ACLRule{Access: r.Access, Topic: topic, Line: r.Line})
			}
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%s: RabbitMQ cannot enforce these rules exactly, and leaving them out or widening them would grant what the ACL does not; nothing written", strings.Join(refused, "; "))
	}
	perms := map[string]RabbitTopicPermission{}
	for _, u := range users {
		var r, w []string
		var rules []ACLRule
		if ub := acl.User(u); ub != nil {
			rules = ub.Rules
		}
		for _, rule := range append(append([]ACLRule(nil), rules...), patterns[u]...) {
			re := rabbitTopicRegexp(rule.Topic)
			if rule.Access&Read != 0 {
				r = append(r, re)
			}
			if rule.Access&Write != 0 {
				w = append(w, re)
			}
		}
		perms[u] = RabbitTopicPermission{Read: rabbitAlternatives(r), Write: rabbitAlternatives(w)}
	}
	return perms, nil
}

// rabbitAlternatives anchors the alternatives at both ends. "\z", not "$":
// PCRE's "$" also matches before a final newline.
func rabbitAlternatives(res []string) string {
	if len(res) == 0 {
		return rabbitNothing
	}
	return `^(?:` + strings.Join(res, "|") + `)\z`
}

// rabbitTopicRegexp turns an MQTT filter that RabbitTopicPermissions
// accepted (no '.', '*' or leading '$') into an expression on routing keys.
// Only constructs that mean the same in PCRE and Go's regexp are used, so
// the tests can evaluate them with Go:
//   - '+' is one level that is not '#' (a subscription "a/#" is the routing
//     key "a.#", which "a/+" must not grant), and at the start not one
//     beginning with '$';
//   - '#' is the rest: nothing, or '.' and anything ('[\s\S]', since '.'
//     skips newlines); at the start anything not beginning with '$'.
func rabbitTopicRegexp(filter string) string {
	var b strings.Builder
	for i, l := range strings.Split(filter, "/") {
		switch {
		case l == "#" && i == 0:
			b.WriteString(`[^$][\s\S]*`)
			return b.String()
		case l == "#":
			b.WriteString(`(?:\.[\s\S]*)?`)
			return b.String()
		case i > 0:
			b.WriteString(`\.`)
		}
		switch {
		case l == "+" && i == 0:
			b.WriteString(`(?:[^.#$][^.]*|#[^.]+)?`)
		case l == "+":
			b.WriteString(`(?:[^.#][^.]*|#[^.]+)?`)
		default:
			b.WriteString(regexp.QuoteMeta(l))
		}
	}
	return b.String()
}
