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
// Rules are written for each user block and for each of users (those
// users.json has) without one. Pattern lines are expanded for each of them
// (expandPattern): a pattern without %c, %u only as a whole level, becomes
// the topic with %u replaced by the user's name; EMQX's own ${username} is
// not used (it goes into the topic unescaped). Each user gets, in
// mosquitto's order, its block's deny lines (any action: mosquitto's deny
// refuses reading and writing), its allow lines, then the patterns' deny
// and allow lines. A rule is refused, at its file:line with the reason (and
// for a pattern the user it is refused for), when EMQX cannot hold it
// exactly:
//   - pattern lines with %c: the client id is the client's choice; %u
//     inside a level, or a username with '/' or making the topic start
//     with '$': mosquitto 2.0 and 2.1 differ.
//   - read lines whose last level is '+': the rule's '+' matches the '#' of
//     a subscription "a/#", which then receives a/b/c.
//   - deny lines that overlap a read line after them (EMQX checks the
//     subscription's filter, not the topics it delivers).
//   - write lines on $SYS: mosquitto never lets a client publish there.
//   - text acl.conf cannot carry as given (non-ASCII, '"', '\', "${").
//
// The topic lines before any user line are for anonymous clients, which
// EMQX with an authenticator does not admit: they are left out (they grant
// nothing there).
func EMQXACL(acl *ACL, file string, users []string) ([]byte, error) {
	var refused []string
	refuse := func(r ACLRule, kw, why string) {
		refused = append(refused, fmt.Sprintf("%s:%d: %s %s %s: %s", file, r.Line, kw, r.Access, r.Topic, why))
	}
	var patterns []ACLRule
	for _, r := range acl.Patterns {
		if err := patternUse(r); err != nil {
			refuse(r, "pattern", err.Error())
			continue
		}
		patterns = append(patterns, r)
	}
	// The users rules are written for: the ACL's blocks, then the other
	// users, who get only what patterns give them.
	blocks := append([]*ACLUser(nil), acl.Users...)
	seen := map[string]bool{}
	for _, u := range users {
		if acl.User(u) == nil && !seen[u] {
			seen[u] = true
			blocks = append(blocks, &ACLUser{Name: u})
		}
	}
	var b strings.Builder
	b.WriteString("%% EMQX 5.8 file authorization written by mqttctl config emqx: first match wins; nothing else is allowed.\n")
	for _, u := range blocks {
		// The patterns as this user's topics (expandPattern), keeping
		// their lines; orig is the pattern each came from.
		var pats []ACLRule
		orig := map[int]ACLRule{}
		for _, r := range patterns {
			topic, ok, err := expandPattern(r, u.Name)
			switch {
			case err != nil:
				refused = append(refused, patternRefusal(file, r, u.Name, topic, err.Error()))
			case ok:
				orig[len(pats)] = r
				pats = append(pats, ACLRule{Access: r.Access, Topic: topic, Line: r.Line})
			}
		}
		if len(u.Rules) == 0 && len(pats) == 0 {
			continue // nothing to grant: no_match = deny
		}
		user, err := erlString("username", u.Name)
		if err != nil {
			if u.Line > 0 {
				refused = append(refused, fmt.Sprintf("%s:%d: user %s: %v", file, u.Line, u.Name, err))
			} else {
				refused = append(refused, patternRefusal(file, orig[0], u.Name, "", err.Error()))
			}
			continue
		}
		// mosquitto's order: the user's denials, its allows, then the
		// patterns' denials and allows. A subscription is checked by its
		// filter only, so a denial must not overlap a read rule after it.
		userDenies, userAllows := emqxRules(user, u.Rules, append(append([]ACLRule(nil), u.Rules...), pats...), func(r ACLRule, why string) {
			refuse(r, "topic", why)
		})
		var patDenies, patAllows []string
		for i, r := range pats {
			d, a := emqxRules(user, []ACLRule{r}, pats, func(_ ACLRule, why string) {
				refused = append(refused, patternRefusal(file, orig[i], u.Name, r.Topic, why))
			})
			patDenies, patAllows = append(patDenies, d...), append(patAllows, a...)
		}
		if u.Line > 0 {
			fmt.Fprintf(&b, "%%%% user %s, ACL line %d\n", user, u.Line)
		} else {
			fmt.Fprintf(&b, "%%%% user %s, no user block\n", user)
		}
		b.WriteString(strings.Join(userDenies, "") + strings.Join(userAllows, ""))
		if len(pats) > 0 {
			fmt.Fprintf(&b, "%%%% the patterns for user %s\n", user)
			b.WriteString(strings.Join(patDenies, "") + strings.Join(patAllows, ""))
		}
	}
	if len(refused) > 0 {
		return nil, fmt.Errorf("%s: EMQX cannot enforce these rules exactly, and leaving them out or widening them would grant what the ACL does not; nothing written", strings.Join(refused, "; "))
	}
	b.WriteString("{deny, all}.\n")
	return []byte(b.String()), nil
}

// emqxRules writes rules for user (an Erlang string), denials and allows
// apart; a rule EMQX cannot hold is passed to refuse with the reason. reads
// are the read rules a denial must not overlap.
func emqxRules(user string, rules, reads []ACLRule, refuse func(r ACLRule, why string)) (denies, allows []string) {
	for _, r := range rules {
		topic, err := erlString("topic", r.Topic)
		switch {
		case err != nil:
			refuse(r, err.Error())
			continue
		case r.Access&Read != 0 && emqxPlusTakesHash(r.Topic):
			refuse(r, "EMQX checks a subscription by its filter, and this rule's '+' before the end matches the '#' of a subscription such as 'a/#', which then receives levels the rule does not grant; list the topics, or grant a '#' rule if all of them may be read")
			continue
		case r.Access == Deny && overlapsRead(r.Topic, reads):
			refuse(r, "EMQX checks a subscription by its filter, not the topics it delivers, so a subscription this user's read lines allow (such as the read line's own filter) would still receive the topics this deny takes away; remove the deny line, or narrow the read lines so they do not grant it")
			continue
		case strings.HasPrefix(r.Topic, "eq "):
			// emqx_authz_rule compiles "eq T" to an exact match of T.
			refuse(r, "EMQX reads a topic beginning with \"eq \" as an exact-match rule for the rest (\"eq secret/#\" would grant the filter secret/#), not as the literal topic mosquitto matches; rename the topic")
			continue
		case r.Access&Write != 0 && strings.HasPrefix(r.Topic, "$SYS"):
			refuse(r, "mosquitto never lets a client publish to $SYS, EMQX would")
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
	return denies, allows
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
