// Package engine is the server core of mqttctl's own MQTT engine (issue
// 21): connections, sessions, flow control and routing, on the codec of
// internal/mqttwire and the subscription index and retained store of
// broker/engine/topic. `mqttctl serve` runs on it (package broker
// implements Hooks); it replaced mochi-mqtt.
//
// # Layout
//
//   - hooks.go: the seam, Hooks, and its plain types (ConnectRequest,
//     Verdict, Client, Message, SessionRecord). The broker implements Hooks;
//     the engine imports nothing of the broker's and the broker nothing of
//     an engine's but these types.
//   - server.go: Options (mosquitto's option names and defaults), Server,
//     Serve(net.Listener), ServeConn, Close, Publish, Restore*, and routing:
//     one copy per matching subscription (as mosquitto 2.1; 2.0.11 sends
//     one), share groups round robin preferring a connected member, no
//     local.
//   - conn.go: a connection: one goroutine, the reader, and the write path.
//   - handle.go: CONNECT (client id rules, Authenticate, takeover, the
//     CONNACK), the session's attach and end (will, will delay, expiry), and
//     every packet after CONNECT.
//   - session.go: a session: subscriptions, QoS 1/2 in flight by packet id
//     (at most the window), the queue behind it (MaxQueued), incoming QoS 2
//     ids, the expiry and delayed-will timers.
//
// # At most one goroutine per connection, none while idle
//
// An idle connection is parked (park_linux.go): when nothing is buffered
// to read, its goroutine registers the socket with the server's parker
// (one epoll instance, level-triggered and one-shot) and a timer at its
// keepalive deadline, and exits. Readiness, the timer, a shutdown or a
// failed write starts a new goroutine, which reads on with the deadline
// set before (a keepalive is counted from the last packet, as before).
// A connection is never parked before its CONNECT, nor while crypto/tls
// holds bytes already read from the socket (a read with a deadline
// already past takes them first). WebSocket connections, and systems
// without epoll, wait in their goroutine instead (below).
//
// A connection's goroutine reads and handles packets. While it waits for a
// packet it holds no buffer: it reads the first byte straight from the
// net.Conn into a field, and only then borrows a bufio.Reader (2 KiB) and a
// body buffer from a sync.Pool, which it gives back as soon as nothing is
// buffered. A connection's own answers (acks, CONNACK, SUBACK) are written
// by its goroutine; deliveries are encoded onto the connection's pending
// bytes under its mutex by the publisher and written by a writer goroutine
// started for the purpose (kick), which writes (with WriteTimeout as the
// write deadline) until none are left, so writes combine under load and
// no publisher waits on a subscriber's socket
// (TestStalledSubscriberDoesNotHoldThePublisher). The pending buffer is
// pooled too and is nil while idle. QoS 0 messages beyond MaxPending bytes
// are dropped; QoS 1/2 messages are never more than the window ahead (the
// client's Receive Maximum, or MaxInflight for 3.1.1), the rest wait in the
// session up to MaxQueued.
//
// The slow-subscriber rule: a publisher that finds a connected
// subscriber's queue full waits for room, at most FlowWait (1 s), reading
// nothing meanwhile, so that TCP slows it down to the subscriber's pace
// and no acknowledged QoS 1/2 message is lost to a subscriber that keeps up
// on average (broker's TestFanOutLosesNoQoS1,
// TestSlowAcknowledgerLosesNoQoS1). A subscriber that made no room within
// FlowWait, or took more than a tenth of it to make some, is stalled: its
// messages beyond the queue are dropped, without waiting, until half its
// queue is empty (as mosquitto drops beyond max_queued_messages), so that
// a trickle of acknowledgements cannot set every publisher's pace
// (TestTrickleAcknowledgerDoesNotSetThePace). A client that takes no
// bytes for WriteTimeout is disconnected (TestSlowSubscriber); its
// persistent session keeps what it is owed.
//
// Idle memory (TestIdleMemory, 2000 plain loopback connections, each
// CONNECTed at 3.1.1 and subscribed to one filter): about 1.7 KB per
// connection held by the engine beyond the bare TCP connection: conn,
// session, Client, the subscription and the map entries, and no
// goroutine (parked; 5.9 KB when each kept a goroutine, whose 4 KiB stack
// is the smallest the GC shrinks one waiting in the poller to). No read
// or write buffer is kept while idle. QoS 1 throughput (BenchmarkQoS1Throughput, one
// publisher to one subscriber, 100-byte messages, loopback, on 2 shared
// cores): 33k-63k msg/s against mosquitto 2.0.11's 15k-19.5k in the same
// runs.
//
// Over mutual TLS (TestIdleMemoryTLS: 2000 TLS 1.3 clients with ECDSA
// P-256 certificates in a child process, so that only the server side is
// counted): 14.1 KB of heap and stack per idle connection, parked (17.6-
// 18.5 KB with a goroutine each; RSS moves with the GC). When parking is
// not available, an idle TLS connection does not wait in crypto/tls's read
// (whose depth kept the goroutine stack at 8 KiB): it asks crypto/tls,
// with a read deadline already past, whether it has bytes buffered (a
// read timeout leaves a crypto/tls connection usable), and otherwise waits
// on the socket with MSG_PEEK through syscall.RawConn (idle_linux.go;
// elsewhere it reads through crypto/tls), so the stack is 4 KiB as over
// plain TCP (TestTLSIdleWait: records with several packets, more than the
// read buffer, keepalive and takeover while waiting). The rest is
// crypto/tls's own: its record and handshake buffers (3-4 KB), the
// AES-GCM and key schedule state, the peer certificate.

