package confgen

import (
	mrand "math/rand"
	"strings"
)

// randomTopic makes a topic of 1 to 3 of levels for the translation
// property tests; a filter gets '+' levels (one in plusOneIn) and a final
// '#' as often. MQTT has no empty topic: "" becomes "e".
func randomTopic(r *mrand.Rand, levels []string, filter bool, plusOneIn int) string {
	n := 1 + r.Intn(3)
	var ls []string
	for i := 0; i < n; i++ {
		l := levels[r.Intn(len(levels))]
		if filter {
			switch r.Intn(plusOneIn) {
			case 0:
				l = "+"
			case 1:
				if i == n-1 {
					l = "#"
				}
			}
		}
		ls = append(ls, l)
	}
	if t := strings.Join(ls, "/"); t != "" {
		return t
	}
	return "e"
}

// mosquittoAnswer is the reference the translation property tests judge
// by: the project's ACL matcher (checked against mosquitto in the
// differential tests), with one allowance. mosquitto gives nothing from
// patterns to a client whose id holds '+' or '#'; RabbitMQ and EMQX cannot
// see the client id, so such a client gets what its user gets with another
// client id (c1), never more. viaPattern counts the grants only a pattern
// gives.
func mosquittoAnswer(acl *ACL, viaPattern *int) func(c Client, topic string, access Access) bool {
	noPatterns := &ACL{Anonymous: acl.Anonymous, Users: acl.Users}
	return func(c Client, topic string, access Access) bool {
		if strings.ContainsAny(c.ClientID, "+#") {
			c.ClientID = "c1"
		}
		if !acl.Allowed(c, topic, access) {
			return false
		}
		if !noPatterns.Allowed(c, topic, access) {
			*viaPattern++
		}
		return true
	}
}

// aclRuleTopics lists the topics of an ACL's patterns and user rules, from
// which the property tests make topics near the rules' edges.
func aclRuleTopics(acl *ACL) []string {
	var out []string
	for _, p := range acl.Patterns {
		out = append(out, p.Topic)
	}
	for _, u := range acl.Users {
		for _, x := range u.Rules {
			out = append(out, x.Topic)
		}
	}
	return out
}
