package topic

import "strings"

// node is a level of the trie both the subscription index and the retained
// store are made of: children by level text, and a value for the filter or
// topic that ends here. The wildcard levels of a filter, "+" and "#", are
// kept in fields of their own (a topic name has none), so that matching a
// topic under a node with 100k children costs one lookup in that map, not
// three. A node without value or children is removed.
type node[V any] struct {
	// only is the one literal child of a node that has one (most have:
	// one map per level of a long topic would double the memory of a
	// subscription); children holds them once there are more.
	only       *node[V]
	children   map[string]*node[V]
	plus, hash *node[V]
	parent     *node[V]
	level      string
	val        *V
}

func (n *node[V]) child(level string) *node[V] {
	switch level {
	case "+":
		return n.plus
	case "#":
		return n.hash
	}
	if n.only != nil {
		if n.only.level == level {
			return n.only
		}
		return nil
	}
	return n.children[level]
}

func (n *node[V]) setChild(level string, c *node[V]) {
	switch level {
	case "+":
		n.plus = c
	case "#":
		n.hash = c
	default:
		if n.only == nil && len(n.children) == 0 {
			n.only, n.children = c, nil
			return
		}
		if n.children == nil {
			n.children = map[string]*node[V]{n.only.level: n.only}
			n.only = nil
		}
		n.children[level] = c
	}
}

// literals returns the number of literal children.
func (n *node[V]) literals() int {
	if n.only != nil {
		return 1
	}
	return len(n.children)
}

func (n *node[V]) empty() bool {
	return n.val == nil && n.literals() == 0 && n.plus == nil && n.hash == nil
}

// cut splits the first level off a topic or filter: "a/b/c" gives "a",
// "b/c", true; "a" gives "a", "", false (no level after it).
func cut(s string) (level, rest string, more bool) {
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return s[:i], s[i+1:], true
	}
	return s, "", false
}

// find returns the node of path, creating the missing levels.
func (n *node[V]) find(path string) *node[V] {
	for {
		level, rest, more := cut(path)
		c := n.child(level)
		if c == nil {
			c = &node[V]{parent: n, level: level}
			n.setChild(level, c)
		}
		n = c
		if !more {
			return n
		}
		path = rest
	}
}

// lookup returns the node of path, or nil.
func (n *node[V]) lookup(path string) *node[V] {
	for n != nil {
		level, rest, more := cut(path)
		n = n.child(level)
		if !more {
			return n
		}
		path = rest
	}
	return nil
}

// prune removes n and its ancestors while they hold nothing.
func (n *node[V]) prune() {
	for n.parent != nil && n.empty() {
		switch n.level {
		case "+":
			n.parent.plus = nil
		case "#":
			n.parent.hash = nil
		default:
			if n.parent.only == n {
				n.parent.only = nil
			} else {
				delete(n.parent.children, n.level)
			}
		}
		n = n.parent
	}
}

// count returns the number of nodes under n (n excluded), for the tests'
// check that nothing is left behind.
func (n *node[V]) count() int {
	c := 0
	for _, ch := range n.children {
		c += 1 + ch.count()
	}
	for _, ch := range []*node[V]{n.only, n.plus, n.hash} {
		if ch != nil {
			c += 1 + ch.count()
		}
	}
	return c
}

// MatchFilter reports whether filter (not a shared one) matches the topic
// name t, one pair at a time (the Index is for many): a leading wildcard
// does not match a $ topic, and "a/#" matches "a".
func MatchFilter(filter, t string) bool {
	if len(t) > 0 && t[0] == '$' && len(filter) > 0 && (filter[0] == '+' || filter[0] == '#') {
		return false
	}
	for {
		fl, frest, fmore := cut(filter)
		if fl == "#" {
			return true
		}
		tl, trest, tmore := cut(t)
		if fl != "+" && fl != tl {
			return false
		}
		if !fmore || !tmore {
			return fmore == tmore || fmore && frest == "#"
		}
		filter, t = frest, trest
	}
}
