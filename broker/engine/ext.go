package engine

import (
	"net"
	"sync/atomic"

	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// The optional parts of the seam: a Hooks that also implements one of
// these interfaces is asked at that point too (checked once, in New).

// Interceptor answers some publishes itself instead of routing them (the
// broker's $mqttctl/ enrolment requests). Intercepts is asked for every
// client PUBLISH before MayPublish and must be cheap; when it says true,
// Intercept gets the message and its answer is the acknowledgement: a
// Code below 0x80 acknowledges it (nothing is routed), 0x80 or more
// refuses it (MQTT 5: that code and Reason in the PUBACK/PUBREC; 3.1.1:
// the normal acknowledgement; QoS 0: dropped).
type Interceptor interface {
	Intercepts(c *Client, topic string) bool
	Intercept(c *Client, m *Message) Answer
}

// Answer is an Interceptor's acknowledgement of a publish.
type Answer struct {
	Code   mqttwire.ReasonCode
	Reason string // MQTT 5 reason string, sent with a refusal
}

// WillChecker decides, instead of MayPublish, whether a will may be sent
// now (when its delay or session ends): the broker applies the publish
// rules and more (a client whose certificate has been revoked meanwhile
// sends none), and logs why one is not sent.
type WillChecker interface {
	MaySendWill(c *Client, m *Message) bool
}

// SubscribeChecker refuses subscriptions (SUBACK 0x87, or 3.1.1's 0x80).
// mosquitto grants every subscription and checks reads at delivery; this
// is for clients the broker restricts further.
type SubscribeChecker interface {
	MaySubscribe(c *Client, filter string) bool
}

// RefusalHook is told of each CONNECT the engine refuses by its own rules
// (protocol level, client id, keepalive, retain), for logs and metrics;
// Authenticate's refusals are the broker's own and not reported again.
type RefusalHook interface {
	// Refused gets the CONNECT as far as it was read (only Listener and
	// Remote when it could not be read: code 0, err wrapping
	// ErrConnectTimeout or ErrNotMQTT, or a *mqttwire.Error).
	Refused(req *ConnectRequest, code mqttwire.ReasonCode, err error)
}

// Durability is asked to make what the persistence calls have handed it
// so far durable before a QoS 1/2 publish they stored is acknowledged
// (the PUBACK, or the PUBCOMP of QoS 2): a store that writes in batches
// waits here for the batch, so that no acknowledged message is lost.
type Durability interface {
	Durable(c *Client)
}

// IncomingStore keeps the packet ids of QoS 2 messages a persistent
// session has received (routed, PUBREC sent) and not yet released
// (PUBREL), so that a client's resend after a restart is not routed again;
// Server.RestoreIncoming puts them back.
type IncomingStore interface {
	SaveIncoming(clientID string, id uint16)
	DeleteIncoming(clientID string, id uint16)
}

type optionalHooks struct {
	incoming IncomingStore
	icpt     Interceptor
	will     WillChecker
	sub      SubscribeChecker
	refused  RefusalHook
	durable  Durability
}

func optional(h Hooks) optionalHooks {
	var o optionalHooks
	o.icpt, _ = h.(Interceptor)
	o.will, _ = h.(WillChecker)
	o.sub, _ = h.(SubscribeChecker)
	o.refused, _ = h.(RefusalHook)
	o.durable, _ = h.(Durability)
	o.incoming, _ = h.(IncomingStore)
	return o
}

// Stats are the engine's counters since start and its current queues.
type Stats struct {
	Received uint64 // client PUBLISHes accepted and routed (QoS 2 at PUBREL)
	Sent     uint64 // PUBLISHes written to clients
	Dropped  uint64 // messages dropped for a subscriber: queue full, over MaxPending, too large
	Inflight int    // QoS 1/2 messages sent and not yet acknowledged
	Queued   int    // QoS 1/2 messages waiting for a window or a client
	Clients  int    // connected clients
	Sessions int    // sessions, connected or not
	// Subscriptions and Retained are the index's and the store's sizes.
	Subscriptions int
	Retained      int
}

type counters struct {
	received, sent, dropped atomic.Uint64
}

// Stats returns the counters, and the queues counted now (it visits every
// session: for a metrics scrape, not a hot path).
func (s *Server) Stats() Stats {
	st := Stats{Received: s.count.received.Load(), Sent: s.count.sent.Load(), Dropped: s.count.dropped.Load()}
	s.mu.RLock()
	sessions := make([]*session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.RUnlock()
	st.Sessions = len(sessions)
	st.Subscriptions = s.subs.Len()
	st.Retained = s.retained.Len()
	for _, ss := range sessions {
		ss.mu.Lock()
		if !ss.inproc {
			st.Inflight += len(ss.out)
			st.Queued += len(ss.queue)
			if ss.c != nil {
				st.Clients++
			}
		} else {
			st.Sessions--
		}
		ss.mu.Unlock()
	}
	return st
}

// Activity is a cheap counter of what the engine did: messages received
// and sent (it changes whenever they do).
func (s *Server) Activity() uint64 { return s.count.received.Load() + s.count.sent.Load() }

// RestoreIncoming puts back a restored session's received, unreleased
// QoS 2 packet ids (before Serve, after RestoreSession).
func (s *Server) RestoreIncoming(clientID string, ids []uint16) {
	ss := s.session(clientID)
	if ss == nil || len(ids) == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.inQoS2 == nil {
		ss.inQoS2 = map[uint16]*Message{}
	}
	for _, id := range ids {
		ss.inQoS2[id] = nil
	}
}

// ServeConnListener is ServeConn with a listener's own settings; l must
// not change while connections use it.
func (s *Server) ServeConnListener(nc net.Conn, l *Listener) bool {
	return s.serveConn(nc, l)
}

// SendTo writes m (QoS 0, no ACL) to cl's connection only, if cl is still
// its session's connection: an answer meant for one connection (the
// broker's enrolment answers), never routed. It reports whether it was
// written.
func (s *Server) SendTo(cl *Client, m *Message) bool {
	ss := s.session(cl.ID)
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	c := ss.c
	if c == nil || c.client != cl {
		ss.mu.Unlock()
		return false
	}
	ok := c.sendPublish(&delivery{m: m}, false, false)
	ss.mu.Unlock()
	if ok {
		c.kick()
	}
	return ok
}

// Subscribed reports whether client id has a subscription, not shared,
// whose filter matches topic.
func (s *Server) Subscribed(clientID, topicName string) bool {
	ss := s.session(clientID)
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for f := range ss.subs {
		if _, _, shared, _ := mqttwire.SplitShared(f); !shared && topic.MatchFilter(f, topicName) {
			return true
		}
	}
	return false
}

// Clients calls fn for every connected client until fn returns false.
func (s *Server) Clients(fn func(*Client) bool) {
	s.mu.RLock()
	var cls []*Client
	for _, ss := range s.sessions {
		ss.mu.Lock()
		if ss.c != nil && ss.c.client != nil {
			cls = append(cls, ss.c.client)
		}
		ss.mu.Unlock()
	}
	s.mu.RUnlock()
	for _, cl := range cls {
		if !fn(cl) {
			return
		}
	}
}

// DisconnectClient is Disconnect for this connection of the client only:
// false if cl is no longer connected (a new connection of the same client
// id stays).
func (s *Server) DisconnectClient(cl *Client, code mqttwire.ReasonCode) bool {
	ss := s.session(cl.ID)
	if ss == nil {
		return false
	}
	ss.mu.Lock()
	c := ss.c
	ss.mu.Unlock()
	if c == nil || c.client != cl {
		return false
	}
	c.shutdown(code)
	<-c.done
	return true
}

// SessionOwner returns the username of client id's session (connected or
// not): ok false when there is none.
func (s *Server) SessionOwner(id string) (username string, hasUsername, ok bool) {
	ss := s.session(id)
	if ss == nil {
		return "", false, false
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.gone || ss.client == nil {
		return "", false, false
	}
	return ss.client.Username, ss.client.HasUsername, true
}
