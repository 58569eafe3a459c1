package engine

import (
	"sync"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// session is a client id's state, which outlives its connections when
// persistent. Everything is guarded by mu; its maps and slices are nil
// when empty, so an idle session costs its struct and its subscriptions.
type session struct {
	s  *Server
	id string

	mu         sync.Mutex
	c          *conn   // the connection, nil while disconnected
	client     *Client // the last connection's client
	persistent bool
	expiry     uint32 // session expiry interval (s); 0xFFFFFFFF never
	gone       bool   // forgotten: deliveries are dropped

	subs map[string]*topic.Subscription // by filter as subscribed

	// Outgoing QoS 1/2: out holds what is in flight by packet id (at most
	// the window), queue what waits for the window or for the client.
	out    map[uint16]*delivery
	queue  []*delivery
	nextID uint16
	window int
	seq    uint64 // SaveQueued sequence

	// Incoming QoS 2: the messages received (PUBREC sent), routed at
	// PUBREL as mosquitto does; nil for a refused one.
	inQoS2 map[uint16]*Message

	// inproc: an in-process client (SubscribeFunc), never connected,
	// never expiring; fns are its deliveries by filter.
	inproc bool
	fns    map[string]func(*Message)

	// room is closed (and set to nil) when a full queue gets room, the
	// connection ends or the session does: publishers wait on it.
	// stalled: a publisher waited FlowWait in vain; none waits again
	// until the subscriber acknowledges.
	room    chan struct{}
	stalled bool

	expiryTimer *time.Timer
	will        *Message // a delayed will, sent when willTimer fires or the session ends
	willClient  *Client
	willTimer   *time.Timer
}

// delivery is one message owed to one session.
type delivery struct {
	m      *Message
	qos    byte
	retain bool
	subID  uint32
	seq    uint64 // SaveQueued key, 0 when not stored
	id     uint16 // packet id once in flight
	rel    bool   // PUBREC received, PUBREL sent
}

func (s *Server) newSession(id string) *session {
	return &session{s: s, id: id}
}

func (ss *session) connected() bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.c != nil
}

func (ss *session) stopTimers() {
	if ss.expiryTimer != nil {
		ss.expiryTimer.Stop()
		ss.expiryTimer = nil
	}
	if ss.willTimer != nil {
		ss.willTimer.Stop()
		ss.willTimer = nil
	}
}

// startExpiry arms the expiry of a disconnected persistent session.
func (ss *session) startExpiry() {
	ss.startExpiryIn(time.Duration(ss.expiry) * time.Second)
}

// startExpiryIn is startExpiry with d left of the interval.
func (ss *session) startExpiryIn(d time.Duration) {
	if ss.expiry == 0xFFFFFFFF || ss.expiryTimer != nil {
		return
	}
	ss.expiryTimer = time.AfterFunc(max(d, 0), ss.expire)
}

func (ss *session) expire() {
	if !ss.s.forget(ss) {
		return // resumed meanwhile
	}
	ss.mu.Lock()
	will, wc := ss.will, ss.willClient
	ss.will = nil
	ss.mu.Unlock()
	if will != nil {
		ss.s.sendWill(wc, will) // the session ended before the will delay did
	}
}

// deliver queues or sends d; false when it is dropped. wait: the caller
// is a publisher's goroutine, which may wait (Options.FlowWait) for room
// in a connected subscriber's full queue.
func (ss *session) deliver(d *delivery, wait bool) bool { return ss.deliverWait(d, wait, nil) }

