package engine

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// Options are the engine's settings, mosquitto's option names in the
// comments. Zero values take mosquitto 2.0's defaults.
type Options struct {
	Hooks  Hooks        // nil: NopHooks
	Logger *slog.Logger // nil: discard
	// Listener is what Serve and ServeConn serve with (ServeListener takes
	// another).
	Listener Listener
	// RetainNotAvailable (retain_available false): a retained PUBLISH or
	// will is refused (MQTT 5: 0x9A) and MQTT 5 clients are told so.
	RetainNotAvailable bool
	// Mosquitto20 answers as mosquitto 2.0.11 where it differs from 2.1.2
	// (which the engine follows otherwise): a taken-over MQTT 5 client is
	// closed without DISCONNECT 0x8E, a 3.1.1 client asking for more than
	// MaxKeepalive keeps its keepalive, topics are sent to a mount point's
	// clients with the mount point on, and a CONNECT of MQTT level 6 or
	// more gets 3.1.1's CONNACK 1, a client with overlapping subscriptions
	// gets no QoS 1/2 copy after its first copy, and a replaced subscription keeps
	// retain as published. (The broker's differential tests compare with
	// 2.0.11.)
	Mosquitto20 bool
	// ConnectTimeout bounds the TLS handshake and the CONNECT (10 s).
	ConnectTimeout time.Duration
	// WriteTimeout bounds one write to a client: a client that takes no
	// bytes for that long is disconnected (10 s).
	WriteTimeout time.Duration
	// MaxPacketSize (max_packet_size) limits packets both ways: bigger ones
	// from a client are refused, and MQTT 5 clients are told in CONNACK.
	// 0: the protocol's limit.
	MaxPacketSize int
	// MaxInflight (max_inflight_messages, 20) is how many QoS 1/2 messages
	// a 3.1/3.1.1 client gets unacknowledged, and the Receive Maximum MQTT
	// 5 clients are told; an MQTT 5 client's own Receive Maximum bounds
	// what it gets.
	MaxInflight int
	// MaxQueued (max_queued_messages, 1000) is how many more QoS 1/2
	// messages a session queues; beyond, they are dropped.
	MaxQueued int
	// MaxKeepalive (max_keepalive, 65535): an MQTT 5 client asking for
	// more (or 0) is told this Server Keep Alive; a 3.1.1 one is refused.
	MaxKeepalive uint16
	// TopicAliasMaximum (max_topic_alias, 10) is how many topic aliases an
	// MQTT 5 client may set; negative: none (max_topic_alias 0).
	TopicAliasMaximum int
	// AutoIDPrefix (auto_id_prefix, "auto-") starts assigned client ids.
	AutoIDPrefix string
	// MaxPending bounds the bytes waiting to be written to one client
	// (256 KiB): QoS 0 messages beyond are dropped. QoS 1/2 messages wait
	// in the session instead, MaxInflight at a time.
	MaxPending int
	// NoParking keeps a goroutine waiting on every idle connection instead
	// of parking it (park_linux.go).
	NoParking bool
	// FlowWait bounds how long a publisher waits for room in a connected
	// subscriber's full queue (MaxQueued) before its messages are dropped
	// (1 s; see session.deliver).
	FlowWait time.Duration
	// MaxConnectSize bounds the CONNECT, the one packet read before the
	// client is authenticated (mosquitto 2.1's 100000 bytes; 0: that).
	MaxConnectSize int
}

