package topic

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// naiveMatch is the MQTT matching rule written plainly, level by level:
// the reference the trie is checked against.
func naiveMatch(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	f, t := strings.Split(filter, "/"), strings.Split(topic, "/")
	for i, l := range f {
		if l == "#" {
			return true
		}
		if i >= len(t) || (l != "+" && l != t[i]) {
			return false
		}
	}
	return len(f) == len(t)
}

func TestNaiveMatch(t *testing.T) {
	for _, c := range []struct {
		f, t string
		want bool
	}{
		{"a/b", "a/b", true}, {"a/+", "a/b", true}, {"a/+", "a", false}, {"a/#", "a", true}, {"a/#", "a/b/c", true},
		{"#", "a", true}, {"#", "$SYS/a", false}, {"+/a", "$x/a", false}, {"$SYS/#", "$SYS/a", true}, {"+", "/", false},
		{"+/+", "/", true}, {"/+", "/", true}, {"a/+/c", "a//c", true}, {"a", "a/b", false},
	} {
		if got := naiveMatch(c.f, c.t); got != c.want {
			t.Errorf("naiveMatch(%q, %q) = %v", c.f, c.t, got)
		}
	}
}

var levels = []string{"a", "b", "$x", "", "c"}

func randTopic(r *rand.Rand) string {
	n := 1 + r.IntN(4)
	parts := make([]string, n)
	for i := range parts {
		parts[i] = levels[r.IntN(len(levels))]
	}
	return strings.Join(parts, "/")
}

func randFilter(r *rand.Rand) string {
	n := 1 + r.IntN(3)
	parts := make([]string, n)
	for i := range parts {
		switch x := r.IntN(10); {
		case x < 2:
			parts[i] = "+"
		case x < 3 && i == n-1:
			parts[i] = "#"
		default:
			parts[i] = levels[r.IntN(len(levels))]
		}
	}
	return strings.Join(parts, "/")
}

// TestIndexMatchesNaive: with random filters (plain and shared, added and
// removed) and random topics, Match returns exactly the subscriptions the
// naive matcher finds, and an emptied index holds no node.
func TestIndexMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 50; round++ {
		var ix Index
		live := map[[2]string]*Subscription{}       // client, filter
		clients := []int{8, 3 * indexFrom}[round%2] // many: a filter's byClient index
		for op := 0; op < 600; op++ {
			client := fmt.Sprintf("c%d", r.IntN(clients))
			filter := randFilter(r)
			if r.IntN(4) == 0 {
				filter = fmt.Sprintf("$share/g%d/%s", r.IntN(2), filter)
			}
			if r.IntN(3) == 0 {
				ok := ix.Unsubscribe(client, filter)
				if _, had := live[[2]string{client, filter}]; ok != had {
					t.Fatalf("Unsubscribe(%s, %s) = %v, had %v", client, filter, ok, had)
				}
				delete(live, [2]string{client, filter})
				continue
			}
			s := &Subscription{Client: client, Filter: filter, QoS: byte(r.IntN(3)), ID: uint32(op + 1)}
			replaced, err := ix.Subscribe(s)
			if valid := mqttwire.ValidTopicFilter(filter); (err == nil) != valid {
				t.Fatalf("Subscribe(%q): %v", filter, err)
			} else if !valid {
				continue // the empty filter
			}
			if _, had := live[[2]string{client, filter}]; replaced != had {
				t.Fatalf("Subscribe(%s, %s) replaced = %v, had %v", client, filter, replaced, had)
			}
			live[[2]string{client, filter}] = s
		}
		if ix.Len() != len(live) {
			t.Fatalf("Len %d, want %d", ix.Len(), len(live))
		}
		var m Matches
		for q := 0; q < 200; q++ {
			topic := randTopic(r)
			ix.Match(topic, &m)
			var got, want []string
			for _, s := range m.Subs {
				got = append(got, fmt.Sprintf("%s %s %d", s.Client, s.Filter, s.ID))
			}
			for _, g := range m.Shared {
				for _, s := range g.Members {
					got = append(got, fmt.Sprintf("%s %s %d", s.Client, s.Filter, s.ID))
					if s.Filter != mqttwire.SharePrefix+g.Group+"/"+g.Filter {
						t.Fatalf("member %s of group %s/%s", s.Filter, g.Group, g.Filter)
					}
				}
			}
			for k, s := range live {
				f := k[1]
				if _, plain, shared, _ := mqttwire.SplitShared(f); shared {
					f = plain
				}
				if naiveMatch(f, topic) {
					want = append(want, fmt.Sprintf("%s %s %d", s.Client, s.Filter, s.ID))
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("topic %q:\n got %q\nwant %q", topic, got, want)
			}
		}
		for k := range live {
			if !ix.Unsubscribe(k[0], k[1]) {
				t.Fatalf("Unsubscribe(%s, %s) = false", k[0], k[1])
			}
		}
		if n := ix.root.count(); n != 0 || ix.Len() != 0 {
			t.Fatalf("emptied index: %d nodes, Len %d", n, ix.Len())
		}
	}
}