// deliverWait is deliver with the publisher's wait budget for the message
// (shared by all its subscribers, so that many full ones cost it FlowWait
// once, not each): *budget is the deadline, set by the first wait.
func (ss *session) deliverWait(d *delivery, wait bool, budget *time.Time) bool {
	ss.mu.Lock()
	if ss.gone {
		ss.mu.Unlock()
		return false
	}
	if ss.inproc {
		ss.mu.Unlock()
		return false
	}
	cl := ss.client
	if cl != nil && !ss.s.hooks.MayRead(cl, d.m.Topic) {
		ss.mu.Unlock()
		return false
	}
	c := ss.c
	if d.qos == 0 {
		ok := false
		if c != nil && !d.m.Expired(ss.s.now()) {
			ok = c.sendPublish(d, false, true)
		}
		ss.mu.Unlock()
		if ok {
			ss.s.hooks.Delivered(cl, d.m)
			c.kick()
		}
		return ok
	}
	var deadline time.Time
	for {
		if c != nil && len(ss.queue) == 0 && len(ss.out) < ss.window {
			ss.inflight(d)
			ss.mu.Unlock()
			ss.s.hooks.Delivered(cl, d.m)
			c.kick()
			return true
		}
		if len(ss.queue) < ss.s.opts.MaxQueued {
			break
		}
		// Full: a connected subscriber that is making room gets it, the
		// publisher waiting (it reads nothing meanwhile, so TCP slows it
		// down). One that made none within FlowWait, or took more than a
		// tenth of it to make some (a trickle of acknowledgements would
		// otherwise set every publisher's pace), is stalled: its messages
		// beyond the queue are dropped without waiting until it has
		// emptied half of it, as mosquitto drops beyond
		// max_queued_messages.
		now := time.Now()
		if deadline.IsZero() {
			deadline = now.Add(ss.s.opts.FlowWait)
			if budget != nil {
				if budget.IsZero() {
					*budget = deadline
				}
				deadline = *budget
			}
		}
		if !wait || c == nil || ss.stalled || !now.Before(deadline) {
			if wait && c != nil && !ss.stalled {
				ss.stalled = true
				ss.s.log.Warn("subscriber not acknowledging: its queue is full (max_queued_messages), messages for it are dropped until it acknowledges again",
					"client", ss.id, "queued", len(ss.queue), "in_flight", len(ss.out))
			}
			ss.mu.Unlock()
			ss.s.count.dropped.Add(1)
			return false
		}
		if ss.room == nil {
			ss.room = make(chan struct{})
		}
		room := ss.room
		ss.mu.Unlock()
		t := time.NewTimer(deadline.Sub(now))
		select {
		case <-room:
		case <-t.C:
		}
		t.Stop()
		ss.mu.Lock()
		if ss.gone {
			ss.mu.Unlock()
			return false
		}
		if time.Since(now) > ss.s.opts.FlowWait/10 && len(ss.queue) >= ss.s.opts.MaxQueued/2 {
			ss.stalled = true // slow to make room: see above
		}
		c = ss.c
	}
	if ss.persistent {
		ss.seq++
		d.seq = ss.seq
		ss.s.hooks.SaveQueued(ss.id, d.seq, Queued{M: d.m, QoS: d.qos, Retain: d.retain, SubID: d.subID})
	}
	d.id = ss.newID() // as mosquitto, which numbers a message when it queues it
	ss.queue = append(ss.queue, d)
	ss.mu.Unlock()
	return true
}

// inflight gives d a packet id, keeps it in out and writes it. mu held,
// c connected.
func (ss *session) inflight(d *delivery) {
	if _, used := ss.out[d.id]; used || d.id == 0 {
		d.id = ss.newID()
	}
	if ss.out == nil {
		ss.out = map[uint16]*delivery{}
	}
	ss.out[d.id] = d
	if ss.persistent && d.seq == 0 {
		ss.seq++
		d.seq = ss.seq
		ss.s.hooks.SaveQueued(ss.id, d.seq, Queued{M: d.m, QoS: d.qos, Retain: d.retain, SubID: d.subID})
	}
	if ss.c.appendPublish(d, false, false) == errTooBig {
		delete(ss.out, d.id)
		ss.dropped(d)
	}
}

// newID returns the next packet id not in flight. mu held.
func (ss *session) newID() uint16 {
	for {
		ss.nextID++
		if ss.nextID == 0 {
			ss.nextID = 1
		}
		if _, used := ss.out[ss.nextID]; !used {
			return ss.nextID
		}
	}
}

