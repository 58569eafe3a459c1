package topic

import (
	"fmt"
	"strings"
	"sync"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// Subscription is one client's subscription to one filter, with its MQTT 5
// options and subscription identifier. The index keeps it as given and
// never changes it: a new subscription of the same client to the same
// filter replaces it by another.
type Subscription struct {
	Client            string
	Filter            string // as subscribed: $share/GROUP/FILTER for a shared one
	QoS               byte
	NoLocal           bool
	RetainAsPublished bool
	RetainHandling    byte
	ID                uint32 // subscription identifier, 0 for none
}

// entry is what a filter's node holds: the plain subscriptions, and the
// shared ones by group. Slices, which Match ranges over faster than maps;
// a filter with many subscribers also gets an index by client.
type entry struct {
	subs     []*Subscription
	byClient map[string]int // index in subs, once subs is long
	groups   []*Group
}

// indexFrom is the length of subs from which byClient is kept.
const indexFrom = 16

func (e *entry) find(client string) int {
	if e.byClient != nil {
		if i, ok := e.byClient[client]; ok {
			return i
		}
		return -1
	}
	for i, s := range e.subs {
		if s.Client == client {
			return i
		}
	}
	return -1
}

func (e *entry) add(s *Subscription) {
	e.subs = append(e.subs, s)
	if e.byClient != nil {
		e.byClient[s.Client] = len(e.subs) - 1
	} else if len(e.subs) >= indexFrom {
		e.byClient = make(map[string]int, len(e.subs))
		for i, s := range e.subs {
			e.byClient[s.Client] = i
		}
	}
}

func (e *entry) remove(i int) {
	last := len(e.subs) - 1
	if e.byClient != nil {
		delete(e.byClient, e.subs[i].Client)
		if i != last {
			e.byClient[e.subs[last].Client] = i
		}
	}
	e.subs[i] = e.subs[last]
	e.subs[last] = nil
	e.subs = e.subs[:last]
}

func (e *entry) group(name string) (int, *Group) {
	for i, g := range e.groups {
		if g.Name == name {
			return i, g
		}
	}
	return -1, nil
}

// Group is the members of one share group on one filter
// ($share/NAME/FILTER), in the order they joined.
type Group struct {
	Name    string
	Filter  string // without $share/NAME/
	Members []*Subscription
}

// Index holds every subscription in a trie by filter level. Match visits
// only the nodes a topic can reach (its own levels, "+" and "#"), so its
// cost does not depend on the subscriptions that cannot match. It is safe
// for concurrent use: Match under a read lock.
type Index struct {
	mu   sync.RWMutex
	root node[entry]
	n    int
}

// Subscribe adds s, or replaces the client's subscription to the same
// filter (true then). The filter must be valid (mqttwire.ValidTopicFilter,
// which the decoder has checked).
func (ix *Index) Subscribe(s *Subscription) (replaced bool, err error) {
	if !mqttwire.ValidTopicFilter(s.Filter) {
		return false, fmt.Errorf("subscribe %q: not a valid topic filter", s.Filter)
	}
	group, filter, shared, _ := mqttwire.SplitShared(s.Filter)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.root.find(filter)
	if n.val == nil {
		n.val = &entry{}
	}
	e := n.val
	if !shared {
		if i := e.find(s.Client); i >= 0 {
			e.subs[i] = s
			replaced = true
		} else {
			e.add(s)
		}
	} else {
		_, g := e.group(group)
		if g == nil {
			g = &Group{Name: group, Filter: filter}
			e.groups = append(e.groups, g)
		}
		for i, m := range g.Members {
			if m.Client == s.Client {
				// Members is shared with Match's callers: copy on write.
				g.Members = append(g.Members[:i:i], g.Members[i:]...)
				g.Members[i] = s
				replaced = true
				break
			}
		}
		if !replaced {
			g.Members = append(g.Members[:len(g.Members):len(g.Members)], s)
		}
	}
	if !replaced {
		ix.n++
	}
	return replaced, nil
}

// Unsubscribe removes the client's subscription to filter (as subscribed,
// $share/GROUP/ included) and reports whether there was one.
func (ix *Index) Unsubscribe(client, filter string) bool {
	group, plain, shared, _ := mqttwire.SplitShared(filter)
	ix.mu.Lock()
	defer ix.mu.Unlock()
	n := ix.root.lookup(plain)
	if n == nil || n.val == nil {
		return false
	}
	e := n.val
	found := false
	if !shared {
		if i := e.find(client); i >= 0 {
			e.remove(i)
			found = true
		}
	} else if gi, g := e.group(group); g != nil {
		for i, m := range g.Members {
			if m.Client == client {
				// copy on write (see Subscribe)
				g.Members = append(g.Members[:i:i], g.Members[i+1:]...)
				found = true
				break
			}
		}
		if len(g.Members) == 0 {
			e.groups = append(e.groups[:gi], e.groups[gi+1:]...)
		}
	}
	if !found {
		return false
	}
	ix.n--
	if len(e.subs) == 0 && len(e.groups) == 0 {
		n.val = nil
		n.prune()
	}
	return true
}

// Len returns the number of subscriptions.
func (ix *Index) Len() int {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return ix.n
}

// SharedMatch is a share group whose filter matches: the engine delivers
// to one of Members.
type SharedMatch struct {
	Group   string
	Filter  string
	Members []*Subscription // the group's members when matched; do not modify
}

// Matches is Match's result, reused from one call to the next.
type Matches struct {
	// Subs are the plain subscriptions matching, one per client and
	// filter: a client with overlapping filters appears once per filter.
	Subs   []*Subscription
	Shared []SharedMatch
}

// Match fills m with the subscriptions whose filter matches topic (a valid
// topic name). A topic starting with '$' is not matched by a filter whose
// first level is a wildcard (MQTT 4.7.2). It allocates nothing once m's
// arrays have grown.
func (ix *Index) Match(topic string, m *Matches) {
	m.Subs = m.Subs[:0]
	m.Shared = m.Shared[:0]
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	match(&ix.root, topic, false, !strings.HasPrefix(topic, "$"), m)
}

// match visits n, which the levels of the topic before rest reached; done
// says no level is left. wild says the wildcard children may match (not
// at the root for a $ topic).
//
// The order is mosquitto 2.1's (a client with overlapping subscriptions
// gets its copies in it): the literal level, then "+", then "#".
func match(n *node[entry], rest string, done, wild bool, m *Matches) {
	if done {
		m.add(n.val)
	} else {
		level, rest, more := cut(rest)
		if c := n.child(level); c != nil {
			match(c, rest, !more, true, m)
		}
		if wild {
			if p := n.plus; p != nil {
				match(p, rest, !more, true, m)
			}
		}
	}
	if wild {
		if h := n.hash; h != nil {
			m.add(h.val) // "#" matches the parent level too: a/# matches a
		}
	}
}

func (m *Matches) add(e *entry) {
	if e == nil {
		return
	}
	m.Subs = append(m.Subs, e.subs...)
	for _, g := range e.groups {
		m.Shared = append(m.Shared, SharedMatch{Group: g.Name, Filter: g.Filter, Members: g.Members})
	}
}
