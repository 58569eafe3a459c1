// Package topic is the topic side of mqttctl's own MQTT engine (issue 21):
// the subscription index and the retained-message store. Nothing in
// `serve` uses it yet; the engine that will is still to come.
//
// Layout:
//
//   - trie.go: the trie both are made of, one node per topic or filter
//     level: a lone literal child in a field, more in a map by level text,
//     the wildcard levels "+" and "#" in fields of their own; emptied nodes
//     pruned back to the root. A subscription to a filter of its own costs
//     283 bytes (BenchmarkSubscribe100k).
//   - index.go: Index, the subscriptions by filter. Each filter's node
//     holds the plain subscriptions by client and the shared ones
//     ($share/GROUP/FILTER, stored under FILTER) by group, kept apart, each
//     Subscription with its options (QoS, no local, retain as published,
//     retain handling) and subscription identifier as the client gave
//     them. Match walks the topic's levels, following at each node the
//     literal child, "+" and "#": its cost depends on the topic's depth and
//     the subscriptions that match, not on the others (BenchmarkMatch100 vs
//     BenchmarkMatch100k). Topics starting with '$' are not matched by a
//     first-level wildcard. Match fills a reused Matches and allocates
//     nothing; a share group's Members are copied on write, so a Matches
//     stays valid while subscriptions change.
//   - retained.go: Retained, the retained message of each topic, in the
//     same trie by topic level; Match walks it with a filter (literal
//     level: one child, "+": every child, "#": the subtree), with the same
//     '$' rule.
//
// Both are checked against a naive level-by-level matcher on random
// filters and topics (TestIndexMatchesNaive, TestRetainedMatchesNaive),
// and are safe for concurrent use (one RWMutex each; TestIndexConcurrent
// under -race).
//
// The engine that uses them is broker/engine (its doc.go): it chooses one
// member of each share group, delivers one copy per matching subscription
// in Match's order (mosquitto 2.1's: literal, "+", "#"), applies no local,
// retain as published and retain handling, and expires retained messages.
// Still to come: retained messages and subscriptions written through the
// broker's journal (the engine calls its Hooks; the broker stores).
package topic