// TestIndexRules: $ topics, shared subscriptions kept apart from plain
// ones on the same filter, options and identifiers as given, replacing.
func TestIndexRules(t *testing.T) {
	var ix Index
	subs := []*Subscription{
		{Client: "a", Filter: "#", QoS: 1},
		{Client: "a", Filter: "+/status"},
		{Client: "b", Filter: "$SYS/#", QoS: 2, ID: 7},
		{Client: "c", Filter: "dev/+/status", NoLocal: true, RetainAsPublished: true, RetainHandling: 2, ID: 9},
		{Client: "c", Filter: "$share/g/dev/+/status", QoS: 1},
		{Client: "d", Filter: "$share/g/dev/+/status"},
		{Client: "d", Filter: "$share/h/dev/+/status"},
	}
	for _, s := range subs {
		if _, err := ix.Subscribe(s); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ix.Subscribe(&Subscription{Client: "x", Filter: "a/#/b"}); err == nil {
		t.Fatal("an invalid filter was accepted")
	}
	var m Matches
	ix.Match("$SYS/broker/uptime", &m)
	if len(m.Subs) != 1 || m.Subs[0] != subs[2] || len(m.Shared) != 0 {
		t.Fatalf("$SYS topic matched %v %v", m.Subs, m.Shared)
	}
	ix.Match("dev/7/status", &m)
	if len(m.Subs) != 2 || len(m.Shared) != 2 {
		t.Fatalf("dev/7/status: %d plain, %d groups", len(m.Subs), len(m.Shared))
	}
	for _, s := range m.Subs {
		if s.Client == "c" && *s != *subs[3] {
			t.Fatalf("options changed: %+v", *s)
		}
	}
	groups := map[string]int{}
	for _, g := range m.Shared {
		groups[g.Group] = len(g.Members)
	}
	if groups["g"] != 2 || groups["h"] != 1 {
		t.Fatalf("groups %v", groups)
	}
	// replacing keeps one subscription and takes the new options
	if replaced, _ := ix.Subscribe(&Subscription{Client: "c", Filter: "dev/+/status", QoS: 2}); !replaced {
		t.Fatal("not replaced")
	}
	ix.Match("dev/7/status", &m)
	for _, s := range m.Subs {
		if s.Client == "c" && (s.QoS != 2 || s.ID != 0) {
			t.Fatalf("replaced subscription %+v", *s)
		}
	}
	if ix.Len() != len(subs) {
		t.Fatalf("Len %d", ix.Len())
	}
}

// TestIndexConcurrent: Match runs beside Subscribe and Unsubscribe (go
// test -race), and a group's Members seen by Match never change under it.
func TestIndexConcurrent(t *testing.T) {
	var ix Index
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				c := fmt.Sprintf("c%d-%d", w, i%50)
				ix.Subscribe(&Subscription{Client: c, Filter: "$share/g/a/+"})
				ix.Subscribe(&Subscription{Client: c, Filter: "a/#"})
				ix.Unsubscribe(c, "$share/g/a/+")
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		var m Matches
		for i := 0; i < 2000; i++ {
			ix.Match("a/b", &m)
			for _, g := range m.Shared {
				for _, s := range g.Members {
					_ = s.Client
				}
			}
		}
	}()
	wg.Wait()
}

// TestRetainedMatchesNaive: random topics stored and deleted; Match with
// random filters returns exactly the topics the naive matcher finds, and an
// emptied store holds no node.
func TestRetainedMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for round := 0; round < 50; round++ {
		var st Retained[int]
		live := map[string]int{}
		for op := 0; op < 200; op++ {
			topic := randTopic(r)
			if r.IntN(3) == 0 {
				_, had := live[topic]
				if st.Delete(topic) != had {
					t.Fatalf("Delete(%q) disagrees", topic)
				}
				delete(live, topic)
				continue
			}
			st.Set(topic, op)
			live[topic] = op
		}
		if st.Len() != len(live) {
			t.Fatalf("Len %d, want %d", st.Len(), len(live))
		}
		for q := 0; q < 200; q++ {
			filter := randFilter(r)
			var got, want []string
			st.Match(filter, func(topic string, v int) bool {
				got = append(got, fmt.Sprintf("%s=%d", topic, v))
				return true
			})
			for topic, v := range live {
				if naiveMatch(filter, topic) {
					want = append(want, fmt.Sprintf("%s=%d", topic, v))
				}
			}
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Fatalf("filter %q:\n got %q\nwant %q", filter, got, want)
			}
		}
		for topic, v := range live {
			if got, ok := st.Get(topic); !ok || got != v {
				t.Fatalf("Get(%q) = %d %v", topic, got, ok)
			}
			st.Delete(topic)
		}
		if n := st.root.count(); n != 0 || st.Len() != 0 {
			t.Fatalf("emptied store: %d nodes, Len %d", n, st.Len())
		}
	}
}

// TestRetainedStops: Match stops when fn returns false.
func TestRetainedStops(t *testing.T) {
	var st Retained[string]
	for i := 0; i < 10; i++ {
		st.Set(fmt.Sprintf("a/%d", i), "x")
	}
	n := 0
	st.Match("a/#", func(string, string) bool { n++; return n < 3 })
	if n != 3 {
		t.Fatalf("fn called %d times after returning false at 3", n)
	}
}

// TestMatchFilter: MatchFilter agrees with the naive rule on the table
// above and on random filters and topics.
func TestMatchFilter(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 20000 {
		f, tp := randFilter(r), randTopic(r)
		if got, want := MatchFilter(f, tp), naiveMatch(f, tp); got != want {
			t.Fatalf("MatchFilter(%q, %q) = %v, the rule says %v", f, tp, got, want)
		}
	}
	for _, c := range [][2]string{{"a/#", "a"}, {"+/+", "/"}, {"#", "$SYS/a"}, {"a/+/c", "a//c"}, {"+", "/"}} {
		if got, want := MatchFilter(c[0], c[1]), naiveMatch(c[0], c[1]); got != want {
			t.Errorf("MatchFilter(%q, %q) = %v, the rule says %v", c[0], c[1], got, want)
		}
	}
}
