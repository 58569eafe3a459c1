package confgen

import (
	"fmt"
	mrand "math/rand"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// The model of EMQX 5.8's file authorization (emqx_authz_file,
// emqx_authz_rule, emqx_topic:match): rules in order, the first whose
// client, action and topic match decides; no match is deny (no_match =
// deny). A publish is checked on its topic, a subscription on its filter
// only, with the filter's words taken as plain words against the rule's.

type emqxRule struct {
	allow  bool
	user   string // "" for all
	action string // publish, subscribe, all
	topics []string
	bare   bool // {deny, all}
}

var emqxRuleLine = regexp.MustCompile(`^\{(allow|deny), \{user, "([^"\\]*)"\}, (publish|subscribe|all), \["([^"\\]*)"\]\}\.$`)

// parseEMQXACL reads the subset of acl.conf EMQXACL writes; anything else
// fails the test.
func parseEMQXACL(t *testing.T, data string) []emqxRule {
	t.Helper()
	var rules []emqxRule
	for _, l := range strings.Split(strings.TrimSuffix(data, "\n"), "\n") {
		switch m := emqxRuleLine.FindStringSubmatch(l); {
		case strings.HasPrefix(l, "%%"):
		case l == "{deny, all}.":
			rules = append(rules, emqxRule{bare: true})
		case m != nil:
			rules = append(rules, emqxRule{allow: m[1] == "allow", user: m[2], action: m[3], topics: []string{m[4]}})
		default:
			t.Fatalf("acl.conf line %q is not one EMQXACL writes:\n%s", l, data)
		}
	}
	return rules
}

// emqxTopicMatch is emqx_topic:match(Name, Filter).
func emqxTopicMatch(name, filter string) bool {
	if strings.HasPrefix(name, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	n, f := strings.Split(name, "/"), strings.Split(filter, "/")
	var match func(n, f []string) bool
	match = func(n, f []string) bool {
		switch {
		case len(n) == 0 && len(f) == 0:
			return true
		case len(n) > 0 && len(f) > 0 && n[0] == f[0]:
			return match(n[1:], f[1:])
		case len(n) > 0 && len(f) > 0 && f[0] == "+":
			return match(n[1:], f[1:])
		case len(f) == 1 && f[0] == "#":
			return true
		}
		return false
	}
	return match(n, f)
}

func emqxAuthorize(rules []emqxRule, user, action, topic string) bool {
	for _, r := range rules {
		if r.bare {
			return r.allow
		}
		if r.user != user || r.action != "all" && r.action != action {
			continue
		}
		for _, f := range r.topics {
			if emqxTopicMatch(topic, f) {
				return r.allow
			}
		}
	}
	return false // no_match = deny
}

var (
	emqxLevels = []string{"a", "b", "c", "$s", "$SYS", "", "x|.*", "é", `q"t`, "${clientid}", "alice", "bob"}
	emqxUsers  = []string{"alice", "bob", ".*", "x|.*", "a+b", "#", "é", "a/b", "$s", `q"t`, "${x}"}
	// emqxCleanUsers are the users a %u pattern can be expanded for
	// (mosquitto gives "a+b" and "#" nothing from patterns).
	emqxCleanUsers = emqxUsers[:6]
)

func emqxTopic(r *mrand.Rand, filter bool) string { return randomTopic(r, emqxLevels, filter, 5) }

// TestEMQXACLSound: whatever the generated acl.conf lets a client do in
// EMQX, the mosquitto ACL lets it do too (ACL.Allowed): a publish on its
// topic; a subscription on every topic it then receives. Over generated
// ACLs, usernames, client ids, topics and filters; three ACLs in four hold
// only what EMQXACL can translate. The ACLs hold %u patterns, expanded for
// usernames with awkward characters ('+', '#', '/', '$', '"', non-ASCII,
// "${"), and the count of grants only a pattern gives shows the expansion
// is exercised. The one allowance: mosquitto gives nothing from patterns to
// a client whose id holds '+' or '#', which EMQX cannot see, so such a
// client is held to what its user gets with another client id.
func TestEMQXACLSound(t *testing.T) {
	aclFile := filepath.Join(t.TempDir(), "acl")
	r := mrand.New(mrand.NewSource(17))
	const rounds = 400
	translated, pubs, delivered, viaPattern := 0, 0, 0, 0
	var holes []string
	accesses := []string{"read", "write", "readwrite", "deny"}
	for round := 0; round < rounds; round++ {
		clean := round%4 != 3
		// The users users.json has: those a %u pattern can be expanded
		// for, and in every other round one it cannot.
		users := emqxCleanUsers
		if awkward := emqxUsers[len(emqxCleanUsers):]; round%2 == 1 {
			users = append(slices.Clone(users), awkward[r.Intn(len(awkward))])
		}
		var b strings.Builder
		cur, prev := "", "" // the block's user, the last line's topic
		for i, n := 0, 1+r.Intn(6); i < n; i++ {
			if i == 0 || r.Intn(3) == 0 {
				names := emqxUsers
				if clean {
					names = users
				}
				cur = names[r.Intn(len(names))]
				fmt.Fprintf(&b, "user %s\n", cur)
			}
			topic, access := emqxTopic(r, true), accesses[r.Intn(len(accesses))]
			for clean && (strings.ContainsAny(topic, `"é{`) || strings.HasPrefix(topic, "$SYS") || access != "write" && access != "deny" && strings.HasSuffix("/"+topic, "/+")) {
				topic = emqxTopic(r, true)
			}
			if prev != "" && r.Intn(2) == 0 { // rules on one tree overlap
				topic = prev
			}
			prev = topic
			ls := strings.Split(topic, "/")
			k := r.Intn(len(ls))
			kw := "topic"
			switch r.Intn(3) {
			case 0: // a pattern: %u (or, not clean, %c or x%u) at some level
				ls[k] = "%u"
				if !clean {
					ls[k] = []string{"%c", "%u", "x%u"}[r.Intn(3)]
				}
				if ls[len(ls)-1] != "#" && r.Intn(2) == 0 {
					ls = append(ls, "#")
				}
				kw = "pattern"
			case 1: // the user's own name, as a %u pattern would put it
				ls[k] = cur
			}
			fmt.Fprintf(&b, "%s %s %s\n", kw, access, strings.Join(ls, "/"))
		}
		text := b.String()
		acl, err := ParseACL([]byte(text), aclFile)
		if err != nil {
			continue
		}
		out, err := EMQXACL(acl, aclFile, users)
		if err != nil {
			if !strings.Contains(err.Error(), aclFile+":") {
				t.Fatalf("refused without naming a line: %v", err)
			}
			continue
		}
		translated++
		rules := parseEMQXACL(t, string(out))
		var topics, filters []string
		for i := 0; i < 200; i++ {
			topics = append(topics, emqxTopic(r, false))
			filters = append(filters, emqxTopic(r, true))
		}
		// and topics and filters from the rules, %u filled with a
		// username or a level (those MQTT takes: a username "#" makes
		// "#/a").
		ruleTopics := aclRuleTopics(acl)
		for _, rt := range ruleTopics {
			for i := 0; i < 20; i++ {
				var tl, fl []string
				for _, l := range strings.Split(rt, "/") {
					f := l
					switch l {
					case "%u": // often the round's last user, the awkward one
						l = users[r.Intn(len(users))]
						switch r.Intn(3) {
						case 0:
							l = emqxLevels[r.Intn(len(emqxLevels))]
						case 1:
							l = users[len(users)-1]
						}
						f = l
					case "+", "#":
						l = emqxLevels[r.Intn(len(emqxLevels))]
					}
					tl, fl = append(tl, l), append(fl, f)
				}
				if topic := strings.Join(tl, "/"); ValidateTopicName(topic) == nil {
					topics = append(topics, topic)
				}
				if filter := strings.Join(fl, "/"); ValidateTopicFilter(filter) == nil {
					filters = append(filters, filter)
				}
			}
		}
		allowed := mosquittoAnswer(acl, &viaPattern)
		for _, u := range emqxUsers {
			for _, cid := range []string{"c1", "#", "a/b"} {
				c := Client{Username: u, ClientID: cid}
				for _, topic := range topics {
					if emqxAuthorize(rules, u, "publish", topic) {
						pubs++
						if !allowed(c, topic, Write) {
							holes = append(holes, fmt.Sprintf("EMQX lets user %q publish %q, mosquitto does not.\nACL:\n%sacl.conf:\n%s", u, topic, text, out))
						}
					}
				}
				for _, f := range filters {
					if !emqxAuthorize(rules, u, "subscribe", f) {
						continue
					}
					for _, topic := range topics {
						if TopicMatches(f, topic) {
							delivered++
							if !allowed(c, topic, Read) {
								holes = append(holes, fmt.Sprintf("EMQX lets user %q subscribe %q and so receive %q, mosquitto does not.\nACL:\n%sacl.conf:\n%s", u, f, topic, text, out))
							}
						}
					}
				}
			}
		}
	}
	for i, h := range holes {
		if i == 4 {
			break
		}
		t.Error(h)
	}
	if len(holes) > 0 {
		t.Errorf("%d holes in all", len(holes))
		if os.Getenv("EMQX_HOLES") != "" {
			os.WriteFile(os.Getenv("EMQX_HOLES"), []byte(strings.Join(holes, "\n----\n")), 0o600)
		}
	}
	t.Logf("%d of %d ACLs translated; %d publishes and %d deliveries allowed, each also allowed by the ACL (%d of them by a pattern only)", translated, rounds, pubs, delivered, viaPattern)
	if translated < rounds/4 || pubs < 500 || delivered < 500 || viaPattern < 500 {
		t.Errorf("the generator exercised too little: %d ACLs translated, %d publishes, %d deliveries, %d by a pattern", translated, pubs, delivered, viaPattern)
	}
}

// TestEMQXACLRefused: each rule EMQX cannot hold exactly is refused at its
// line with the reason.
func TestEMQXACLRefused(t *testing.T) {
	for _, tc := range []struct{ acl, want string }{
		{"user alice\ntopic write a\npattern readwrite devices/%c/#\n", "acl:3: pattern readwrite devices/%c/#: the client id (%c) is chosen by the client"},
		{"pattern readwrite devices/%c/#\n", "use %u (the username, which is the certificate's CN with use_identity_as_username)"},
		{"pattern write devices-%u/#\n", `acl:1: pattern write devices-%u/#: level "devices-%u": mosquitto 2.0 replaces %u inside a level, 2.1 only a whole level`},
		{"pattern write devices/%u/#\n", `acl:1: pattern write devices/%u/#: for user "a/b": the username holds '/': mosquitto 2.0 makes %u several levels, 2.1 matches nothing`},
		{"pattern read %u/#\n", `acl:1: pattern read %u/#: for user "$s": "$s/#" starts with '$'`},
		{"pattern write devices/%u\n", `acl:1: pattern write devices/%u: for user "é": username "é" holds 'é'`},
		{"pattern write devices/%u\n", `acl:1: pattern write devices/%u: for user "q\"t": username "q\"t" holds '"'`},
		{"pattern read devices/%u/+\n", `acl:1: pattern read devices/%u/+: for user "alice" (devices/alice/+): EMQX checks a subscription by its filter`},
		{"pattern write $SYS/%u\n", `acl:1: pattern write $SYS/%u: for user "alice" ($SYS/alice): mosquitto never lets a client publish to $SYS`},
		{"user alice\ntopic deny devices/alice/secret\npattern read devices/%u/#\n", "acl:2: topic deny devices/alice/secret: EMQX checks a subscription by its filter, not the topics it delivers"},
		{"pattern deny devices/%u/secret\npattern read devices/%u/#\n", `acl:1: pattern deny devices/%u/secret: for user "alice" (devices/alice/secret): EMQX checks a subscription by its filter, not the topics it delivers`},
		{"user alice\ntopic read sensors/+\n", "acl:2: topic read sensors/+: EMQX checks a subscription by its filter"},
		{"user alice\ntopic read a/+/#\n", "acl:2: topic read a/+/#: EMQX checks a subscription by its filter"},
		{"user alice\ntopic readwrite #\ntopic deny secret/#\n", "acl:3: topic deny secret/#: EMQX checks a subscription by its filter, not the topics it delivers"},
		{"user alice\ntopic write $SYS/x\n", "acl:2: topic write $SYS/x: mosquitto never lets a client publish to $SYS"},
		{"user alice\ntopic write a/${clientid}\n", `acl:2: topic write a/${clientid}: topic "a/${clientid}" holds "${"`},
		{"user alice\ntopic write a/\"b\n", `acl:2: topic write a/"b: topic "a/\"b" holds '"'`},
		{"user élise\ntopic write a\n", `acl:1: user élise: username "élise" holds 'é'`},
		{"user alice\ntopic readwrite eq secret/#\n", `acl:2: topic readwrite eq secret/#: EMQX reads a topic beginning with "eq "`},
		{"pattern read eq x/%u/#\n", `EMQX reads a topic beginning with "eq "`},
	} {
		acl, err := ParseACL([]byte(tc.acl), "acl")
		if err != nil {
			t.Fatal(err)
		}
		users := []string{"alice"}
		if strings.Contains(tc.want, "for user") {
			users = append(users, "a/b", "$s", "é", `q"t`)
		}
		if _, err := EMQXACL(acl, "acl", users); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.acl, err, tc.want)
		}
	}
	acl, _ := ParseACL([]byte("topic read public/#\nuser alice\ntopic write devices/alice/#\ntopic deny devices/alice/secret\ntopic write sensors/+/temp\ntopic readwrite status/+/x\n"), "acl")
	got, err := EMQXACL(acl, "acl", []string{"alice"})
	if err != nil {
		t.Fatal(err)
	}
	want := `%% EMQX 5.8 file authorization written by mqttctl config emqx: first match wins; nothing else is allowed.
%% user "alice", ACL line 2
{deny, {user, "alice"}, all, ["devices/alice/secret"]}.
{allow, {user, "alice"}, publish, ["devices/alice/#"]}.
{allow, {user, "alice"}, publish, ["sensors/+/temp"]}.
{allow, {user, "alice"}, all, ["status/+/x"]}.
{deny, all}.
`
	if string(got) != want {
		t.Errorf("acl.conf:\n%s\nwant:\n%s", got, want)
	}
}

