package topic

import (
	"strings"
	"sync"
)

// Retained holds the retained message of each topic (M is the engine's
// message type) in a trie by topic level, which a filter walks: a literal
// level follows one child, "+" every child, "#" the whole subtree, so a
// lookup visits only the topics that can match. It is safe for concurrent
// use.
type Retained[M any] struct {
	mu   sync.RWMutex
	root node[retained[M]]
	n    int
}

type retained[M any] struct {
	topic string
	msg   M
}

// Set stores msg as topic's retained message (replacing one).
func (r *Retained[M]) Set(topic string, msg M) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.root.find(topic)
	if n.val == nil {
		r.n++
	}
	n.val = &retained[M]{topic, msg}
}

// Delete removes topic's retained message (a retained PUBLISH with an
// empty payload) and reports whether there was one.
func (r *Retained[M]) Delete(topic string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.root.lookup(topic)
	if n == nil || n.val == nil {
		return false
	}
	n.val = nil
	n.prune()
	r.n--
	return true
}

// Get returns topic's retained message.
func (r *Retained[M]) Get(topic string) (M, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if n := r.root.lookup(topic); n != nil && n.val != nil {
		return n.val.msg, true
	}
	var zero M
	return zero, false
}

// Len returns the number of retained messages.
func (r *Retained[M]) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.n
}

// Match calls fn with each retained message whose topic filter matches,
// in no particular order, until fn returns false. filter is a plain filter
// (a shared subscription gets no retained messages: the engine strips
// nothing and calls Match only for plain ones). As in Index.Match, a
// wildcard first level does not match topics starting with '$'. fn must
// not call r's other methods.
func (r *Retained[M]) Match(filter string, fn func(topic string, msg M) bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	walkFilter(&r.root, filter, false, true, fn)
}

// walkFilter visits n, which the filter levels before rest reached; done
// says no level is left; root says n is the root (where wildcards skip the
// $ topics). It returns false once fn has.
func walkFilter[M any](n *node[retained[M]], rest string, done, root bool, fn func(string, M) bool) bool {
	if done {
		return n.val == nil || fn(n.val.topic, n.val.msg)
	}
	level, rest, more := cut(rest)
	switch level {
	case "#":
		if n.val != nil && !fn(n.val.topic, n.val.msg) {
			return false
		}
		if c := n.only; c != nil && !(root && strings.HasPrefix(c.level, "$")) && !walkAll(c, fn) {
			return false
		}
		for l, c := range n.children {
			if root && strings.HasPrefix(l, "$") {
				continue
			}
			if !walkAll(c, fn) {
				return false
			}
		}
		return true
	case "+":
		if c := n.only; c != nil && !(root && strings.HasPrefix(c.level, "$")) && !walkFilter(c, rest, !more, false, fn) {
			return false
		}
		for l, c := range n.children {
			if root && strings.HasPrefix(l, "$") {
				continue
			}
			if !walkFilter(c, rest, !more, false, fn) {
				return false
			}
		}
		return true
	}
	if c := n.child(level); c != nil {
		return walkFilter(c, rest, !more, false, fn)
	}
	return true
}

func walkAll[M any](n *node[retained[M]], fn func(string, M) bool) bool {
	if n.val != nil && !fn(n.val.topic, n.val.msg) {
		return false
	}
	if n.only != nil && !walkAll(n.only, fn) {
		return false
	}
	for _, c := range n.children {
		if !walkAll(c, fn) {
			return false
		}
	}
	return true
}