func (o *Options) defaults() {
	if o.Hooks == nil {
		o.Hooks = NopHooks{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 10 * time.Second
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.MaxInflight == 0 {
		o.MaxInflight = 20
	}
	if o.MaxQueued == 0 {
		o.MaxQueued = 1000
	}
	if o.MaxKeepalive == 0 {
		o.MaxKeepalive = 65535
	}
	switch {
	case o.TopicAliasMaximum == 0:
		o.TopicAliasMaximum = 10
	case o.TopicAliasMaximum < 0:
		o.TopicAliasMaximum = 0
	case o.TopicAliasMaximum > 65535:
		o.TopicAliasMaximum = 65535
	}
	if o.AutoIDPrefix == "" {
		o.AutoIDPrefix = "auto-"
	}
	if o.MaxPending == 0 {
		o.MaxPending = 256 << 10
	}
	if o.FlowWait == 0 {
		o.FlowWait = time.Second
	}
	if o.MaxConnectSize == 0 {
		o.MaxConnectSize = 100000
	}
}

// Listener is what differs between listeners: its name (in
// ConnectRequest and Client), mosquitto's mount_point and
// allow_zero_length_clientid false.
type Listener struct {
	Name string
	// MountPoint is put before every topic and filter of its clients
	// (after $share/GROUP/), and taken off what they are sent.
	MountPoint string
	// RefuseEmptyClientID: a CONNECT without a client id is refused
	// (3.1.1: return code 2; MQTT 5: 0x80, as mosquitto).
	RefuseEmptyClientID bool
	// Versions, when not 0, are the protocol levels accepted (bit 1<<3
	// for 3.1, 1<<4 for 3.1.1, 1<<5 for 5; mosquitto 2.1's
	// accept_protocol_versions): another is refused before anything else,
	// levels 3 and 4 with 3.1.1's CONNACK 1, 5 with MQTT 5's 0x84.
	Versions uint8
	// Closed, when set, runs after each of the listener's connections is
	// closed (the broker's connection counts).
	Closed func()
}

// Server is the engine: sessions, the subscription index and the retained
// store, serving any number of listeners.
type Server struct {
	opts     Options
	hooks    Hooks
	log      *slog.Logger
	subs     topic.Index
	retained topic.Retained[*Message]

	mu        sync.RWMutex
	sessions  map[string]*session
	conns     map[*conn]struct{}
	listeners []net.Listener
	closed    bool
	wg        sync.WaitGroup

	shareNext sync.Map // share group + filter -> *atomic.Uint32 (round robin)
	now       func() time.Time
	opt       optionalHooks
	count     counters
	parkOnce  sync.Once
	pk        *parker
}

// parker returns the server's parker (nil where parking is not available).
func (s *Server) parker() *parker {
	s.parkOnce.Do(func() { s.pk = newParker() })
	return s.pk
}

// New returns a Server with opts.
func New(opts Options) *Server {
	opts.defaults()
	return &Server{opts: opts, hooks: opts.Hooks, log: opts.Logger, opt: optional(opts.Hooks),
		sessions: map[string]*session{}, conns: map[*conn]struct{}{}, now: time.Now}
}

// ErrClosed is Serve's answer once Close has run.
var ErrClosed = errors.New("engine: server closed")

// Serve accepts connections on ln until ln or the server is closed, each
// served by one goroutine. A *tls.Conn is handshaken within the connect
// timeout before its CONNECT.
func (s *Server) Serve(ln net.Listener) error { return s.ServeListener(ln, s.opts.Listener) }

// ServeListener is Serve with the listener's own settings.
func (s *Server) ServeListener(ln net.Listener, l Listener) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	s.listeners = append(s.listeners, ln)
	s.mu.Unlock()
	for {
		nc, err := ln.Accept()
		if err != nil {
			s.mu.RLock()
			closed := s.closed
			s.mu.RUnlock()
			if closed {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			return fmt.Errorf("engine: accept on %s: %w", ln.Addr(), err)
		}
		if !s.serveConn(nc, &l) {
			return ErrClosed
		}
	}
}

// ServeConn serves one connection in a goroutine of its own (false once
// the server is closed: nc is closed then).
func (s *Server) ServeConn(nc net.Conn) bool {
	l := s.opts.Listener
	return s.serveConn(nc, &l)
}

func (s *Server) serveConn(nc net.Conn, l *Listener) bool {
	c := &conn{s: s, nc: nc, l: l, done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		nc.Close()
		return false
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go c.serve()
	return true
}

// Close stops the listeners, disconnects every client (MQTT 5 ones with
// DISCONNECT 0x8B) and waits for their goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	for _, ln := range s.listeners {
		ln.Close()
	}
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.shutdown(mqttwire.ServerShuttingDown)
	}
	s.wg.Wait()
	s.parkOnce.Do(func() {})
	if s.pk != nil {
		s.pk.stop()
	}
	s.mu.Lock()
	for _, ss := range s.sessions {
		ss.mu.Lock()
		ss.stopTimers()
		ss.mu.Unlock()
	}
	s.mu.Unlock()
	return nil
}