// TestEMQXACLPattern: a %u pattern is written for each user, after its own
// rules (mosquitto's order), with its name for %u; a username holding '+'
// or '#' gets nothing from patterns.
func TestEMQXACLPattern(t *testing.T) {
	acl, err := ParseACL([]byte("user alice\ntopic readwrite public/#\npattern readwrite devices/%u/#\npattern deny admin/%u\n"), "acl")
	if err != nil {
		t.Fatal(err)
	}
	got, err := EMQXACL(acl, "acl", []string{"alice", "bob", "a+b", "#"})
	if err != nil {
		t.Fatal(err)
	}
	want := `%% EMQX 5.8 file authorization written by mqttctl config emqx: first match wins; nothing else is allowed.
%% user "alice", ACL line 1
{allow, {user, "alice"}, all, ["public/#"]}.
%% the patterns for user "alice"
{deny, {user, "alice"}, all, ["admin/alice"]}.
{allow, {user, "alice"}, all, ["devices/alice/#"]}.
%% user "bob", no user block
%% the patterns for user "bob"
{deny, {user, "bob"}, all, ["admin/bob"]}.
{allow, {user, "bob"}, all, ["devices/bob/#"]}.
{deny, all}.
`
	if string(got) != want {
		t.Errorf("acl.conf:\n%s\nwant:\n%s", got, want)
	}
	// A pattern's deny comes after the user's own reads, in mosquitto too:
	// no overlap to refuse.
	acl, _ = ParseACL([]byte("user alice\ntopic readwrite #\npattern deny devices/%u/secret\n"), "acl")
	if _, err := EMQXACL(acl, "acl", []string{"alice"}); err != nil {
		t.Errorf("a pattern deny under the user's own read: %v", err)
	}
}