// # What the engine does (each with its test)
//
//   - MQTT 3.1, 3.1.1 and 5.0 CONNECT rules: empty client ids (assigned with
//     auto_id_prefix, refused for 3.1 and for 3.1.1 without clean session),
//     an unsupported level (CONNACK 1, or MQTT 5's 0x84 above 5, as 2.1.2),
//     any other bad CONNECT closed without CONNACK (as both), long 3.1
//     client ids accepted (as both), authentication methods (0x8C),
//     max_keepalive (Server Keep
//     Alive for MQTT 5, CONNACK 2 for 3.1.1 as 2.1.2), retain_available
//     false (Options.RetainNotAvailable: 0x9A, a 3.1.1 retained will closed
//     without CONNACK), allow_zero_length_clientid false and mount_point
//     per listener (Listener, ServeListener); CONNACK 5
//     properties as mosquitto 2.0 sends them (Receive Maximum, Topic Alias
//     Maximum, Maximum Packet Size when set, Assigned Client Identifier,
//     Server Keep Alive). Refusals by Authenticate with mosquitto's 3.1.1
//     return codes (TestHooks).
//   - CONNECT deadline (TestConnectTimeout), keepalive 1.5x without
//     DISCONNECT 0x8D, as both mosquittos ("keepalive v3/v5").
//   - Takeover: the old connection closed first (DISCONNECT 0x8E to MQTT 5,
//     as 2.1.2; 2.0.11 sends none), its will sent, then the new CONNACK.
//   - QoS 0/1/2 both ways: packet ids per session, the window, DUP resend
//     and PUBREL resend on resume, incoming QoS 2 routed once (at PUBLISH)
//     (TestQoS2Duplicate), PUBACK 0x10 with no subscribers (MQTT 5),
//     TestReceiveMaximum.
//   - Subscriptions and retained messages: SUBACK/UNSUBACK codes, retained
//     on subscribe with retain handling 0/1/2, retain as published, QoS
//     downgrade, shared subscriptions (TestSharedSubscription), no local,
//     subscription identifiers (TestSubscriptionIdentifiers), bridges
//     (try_private) get no local and retain as published.
//   - Sessions: clean and persistent (3.1.1 clean session false, MQTT 5
//     Session Expiry with its timer, changed by DISCONNECT), queued QoS 1/2
//     delivered on reconnect, session present.
//   - Wills: sent unless DISCONNECT 0x00, will delay with session expiry
//     (TestWillDelay), checked with MayPublish when sent.
//   - MQTT 5: incoming topic aliases (0x94 above the maximum), message
//     expiry (dropped when expired, the remaining interval sent), user
//     properties, payload format, content type, response topic and
//     correlation data passed through, Maximum Packet Size both ways
//     (TestMaxPacketSize), incoming Receive Maximum for QoS 2 (PUBREC 0x97 beyond
//     MaxInflight, the connection kept, as both mosquittos), protocol
//     errors after CONNECT told with DISCONNECT (a bad filter 0x81, an
//     unknown topic alias 0x82, as both).
//   - $SYS: a client's publish is acknowledged and dropped (MQTT 5: 0x87),
//     but a bridge's $SYS/broker/connection/ID/state (TestSysPublishDropped).
//   - Sessions end at their expiry (TestSessionExpiry); a session is
//     forgotten only while no connection is attached to it.
//   - Persistence as calls (TestPersistenceCalls), restore before Serve
//     (TestRestoreSession). Queued and in-flight messages are checked with
//     MayRead again when they are sent (TestQueuedReadCheckedWhenSent). A
//     QoS 2 message is routed when its PUBLISH arrives, before PUBREC, its
//     packet id kept until PUBREL so that a resend is not routed again (the
//     spec's method A; TestQoS2RoutedAtPublish): nothing acknowledged waits
//     in memory for PUBREL. SaveQueued runs in the publisher's goroutine
//     before its PUBACK is written, and a Durability hook is asked to make
//     the calls durable before the PUBACK: once for the QoS 1 publishes a
//     client's read buffer already holds, whose PUBACKs wait for it in
//     order (TestDurableBeforeAck, TestDurableOncePerBatch), so a
//     pipelining publisher shares one store commit among many messages.
//   - TLS: Authenticate gets the handshake's state (TestMutualTLS).
//     ServeConn takes any net.Conn (the broker's WebSocket connections too;
//     not tested here).
//   - Robustness: FuzzConn (any bytes after a CONNECT at each level),
//     TestConcurrentClients and TestCloseWhileBusy under -race.
//
// The differential test (TestDifferential) runs every script of
// protocol_test.go with a transcript against mosquitto 2.0.11 and 2.1.2
// and the engine and compares every packet each client reads.
// TestDifferentialOptions does the same under mosquitto.conf options
// (max_keepalive, retain_available false, allow_zero_length_clientid
// false, a mount_point listener beside a plain one, an acl_file against
// Hooks.MayPublish answering the same: denied QoS 0/1/2 publishes at 3.1.1
// and 5 acknowledged as mosquitto does and dropped). Where 2.0.11 and
// 2.1.2 differ the engine follows 2.1.2 (DISCONNECT 0x8E on takeover, a
// 3.1.1 keepalive above max_keepalive refused, topics sent without the
// mount point, MQTT 5's CONNACK 0x84 for MQTT level 6, a replaced
// subscription's own retain as published, a QoS 1/2 copy for each
// overlapping subscription); with Options.Mosquitto20 it answers as
// 2.0.11 there, which the 2.0.11 runs check (every script runs against
// both), so that the switch can keep broker/'s differential tests
// (against 2.0.11) unchanged.
// Server.Disconnect closes a client for the broker (TestDisconnect).
//
// # The seam
//
// Hooks (hooks.go) is what every broker implements; ext.go adds optional
// parts a Hooks may implement too: Interceptor (publishes the broker
// answers itself, the $mqttctl/ enrolment requests, answered with SendTo on
// the requesting connection only), WillChecker (the rules of a will when it
// is sent), SubscribeChecker (refusals beyond mosquitto's grant-all),
// RefusalHook (the engine's own CONNECT refusals, for logs and metrics) and
// Durability (a batching store makes its writes durable before a QoS 1/2
// publish it holds is acknowledged), IncomingStore (a persistent session's
// received, unreleased QoS 2 ids, so that a resend after a restart is not
// routed again). Listener.Versions is
// accept_protocol_versions; Listener.Closed counts connections out;
// Verdict.Data gives each Client the broker's state of its connection.
// Stats, Clients, DisconnectClient and SessionOwner are what metrics, $SYS,
// live CRL disconnects, password re-checks and the claim rules read.
//
// # Not implemented (refused by the broker's config check or not offered)
//
// queue_qos0_messages (QoS 0 for a disconnected session is dropped, as
// mosquitto's default), restoring in-flight packet ids after a restart
// (RestoreSession queues the messages again, to be sent with new ids and
// without DUP), MQTT 5 enhanced authentication (AUTH is refused, CONNACK
// 0x8C), and outgoing topic aliases (mosquitto sends none either).
package engine