// Disconnect closes the connection of client id (MQTT 5 clients get
// DISCONNECT with code) and reports whether it was connected: for a
// revoked certificate or a password that no longer verifies.
func (s *Server) Disconnect(id string, code mqttwire.ReasonCode) bool {
	ss := s.session(id)
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	c := ss.c
	ss.mu.Unlock()
	if c == nil {
		return false
	}
	c.shutdown(code)
	<-c.done
	return true
}

// Retained returns the number of retained messages.
func (s *Server) Retained() int { return s.retained.Len() }

// Sessions returns the number of sessions (connected or not).
func (s *Server) Sessions() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.sessions)
}

// Publish publishes m as the broker (no ACL), or as an in-process client
// when m.From names one (a bridge's message from its remote: its own
// SubscribeFunc does not get it back).
func (s *Server) Publish(m *Message) int {
	if m.Created.IsZero() {
		m.Created = s.now()
	}
	return s.route(m, true)
}

// SubscribeFunc subscribes an in-process client (a bridge's local side)
// to filter: fn gets every matching message, in the publisher's goroutine
// (it must not block), but those published as clientID (Message.From):
// no local. No ACL applies and no retained messages are sent. A network
// client asking for clientID is refused.
func (s *Server) SubscribeFunc(clientID, filter string, qos byte, fn func(*Message)) error {
	if !mqttwire.ValidTopicFilter(filter) {
		return fmt.Errorf("engine: subscribe %s to %q: not a valid topic filter", clientID, filter)
	}
	s.mu.Lock()
	ss := s.sessions[clientID]
	if ss == nil {
		ss = s.newSession(clientID)
		ss.inproc = true
		s.sessions[clientID] = ss
	}
	s.mu.Unlock()
	if !ss.inproc {
		return fmt.Errorf("engine: client id %s is a network client's", clientID)
	}
	ss.mu.Lock()
	if ss.fns == nil {
		ss.fns = map[string]func(*Message){}
	}
	ss.fns[filter] = fn
	sub := &topic.Subscription{Client: clientID, Filter: filter, QoS: qos, NoLocal: true}
	if ss.subs == nil {
		ss.subs = map[string]*topic.Subscription{}
	}
	ss.subs[filter] = sub
	ss.mu.Unlock()
	_, err := s.subs.Subscribe(sub)
	return err
}

// UnsubscribeFunc removes an in-process client's subscription to filter.
func (s *Server) UnsubscribeFunc(clientID, filter string) bool {
	ss := s.session(clientID)
	if ss == nil || !ss.inproc {
		return false
	}
	ss.mu.Lock()
	delete(ss.subs, filter)
	delete(ss.fns, filter)
	ss.mu.Unlock()
	return s.subs.Unsubscribe(clientID, filter)
}

// RestoreRetained puts a stored retained message back (before Serve).
func (s *Server) RestoreRetained(m *Message) { s.retained.Set(m.Topic, m) }

// RestoreSession puts a stored persistent session back, disconnected,
// with its subscriptions and the messages it is owed (before Serve).
func (s *Server) RestoreSession(r SessionRecord, subs []topic.Subscription, queued []Queued) {
	ss := s.newSession(r.ClientID)
	ss.expiry = r.Expiry
	ss.persistent = true
	ss.client = &Client{ID: r.ClientID, Username: r.Username, HasUsername: r.Username != "", Version: r.Version}
	for i := range subs {
		sub := subs[i]
		sub.Client = r.ClientID
		if ss.subs == nil {
			ss.subs = map[string]*topic.Subscription{}
		}
		ss.subs[sub.Filter] = &sub
		_, _ = s.subs.Subscribe(&sub)
	}
	for _, q := range queued {
		ss.seq++
		ss.queue = append(ss.queue, &delivery{m: q.M, qos: q.QoS, retain: q.Retain, subID: q.SubID, seq: ss.seq})
	}
	s.mu.Lock()
	s.sessions[r.ClientID] = ss
	s.mu.Unlock()
	ss.mu.Lock()
	left := time.Duration(r.Expiry) * time.Second
	if !r.Disconnected.IsZero() {
		left -= s.now().Sub(r.Disconnected) // its expiry ran while the broker was down
	}
	ss.startExpiryIn(left)
	ss.mu.Unlock()
}

func (s *Server) assignID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return s.opts.AutoIDPrefix + hex.EncodeToString(b[:])
}

