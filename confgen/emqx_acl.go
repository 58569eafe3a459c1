package confgen

import (
	"fmt"
	"strings"
)

// EMQXACL translates acl into EMQX 5.8's file authorization (acl.conf,
// Erlang terms read with file:consult), exactly or not at all. EMQX takes
// the first rule that matches the client (here {user, NAME}), the action
// (publish, subscribe, all) and the topic, and a subscription is checked on
// its filter only (emqx_topic:match(Filter, RuleTopic), which reads a '#' or
// '+' of the subscription as a plain word); the file ends in {deny, all} and
// emqx.conf sets no_match = deny.
//
// Each user block becomes its deny lines (any action: mosquitto's deny
// refuses reading and writing), then its allow lines, in the file's order.
// A rule is refused, at its file:line with the reason, when EMQX cannot
// hold it exactly:
//   - pattern lines: EMQX puts ${clientid} and ${username} into the topic
//     unescaped, so a client id "#" or "a/b" would widen the rule; and
//     mosquitto gives nothing from patterns to a client whose id holds '+'
//     or '#', which EMQX cannot tell.
//   - read lines whose last level is '+': the rule's '+' matches the '#' of
//     a subscription "a/#", which then receives a/b/c.
//   - write lines on $SYS: mosquitto never lets a client publish there.
//   - text acl.conf cannot carry as given (non-ASCII, '"', '\', "${").
//
// The topic lines before any user line are for anonymous clients, which
// EMQX with an authenticator does not admit: they are left out (they grant
// nothing there).
func EMQXACL(acl *ACL, file string) ([]byte, error) {
	var refused []string
	refuse := func(r ACLRule, kw, why string) {
		refused = append(refused, fmt.Sprintf("%s:%d: %s %s %s: %s", file, r.Line, kw, r.Access, r.Topic, why))
	}
	for _, r := range acl.Patterns {
		refuse(r, "pattern", "EMQX puts the client id and username into the topic unescaped (a client id '#' or 'a/b' would widen it), and cannot tell (as mosquitto does) that a client id holding '+' or '#' gets nothing from patterns; write a topic line in each user's block instead")
	}
	var b strings.Builder
	b.WriteString("%% EMQX 5.8 file authorization written by mqttctl config emqx: first match wins; nothing else is allowed.\n")
	for _, u := range acl.Users {
		user, err := erlString("username", u.Name)
		if err != nil {
			refused = append(refused, fmt.Sprintf("%s:%d: user %s: %v", file, u.Line, u.Name, err))
			continue
		}
		var denies, allows []string
		for _, r := range u.Rules {
			topic, err := erlString("topic", r.Topic)
			switch {
			case err != nil:
				refuse(r, "topic", err.Error())
				continue
			case r.Access&Read != 0 && emqxPlusTakesHash(r.Topic):
				refuse(r, "topic", "EMQX checks a subscription by its filter, and this rule's '+' before the end matches the '#' of a subscription such as 'a/#', which then receives levels the rule does not grant; list the topics, or grant a '#' rule if all of them may be read")
				continue
			case r.Access == Deny && overlapsRead(r.Topic, u.Rules):
				refuse(r, "topic", "EMQX checks a subscription by its filter, not the topics it delivers, so a subscription this user's read lines allow (such as the read line's own filter) would still receive the topics this deny takes away; remove the deny line, or narrow the read lines so they do not grant it")
				continue
			case r.Access&Write != 0 && strings.HasPrefix(r.Topic, "$SYS"):
				refuse(r, "topic", "mosquitto never lets a client publish to $SYS, EMQX would")
				continue
			}
			switch r.Access {
			case Deny:
				denies = append(denies, fmt.Sprintf("{deny, {user, %s}, all, [%s]}.\n", user, topic))
			case Read:
				allows = append(allows, fmt.Sprintf("{allow, {user, %s}, subscribe, [%s]}.\n", user, topic))
			case Write:
				allows = append(allows, fmt.Sprintf("{allow, {user, %s}, publish, [%s]}.\n", user, topic))
			default:
				allows = append(allows, fmt.Sprintf("{allow, {user, %s}, all, [%s]}.\n", user, topic))
			}
		}
		fmt.Fprintf(&b, "%%%% user %s, ACL line %d\n", user, u.Line)
		b.WriteString(strings.Join(denies, "") + strings.Join(allows, ""))
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%s: EMQX cannot enforce these rules exactly, and leaving them out or widening them would grant what the ACL does not; nothing written", strings.Join(refused, "; "))
	}
	b.WriteString("{deny, all}.\n")
	return []byte(b.String()), nil
}

// emqxPlusTakesHash reports whether a subscription ending in '#' can match
// a '+' of filter in EMQX (emqx_topic:match reads the subscription's '#' as
// a word, which '+' takes) while receiving topics filter does not grant:
// the '+' is the last level, or only '#' follows it and levels come before
// it ("a/+/#" lets "a/#" in, which receives "a"). "+/#" grants what "#"
// does.
func emqxPlusTakesHash(filter string) bool {
	if filter == "+/#" {
		return false
	}
	return filter == "+" || strings.HasSuffix(filter, "/+") || strings.HasSuffix(filter, "/+/#")
}

// overlapsRead reports whether some topic matches both deny and one of the
// rules that grant reading.
func overlapsRead(deny string, rules []ACLRule) bool {
	for _, r := range rules {
		if r.Access&Read != 0 && filtersOverlap(deny, r.Topic) {
			return true
		}
	}
	return false
}

// filtersOverlap reports whether some topic matches both MQTT filters
// (a filter starting with a wildcard matches no topic starting with '$').
func filtersOverlap(a, b string) bool {
	dollar := func(f string) bool { return strings.HasPrefix(f, "$") }
	wild := func(f string) bool { return strings.HasPrefix(f, "+") || strings.HasPrefix(f, "#") }
	if dollar(a) && wild(b) || dollar(b) && wild(a) {
		return false
	}
	x, y := strings.Split(a, "/"), strings.Split(b, "/")
	for i := 0; ; i++ {
		switch {
		case i < len(x) && x[i] == "#", i < len(y) && y[i] == "#":
			return true
		case i == len(x) || i == len(y):
			return len(x) == len(y)
		case x[i] != "+" && y[i] != "+" && x[i] != y[i]:
			return false
		}
	}
}
