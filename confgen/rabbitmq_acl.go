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
// So a rule is refused, at its file:line with the reason, when RabbitMQ
// cannot hold it exactly:
//   - pattern lines: %c and %u would become {client_id} and {username},
//     values inserted into the expression unescaped (client id ".*" matches
//     every device, "x|.*" every topic); and mosquitto gives nothing from
//     patterns to a client whose id holds '+' or '#', which RabbitMQ cannot
//     tell.
//   - deny lines: RabbitMQ has one allow expression per direction.
//   - a topic holding '.' or '*': 'a.b' and 'a/b' are one routing key, and a
//     '*' level of a subscription is a wildcard in RabbitMQ.
//   - a topic starting with '$': RabbitMQ's wildcard subscriptions match
//     such topics, MQTT's do not.
//
// The topic lines before any user line are for anonymous clients, which the
// generated configuration does not admit: they grant nothing and are left
// out. A user without a block is denied every topic, as in mosquitto.
func RabbitTopicPermissions(acl *ACL, file string, users []string) (map[string]RabbitTopicPermission, error) {
	var refused []string
	refuse := func(r ACLRule, kw, why string) {
		refused = append(refused, fmt.Sprintf("%s:%d: %s %s %s: %s", file, r.Line, kw, r.Access, r.Topic, why))
	}
	for _, r := range acl.Patterns {
		switch {
		case strings.Contains(r.Topic, "%c"):
			refuse(r, "pattern", "RabbitMQ puts the client id into the expression unescaped, so a client id such as '.*' or 'x|.*' would match other topics; write a topic line in each user's block instead")
		case strings.Contains(r.Topic, "%u"):
			refuse(r, "pattern", "RabbitMQ puts the username into the expression unescaped, and cannot tell (as mosquitto does) that a client id holding '+' or '#' gets nothing from patterns; write a topic line in each user's block instead")
		default:
			refuse(r, "pattern", "mosquitto gives nothing from patterns to a client whose id holds '+' or '#', which RabbitMQ cannot tell; write a topic line in each user's block instead")
		}
	}
	check := func(r ACLRule) {
		switch {
		case r.Access == Deny:
			refuse(r, "topic", "RabbitMQ has one allow expression per direction, so a deny cannot be expressed (left out, RabbitMQ would grant what it denies); remove the deny line, or narrow the allow lines so they do not grant it")
		case strings.Contains(r.Topic, "."):
			refuse(r, "topic", "RabbitMQ turns each '/' of a topic into '.', so 'a.b' and 'a/b' are the same routing key and this rule would also grant the topics with '/' for '.'")
		case strings.Contains(r.Topic, "*"):
			refuse(r, "topic", "RabbitMQ reads a '*' level of a subscription as a wildcard (it turns '+' into '*'), so this rule would grant a wildcard subscription")
		case strings.HasPrefix(r.Topic, "$"):
			refuse(r, "topic", "RabbitMQ's '#' and '+' subscriptions also match topics starting with '$' (MQTT keeps them apart), and RabbitMQ has no $SYS")
		}
	}
	for _, u := range acl.Users {
		for _, r := range u.Rules {
			check(r)
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%s: RabbitMQ cannot enforce these rules exactly, and leaving them out or widening them would grant what the ACL does not; nothing written", strings.Join(refused, "; "))
	}
	perms := map[string]RabbitTopicPermission{}
	for _, u := range users {
		var r, w []string
		if ub := acl.User(u); ub != nil {
			for _, rule := range ub.Rules {
				re := rabbitTopicRegexp(rule.Topic)
				if rule.Access&Read != 0 {
					r = append(r, re)
				}
				if rule.Access&Write != 0 {
					w = append(w, re)
				}
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
