package confgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	mrand "math/rand"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// writeServerCert writes a self-signed server certificate for hosts (and
// its key file, empty) as servers/NAME.crt of pkiDir.
func writeServerCert(t testing.TB, pkiDir, name string, hosts ...string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(pkiDir, "servers")
	os.MkdirAll(dir, 0o700)
	os.WriteFile(filepath.Join(dir, name+".crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+".key"), nil, 0o600)
}

// The model of RabbitMQ 3.10's MQTT topic authorisation, read from its
// code (rabbit_mqtt_util:to_amqp/to_mqtt, rabbit_mqtt_processor:
// check_topic_access, rabbit_auth_backend_internal:check_topic_access,
// rabbit_exchange_type_topic).

// rabbitToAMQP is the routing key of a topic or filter.
func rabbitToAMQP(t string) string {
	return strings.ReplaceAll(strings.ReplaceAll(t, "/", "."), "+", "*")
}

// rabbitToMQTT is the topic a subscriber gets a routing key under.
func rabbitToMQTT(k string) string {
	return strings.ReplaceAll(strings.ReplaceAll(k, "*", "+"), ".", "/")
}

// rabbitPermits runs a topic permission expression as RabbitMQ does: the
// variables replaced unescaped (maps:fold over client_id, username, vhost,
// binary:replace each), an empty expression meaning "^$", an expression
// that does not compile refusing. The expressions the translation writes
// use only constructs Go's regexp reads as PCRE does
// (TestRabbitRegexpsAsErlang checks that against Erlang's re).
func rabbitPermits(cache map[string]*regexp.Regexp, expr, username, clientID, key string) bool {
	if expr == "" {
		expr = "^$"
	}
	e := strings.ReplaceAll(expr, "{client_id}", clientID)
	e = strings.ReplaceAll(e, "{username}", username)
	e = strings.ReplaceAll(e, "{vhost}", "/")
	re, ok := cache[e]
	if !ok {
		re, _ = regexp.Compile(e)
		cache[e] = re
	}
	return re != nil && re.MatchString(key)
}

// rabbitBindingMatches is the topic exchange: words split at '.', '*' one
// word, '#' any number of words.
func rabbitBindingMatches(binding, key string) bool {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ".")
	}
	var match func(b, k []string) bool
	match = func(b, k []string) bool {
		if len(b) == 0 {
			return len(k) == 0
		}
		switch b[0] {
		case "#":
			for i := 0; i <= len(k); i++ {
				if match(b[1:], k[i:]) {
					return true
				}
			}
			return false
		case "*":
			return len(k) > 0 && match(b[1:], k[1:])
		}
		return len(k) > 0 && b[0] == k[0] && match(b[1:], k[1:])
	}
	return match(split(binding), split(key))
}

var (
	propLevels = []string{"d", "v", "a", "b", "a.b", "*", "$s", "", "é", "{client_id}", "{username}", ".*", "x|.*", "alice"}
	propUsers  = []string{"alice", "bob", "a.b", ".*", "x|.*", "{client_id}", "a+b", "#", "a/b", "$s", "x|y", "("}
	// propCleanUsers are the users a %u pattern can be expanded for
	// (mosquitto gives "a+b" and "#" nothing from patterns).
	propCleanUsers = []string{"alice", "bob", "{client_id}", "a+b", "#", "x|y", "("}
	propClientIDs  = []string{"c1", ".*", "x|.*", "d", "v", "a.b", "c+", "#", "$s", "{username}", "(", "alice"}
)

func propTopic(r *mrand.Rand, filter bool) string { return randomTopic(r, propLevels, filter, 6) }

