package topic

import "strings"

// node is a level of the trie both the subscription index and the retained
// store are made of: children by level text ("+" and "#" are the wildcard
// levels of a filter, stored as text), and a value for the filter or topic
// that ends here. A node without value or children is removed.
type node[V any] struct {
	children map[string]*node[V]
	parent   *node[V]
	level    string
	val      *V
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
		c := n.children[level]
		if c == nil {
			if n.children == nil {
				n.children = make(map[string]*node[V])
			}
			c = &node[V]{parent: n, level: level}
			n.children[level] = c
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
		n = n.children[level]
		if !more {
			return n
		}
		path = rest
	}
	return nil
}

// prune removes n and its ancestors while they hold nothing.
func (n *node[V]) prune() {
	for n.parent != nil && n.val == nil && len(n.children) == 0 {
		delete(n.parent.children, n.level)
		n = n.parent
	}
}

// count returns the number of nodes under n (n excluded), for the tests'
// check that nothing is left behind.
func (n *node[V]) count() int {
	c := len(n.children)
	for _, ch := range n.children {
		c += ch.count()
	}
	return c
}