// sysDenied: a client's publish to $SYS is acknowledged and dropped, as
// mosquitto does, but for a bridge's connection state notification.
func sysDenied(t string) bool {
	if !strings.HasPrefix(t, "$SYS") {
		return false
	}
	rest, ok := strings.CutPrefix(t, "$SYS/broker/connection/")
	if !ok {
		return true
	}
	id, ok := strings.CutSuffix(rest, "/state")
	return !ok || strings.Contains(id, "/")
}

var matchesPool = sync.Pool{New: func() any { return new(topic.Matches) }}

// route delivers m to every matching subscription (one copy per
// subscription, as mosquitto 2.0), keeps or clears it as retained, and
// returns how many subscriptions got it. wait: the caller is a
// publisher's goroutine, which waits for room in full subscriber queues
// (session.deliver).
func (s *Server) route(m *Message, wait bool) int {
	var budget time.Time // one FlowWait for all of m's subscribers
	if m.Retain {
		if len(m.Payload) == 0 {
			if s.retained.Delete(m.Topic) {
				s.hooks.DeleteRetained(m.Topic)
			}
		} else {
			s.retained.Set(m.Topic, m)
			s.hooks.SaveRetained(m)
		}
	}
	ms := matchesPool.Get().(*topic.Matches)
	defer matchesPool.Put(ms)
	s.subs.Match(m.Topic, ms)
	n := 0
	// Mosquitto20: once a client got a copy, it gets no further QoS 1/2
	// copy of the message (2.0.11's dest_ids check).
	var sent map[string]bool
	for _, sub := range ms.Subs {
		if sub.NoLocal && sub.Client == m.From {
			continue
		}
		if s.opts.Mosquitto20 {
			if sent[sub.Client] && min(m.QoS, sub.QoS) > 0 {
				continue
			}
			if sent == nil {
				sent = map[string]bool{}
			}
			sent[sub.Client] = true
		}
		if s.deliverTo(sub, m, sub.RetainAsPublished && m.Retain, wait, &budget) {
			n++
		}
	}
	for _, g := range ms.Shared {
		if len(g.Members) == 0 {
			continue
		}
		v, _ := s.shareNext.LoadOrStore(g.Group+"\x00"+g.Filter, new(atomic.Uint32))
		start := v.(*atomic.Uint32).Add(1)
		// The next member that is connected, else the next one.
		pick := g.Members[int(start)%len(g.Members)]
		for i := range g.Members {
			sub := g.Members[(int(start)+i)%len(g.Members)]
			if ss := s.session(sub.Client); ss != nil && ss.connected() {
				pick = sub
				break
			}
		}
		if s.deliverTo(pick, m, false, wait, &budget) {
			n++
		}
	}
	return n
}

func (s *Server) session(id string) *session {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.sessions[id]
}

func (s *Server) deliverTo(sub *topic.Subscription, m *Message, retain, wait bool, budget *time.Time) bool {
	ss := s.session(sub.Client)
	if ss == nil {
		return false
	}
	if ss.inproc {
		ss.mu.Lock()
		fn := ss.fns[sub.Filter]
		ss.mu.Unlock()
		if fn == nil {
			return false
		}
		fn(m)
		return true
	}
	d := &delivery{m: m, qos: min(m.QoS, sub.QoS), retain: retain, subID: sub.ID}
	return ss.deliverWait(d, wait, budget)
}

// forget removes a session and its subscriptions (clean start, expiry, or
// a clean client's end) unless a connection has attached to it meanwhile
// (false then). It holds the server's lock throughout, so that a new
// session of the same client id can neither lose subscriptions to the
// old one's removal nor be stored before the old one is deleted. The
// caller holds no session lock.
func (s *Server) forget(ss *session) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss.mu.Lock()
	if ss.c != nil || ss.gone {
		ss.mu.Unlock()
		return false
	}
	if s.sessions[ss.id] == ss {
		delete(s.sessions, ss.id)
	}
	subs := ss.subs
	ss.subs = nil
	persistent := ss.persistent
	if persistent {
		for _, d := range ss.queue {
			ss.dropped(d)
		}
		for _, d := range ss.out {
			ss.dropped(d)
		}
	}
	ss.queue, ss.out, ss.inQoS2 = nil, nil, nil
	ss.stopTimers()
	ss.gone = true
	ss.wake()
	ss.mu.Unlock()
	for f := range subs {
		s.subs.Unsubscribe(ss.id, f)
	}
	if persistent {
		s.hooks.DeleteSession(ss.id)
	}
	return true
}