// propACL is a random ACL; a clean one has only what the translation can
// hold (no deny lines, no '.', '*' or leading '$', patterns with %u only),
// so that half the rounds test what it grants rather than what it refuses.
func propACL(r *mrand.Rand, clean bool) string {
	var b strings.Builder
	accesses := []string{"read", "write", "readwrite", "readwrite", "write", "deny"}
	if clean {
		accesses = accesses[:5]
	}
	for i, n := 0, 1+r.Intn(7); i < n; i++ {
		if r.Intn(3) == 0 {
			fmt.Fprintf(&b, "user %s\n", propUsers[r.Intn(len(propUsers))])
		}
		t := propTopic(r, true)
		for clean && (strings.ContainsAny(t, ".*") || t[0] == '$') {
			t = propTopic(r, true)
		}
		if r.Intn(4) == 0 { // a pattern: put %u (or, not clean, %c or x%u) at some level
			ls := strings.Split(t, "/")
			ph := "%u"
			if !clean {
				ph = []string{"%c", "%u", "%u", "x%u"}[r.Intn(4)]
			}
			ls[r.Intn(len(ls))] = ph
			if ls[len(ls)-1] != "#" && r.Intn(2) == 0 {
				ls = append(ls, "#")
			}
			fmt.Fprintf(&b, "pattern %s %s\n", accesses[r.Intn(len(accesses))], strings.Join(ls, "/"))
			continue
		}
		if ValidateTopicFilter(t) != nil {
			t = "d/+"
		}
		fmt.Fprintf(&b, "topic %s %s\n", accesses[r.Intn(len(accesses))], t)
	}
	return b.String()
}