// fill moves queued messages into the window. mu held; the caller
// flushes the connection.
func (ss *session) fill() {
	now := ss.s.now()
	for ss.c != nil && len(ss.queue) > 0 && len(ss.out) < ss.window {
		d := ss.queue[0]
		ss.queue[0] = nil
		ss.queue = ss.queue[1:]
		// The read ACL as it is now, for the client as it is now (another
		// listener, a reloaded acl_file), as mosquitto checks at sending.
		if d.m.Expired(now) || ss.client != nil && !ss.s.hooks.MayRead(ss.client, d.m.Topic) {
			ss.dropped(d)
			continue
		}
		ss.inflight(d)
	}
	if len(ss.queue) == 0 {
		ss.queue = nil
	}
}

func (ss *session) dropped(d *delivery) {
	if d.seq != 0 {
		ss.s.hooks.DeleteQueued(ss.id, d.seq)
	}
}

// acked completes an outgoing message (PUBACK, or PUBCOMP) and moves the
// queue on. It reports whether id was in flight (with the right state).
func (ss *session) acked(id uint16, comp bool) bool {
	ss.mu.Lock()
	d, ok := ss.out[id]
	if !ok || d.qos == 2 != comp || comp && !d.rel {
		ss.mu.Unlock()
		return false
	}
	delete(ss.out, id)
	if len(ss.out) == 0 {
		ss.out = nil
	}
	ss.dropped(d)
	ss.fill()
	ss.made()
	c := ss.c
	ss.mu.Unlock()
	if c != nil {
		c.flush()
	}
	return true
}

// made wakes publishers waiting for room once there is some, and ends a
// stall once half the queue is empty. mu held.
func (ss *session) made() {
	if len(ss.queue) <= ss.s.opts.MaxQueued/2 {
		ss.stalled = false
	}
	if len(ss.queue) < ss.s.opts.MaxQueued {
		ss.wake()
	}
}

// wake wakes the publishers waiting for room (they look again). mu held.
func (ss *session) wake() {
	if ss.room != nil {
		close(ss.room)
		ss.room = nil
	}
}

// received handles PUBREC: the PUBREL to send, or false.
func (ss *session) received(id uint16, reason mqttwire.ReasonCode) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	d, ok := ss.out[id]
	if !ok || d.qos != 2 {
		return false
	}
	if reason >= 0x80 { // the subscriber refused it: done
		delete(ss.out, id)
		ss.dropped(d)
		ss.fill()
		ss.made()
		return true
	}
	d.rel = true
	return true
}

// resume resends what was in flight (PUBLISH with DUP, or PUBREL) and
// fills the window, on a new connection. mu held.
func (ss *session) resume() {
	if len(ss.out) > 0 {
		ids := make([]*delivery, 0, len(ss.out))
		for _, d := range ss.out {
			ids = append(ids, d)
		}
		sortBySeq(ids)
		for _, d := range ids {
			if !d.rel && ss.client != nil && !ss.s.hooks.MayRead(ss.client, d.m.Topic) {
				delete(ss.out, d.id) // the ACL no longer lets this client read it
				ss.dropped(d)
				continue
			}
			if d.rel {
				ss.c.sendAck(mqttwire.PUBREL, d.id, 0)
			} else {
				if ss.c.appendPublish(d, true, false) == errTooBig {
					delete(ss.out, d.id)
					ss.dropped(d)
				}
			}
		}
	}
	ss.fill()
}

// sortBySeq orders deliveries as they were sent (seq, else id).
func sortBySeq(ds []*delivery) {
	key := func(d *delivery) uint64 {
		if d.seq != 0 {
			return d.seq
		}
		return uint64(d.id)
	}
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && key(ds[j]) < key(ds[j-1]); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// recheck drops the messages queued or in flight that cl, a new user of
// the session, may not read, as mosquitto does when a client id is taken
// by another user (db__check_acl_of_all_messages). mu held.
func (ss *session) recheck(cl *Client) {
	keep := ss.queue[:0]
	for _, d := range ss.queue {
		if ss.s.hooks.MayRead(cl, d.m.Topic) {
			keep = append(keep, d)
			continue
		}
		ss.dropped(d)
	}
	clear(ss.queue[len(keep):])
	ss.queue = keep
	for id, d := range ss.out {
		if !ss.s.hooks.MayRead(cl, d.m.Topic) {
			delete(ss.out, id)
			ss.dropped(d)
		}
	}
}
