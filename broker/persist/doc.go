// Package persist is the persistence of the broker's own MQTT engine
// (broker/engine): sessions, subscriptions, retained messages and the QoS
// 1/2 messages owed to persistent sessions, in a bbolt database. Store
// implements the engine's persistence calls (engine.Hooks: SaveSession ...
// DeleteQueued) and engine.Durability; Restore puts the stored state back
// into an engine.Server before it serves.
//
// # Layout
//
// Buckets per kind, one key per item, so that each engine call is one
// key's put or delete and a session's items are one key range:
//
//   - meta: "format" = 1 (a database of a format this package does not
//     know is refused with the fix, never misread).
//   - sessions: client id -> version 1, protocol level, session expiry
//     (4 bytes), username.
//   - subscriptions: len(client id) (2 bytes) + client id + filter -> QoS,
//     no local, retain as published, retain handling, subscription id.
//   - retained: topic -> message.
//   - queued: len(client id) + client id + seq (8 bytes, big endian) ->
//     message; a cursor over a client's prefix yields its messages in the
//     order they were queued.
//   - message: flags (QoS, retain), created (Unix ns), topic, from,
//     payload, and the MQTT 5 properties when present (payload format,
//     message expiry, content type, response topic, correlation data, user
//     properties).
//
// Values are binary with a leading version byte, not JSON: a queued
// message is written for every subscriber of every QoS 1/2 message, and
// JSON would cost reflection, base64 for the payload (a third more bytes)
// and a dozen allocations each. The length prefix keeps one client's keys
// from being a prefix of another's (ids "a" and "ab").
//
// # Writing: group commit, and the durability rule
//
// The engine's calls never wait for the disk: each hands its change to one
// writer goroutine (a slice under a mutex; callers wait only while 65536
// changes are pending). The writer commits everything pending in one
// transaction, in order, skipping a change that a later one to the same
// key replaces (a message queued and acknowledged within one batch is
// never written); a DeleteSession removes the session's whole key range.
// Each logical change is one key in one transaction, and a transaction is
// atomic, so a kill -9 between any two steps leaves a state that restores
// correctly.
//
// The rule: an acknowledged message is never lost to a killed process.
// The engine calls Durable before it writes the PUBACK (or PUBCOMP) of a
// QoS 1/2 publish; Durable returns once the transaction holding every
// change handed before it is committed. Publishers that arrive while a
// transaction commits share the next one (BenchmarkSaveQueuedDurable: 4
// publishers need 0.29 commits per message). This replaces the journal the
// mochi-based broker needed (mochi acknowledged before queueing).
// Transactions reach the operating system at commit (bbolt NoSync): a
// killed broker loses nothing; Sync (fdatasync), which the broker calls
// every second and at Close, bounds what a power loss can cost to that
// second. Syncing every commit would cap QoS 1 at the disk's flush rate.
// A transaction that fails (disk full) is logged and does not hold
// Durable's callers: the broker goes on from memory.
//
// # Restore
//
// Restore reads everything in one read-write transaction: entries that do
// not decode, belong to no session, or have expired are logged and
// deleted (a damaged database never stops the broker and never panics);
// the queued messages of each session are renumbered 1..n, because
// RestoreSession numbers them so and the engine's later DeleteQueued calls
// use those numbers.
//
// # Migration from the mochi-mqtt layout
//
// Open converts a database written by `serve` before its own engine
// (bucket "mochi", keys CL_, SUB_, RET_, IFM_, SYS of mochi's bolt hook,
// JSON) in one transaction that also deletes the old bucket: a crash
// midway leaves the old layout whole, converted at the next Open. The
// JSON structs are mirrored here; mochi is not imported. The old journal
// (PATH.journal), which held publishes acknowledged but maybe not stored
// when the old broker was killed, is replayed by Restore and removed.
//
// # Files of the broker's own only
//
// Every file is opened through OpenOwn: no symbolic link is followed and a
// file not owned by the broker's uid, or open to group or others, is
// refused with ErrForeignState and the fix (the persistence directory may
// be writable by the mosquitto group).
package persist