// TestRabbitMQTranslationSound: whatever the generated topic permissions
// let a client do in RabbitMQ, the mosquitto ACL lets it do too (the
// project's matcher, ACL.Allowed, which the differential tests hold to
// mosquitto 2.0). Over generated ACLs, usernames, client ids and topics:
//   - publish T: allowed when the write expression (variables replaced)
//     matches T's routing key. The message is then the routing key's
//     message (subscribers get it as rabbitToMQTT(key): "a.b" arrives as
//     "a/b"), so mosquitto must allow writing that topic.
//   - subscribe F: allowed when the read expression matches F's routing
//     key; the subscriber then gets every message whose routing key the
//     binding matches, among those any generated client may publish, and
//     mosquitto must allow it to read each under the topic it arrives as.
//
// The ACLs hold %u patterns, expanded for usernames with awkward
// characters ('.', '*', '+', '#', '/', '$', regex syntax), and the count of
// grants that only a pattern gives shows the expansion is exercised. The
// one allowance: mosquitto gives nothing from patterns to a client whose id
// holds '+' or '#', which RabbitMQ cannot see, so such a client is held to
// what its user gets with another client id.
//
// An ACL the translation refuses grants nothing; the refusal must name a
// line of the file.
func TestRabbitMQTranslationSound(t *testing.T) {
	dir := t.TempDir()
	pkiDir := filepath.Join(dir, "pki")
	writeServerCert(t, pkiDir, "rabbit1", "localhost")
	aclFile := filepath.Join(dir, "acl")
	r := mrand.New(mrand.NewSource(17))
	cache := map[string]*regexp.Regexp{}
	const rounds = 400
	translated, writes, reads, viaPattern := 0, 0, 0, 0
	var holes []string
	hole := func(f string, a ...any) {
		if holes = append(holes, fmt.Sprintf(f, a...)); len(holes) <= 6 {
			t.Errorf(f, a...)
		}
	}
	for round := 0; round < rounds; round++ {
		text := propACL(r, round%4 != 3)
		os.WriteFile(aclFile, []byte(text), 0o600)
		acl, err := ParseACL([]byte(text), aclFile)
		if err != nil {
			continue // not an ACL mosquitto would start with
		}
		// The users definitions.json has: those a %u pattern can be
		// expanded for, and in every other round one more of any kind.
		users := propCleanUsers
		if u := propUsers[r.Intn(len(propUsers))]; round%2 == 1 && !slices.Contains(users, u) {
			users = append(slices.Clone(users), u)
		}
		f, err := GenerateRabbitMQ(RabbitOptions{PKIDir: pkiDir, Mode: "mtls", ACLFile: aclFile, Users: users,
			Nodes: []RabbitNode{{"rabbit1", "localhost", 8883}}})
		if err != nil {
			if !strings.Contains(err.Error(), aclFile+":") {
				t.Fatalf("refused without naming a line: %v\nACL:\n%s", err, text)
			}
			continue
		}
		translated++
		var defs struct {
			TopicPermissions []struct{ User, Read, Write, Exchange string } `json:"topic_permissions"`
		}
		if err := json.Unmarshal(f.Definitions, &defs); err != nil {
			t.Fatal(err)
		}
		perm := map[string][2]string{} // user: read, write
		for _, p := range defs.TopicPermissions {
			perm[p.User] = [2]string{p.Read, p.Write}
		}
		type id struct{ user, cid string }
		var ids []id
		for _, u := range propUsers {
			for _, c := range propClientIDs {
				ids = append(ids, id{u, c})
			}
		}
		// Topics: random ones, and ones made from the rules (every level
		// of a rule, wildcards and variables filled in).
		var topics []string
		for i := 0; i < 150; i++ {
			topics = append(topics, propTopic(r, false))
		}
		rules := aclRuleTopics(acl)
		for _, rule := range rules {
			for i := 0; i < 20; i++ {
				var ls []string
				for _, l := range strings.Split(rule, "/") {
					switch l {
					case "%u":
						l = propUsers[r.Intn(len(propUsers))]
						if r.Intn(2) == 0 {
							l = propLevels[r.Intn(len(propLevels))]
						}
					case "+", "%c":
						l = propLevels[r.Intn(len(propLevels))]
					case "#":
						l = strings.Join([]string{propLevels[r.Intn(len(propLevels))], propLevels[r.Intn(len(propLevels))]}[:1+r.Intn(2)], "/")
					}
					ls = append(ls, l)
				}
				if topic := strings.Join(ls, "/"); topic != "" {
					topics = append(topics, topic)
				}
			}
		}
		allowed := mosquittoAnswer(acl, &viaPattern)
		published := map[string]bool{} // routing keys some client may publish to
		for _, c := range ids {
			p, ok := perm[c.user]
			if !ok {
				continue
			}
			client := Client{Username: c.user, ClientID: c.cid}
			for _, topic := range topics {
				key := rabbitToAMQP(topic)
				if !rabbitPermits(cache, p[1], c.user, c.cid, key) {
					continue
				}
				writes++
				published[key] = true
				if got := rabbitToMQTT(key); !allowed(client, got, Write) {
					hole("RabbitMQ lets user %q (client id %q) publish %q (routing key %q, the message of topic %q), mosquitto does not.\nwrite expression: %s\nACL:\n%s",
						c.user, c.cid, topic, key, got, p[1], text)
				}
			}
		}
		for _, c := range ids {
			p, ok := perm[c.user]
			if !ok {
				continue
			}
			client := Client{Username: c.user, ClientID: c.cid}
			for i := 0; i < 60; i++ {
				filter := propTopic(r, true)
				if i < len(topics) && i%2 == 0 {
					filter = topics[r.Intn(len(topics))]
				}
				binding := rabbitToAMQP(filter)
				if !rabbitPermits(cache, p[0], c.user, c.cid, binding) {
					continue
				}
				for key := range published {
					if !rabbitBindingMatches(binding, key) {
						continue
					}
					reads++
					if got := rabbitToMQTT(key); !allowed(client, got, Read) {
						hole("RabbitMQ lets user %q (client id %q) subscribe %q and so receive %q, mosquitto does not.\nread expression: %s\nACL:\n%s",
							c.user, c.cid, filter, got, p[0], text)
					}
				}
			}
		}
	}
	if len(holes) > 0 {
		t.Errorf("%d holes in all (the first 6 above)", len(holes))
		if os.Getenv("RABBIT_HOLES") != "" {
			os.WriteFile(os.Getenv("RABBIT_HOLES"), []byte(strings.Join(holes, "\n----\n")), 0o600)
		}
	}
	t.Logf("%d of %d ACLs translated; %d publishes and %d deliveries allowed, each also allowed by the ACL (%d of them by a pattern only)", translated, rounds, writes, reads, viaPattern)
	if translated < rounds/5 || writes < 1000 || reads < 1000 || viaPattern < 500 {
		t.Errorf("the generator exercised too little: %d ACLs translated, %d writes, %d reads, %d by a pattern", translated, writes, reads, viaPattern)
	}
}
