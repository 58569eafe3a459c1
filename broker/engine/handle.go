package engine

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

// connect handles the CONNECT: the client id rules, authentication,
// takeover of a connected session, the session (new or resumed) and the
// CONNACK, then what the session is owed.
func (c *conn) connect(p *mqttwire.Packet) error {
	s := c.s
	c.wmu.Lock() // shutdown reads it from another goroutine
	c.version = p.Version
	c.wmu.Unlock()
	v5 := p.Version == 5
	report := func(code mqttwire.ReasonCode, err error) {
		if s.opt.refused != nil {
			s.opt.refused.Refused(&ConnectRequest{Listener: c.l.Name, Remote: c.nc.RemoteAddr(), Version: p.Version, Bridge: p.Bridge,
				ClientID: string(p.ClientID), Username: string(p.Username), HasUsername: p.HasUsername}, code, err)
		}
	}
	refuse := func(code mqttwire.ReasonCode, why string) error {
		if !v5 {
			code = v3Code(code)
		}
		err := fmt.Errorf("connection refused: %s", why)
		report(code, err) // before the CONNACK: the broker's log line comes first
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.CONNACK, Version: p.Version, Reason: code})
		c.flush()
		return err
	}
	if c.l.Versions != 0 && c.l.Versions&(1<<p.Version) == 0 {
		// mosquitto 2.1's accept_protocol_versions, checked first.
		if p.Version == 5 {
			return refuse(mqttwire.UnsupportedProtocolVersion, "protocol version not in accept_protocol_versions")
		}
		err := errors.New("connection refused: protocol version not in accept_protocol_versions")
		report(1, err)
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.CONNACK, Version: 4, Reason: 1})
		c.flush()
		return err
	}
	id := string(p.ClientID)
	assigned := false
	if id == "" {
		if p.Version == 3 || !v5 && !p.CleanStart {
			return refuse(mqttwire.ClientIDNotValid, "empty client id")
		}
		if c.l.RefuseEmptyClientID {
			code := mqttwire.ClientIDNotValid
			if v5 {
				code = mqttwire.UnspecifiedError
			}
			return refuse(code, "empty client id (allow_zero_length_clientid false)")
		}
		id, assigned = s.assignID(), true
	}
	if p.Will && p.WillRetain && s.opts.RetainNotAvailable {
		if !v5 {
			err := errors.New("retained will while retain_available is false") // mosquitto sends no CONNACK
			report(0, err)
			return err
		}
		return refuse(mqttwire.RetainNotSupported, "retained will while retain_available is false")
	}
	if v5 && p.Props.Has(mqttwire.PropAuthMethod) {
		return refuse(mqttwire.BadAuthenticationMethod, "no authentication method is supported")
	}
	keepalive := p.Keepalive
	serverKA := false
	if max := s.opts.MaxKeepalive; max < 65535 && (keepalive > max || keepalive == 0) {
		if !v5 && keepalive > max && !s.opts.Mosquitto20 { // as 2.1.2 (2.0.11 lets it keep its own)
			return refuse(mqttwire.ClientIDNotValid, "keepalive above max_keepalive")
		}
		if v5 {
			keepalive, serverKA = max, true
		}
	}
	req := ConnectRequest{Listener: c.l.Name, Remote: c.nc.RemoteAddr(), Version: p.Version, Bridge: p.Bridge,
		ClientID: id, Assigned: assigned, Username: string(p.Username), HasUsername: p.HasUsername,
		Password: p.Password, HasPassword: p.HasPassword, CleanStart: p.CleanStart,
		Will: p.Will, WillTopic: string(p.WillTopic), WillRetain: p.WillRetain}
	if tc, ok := c.nc.(interface{ ConnectionState() tls.ConnectionState }); ok {
		// a *tls.Conn, or a WebSocket connection over TLS that says so
		st := tc.ConnectionState()
		req.TLS = &st
	}
	if ss := s.session(id); ss != nil && ss.inproc {
		return refuse(mqttwire.ClientIDNotValid, "client id of an in-process client")
	}
	v := s.hooks.Authenticate(&req)
	if v.Code >= 0x80 {
		code := v.Code
		if !v5 {
			code = v3Code(code)
		}
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.CONNACK, Version: p.Version, Reason: code})
		c.flush()
		return errors.New("connection refused by the broker")
	}
	cl := &Client{ID: id, Username: req.Username, HasUsername: req.HasUsername, Version: p.Version, Bridge: p.Bridge,
		Listener: c.l.Name, Remote: req.Remote, TLS: req.TLS}
	if v.SetUsername {
		cl.Username, cl.HasUsername = v.Username, v.HasUsername
	}
	if v.ClientID != "" {
		cl.ID = v.ClientID
		if ss := s.session(cl.ID); ss != nil && ss.inproc {
			return refuse(mqttwire.ClientIDNotValid, "client id of an in-process client")
		}
	}
	cl.Data = v.Data
	c.client = cl
	if v.MaxPacketSize > 0 && (c.rd.MaxSize == 0 || v.MaxPacketSize < c.rd.MaxSize) {
		c.rd.MaxSize = v.MaxPacketSize
	}
	if c.ka = time.Duration(keepalive) * 1500 * time.Millisecond; c.ka == 0 {
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	window := s.opts.MaxInflight
	expiry := uint32(0)
	if v5 {
		window = 65535
		if p.Props.Has(mqttwire.PropReceiveMaximum) {
			window = int(p.Props.ReceiveMaximum)
		}
		if p.Props.Has(mqttwire.PropMaximumPacketSize) {
			c.maxOut = int(p.Props.MaximumPacketSize)
		}
		expiry = p.Props.SessionExpiry
	} else if !p.CleanStart {
		expiry = 0xFFFFFFFF
	}
	if p.Will {
		c.will = newMessage(cl.ID, c.mount(p.WillTopic), p.WillPayload, p.WillQoS, p.WillRetain, &p.WillProps, s.now())
		c.delay = p.WillProps.WillDelay
	}

	ss, present := s.attach(c, cl, p.CleanStart, expiry)
	if ss == nil {
		return errShutdown
	}
	ack := mqttwire.Packet{Type: mqttwire.CONNACK, Version: p.Version, SessionPresent: present}
	if v5 {
		pr := &ack.Props
		if s.opts.MaxInflight < 65535 {
			pr.ReceiveMaximum = uint16(s.opts.MaxInflight)
			pr.Set(mqttwire.PropReceiveMaximum)
		}
		if c.rd.MaxSize > 0 {
			pr.MaximumPacketSize = uint32(c.rd.MaxSize)
			pr.Set(mqttwire.PropMaximumPacketSize)
		}
		if assigned {
			pr.AssignedClientID = []byte(cl.ID) // the broker may have made up another
			pr.Set(mqttwire.PropAssignedClientID)
		}
		if serverKA {
			pr.ServerKeepAlive = keepalive
			pr.Set(mqttwire.PropServerKeepAlive)
		}
		pr.TopicAliasMaximum = uint16(s.opts.TopicAliasMaximum)
		pr.Set(mqttwire.PropTopicAliasMaximum)
		if s.opts.RetainNotAvailable {
			pr.RetainAvailable = 0
			pr.Set(mqttwire.PropRetainAvailable)
		}
	}
	ss.mu.Lock()
	ss.window = window
	c.sendRaw(&ack)
	ss.resume()
	ss.mu.Unlock()
	c.flush()
	s.hooks.Connected(cl, present)
	return nil
}

// attach makes c the connection of its client id's session: a connected
// one is taken over first (its connection closed, an MQTT 5 one with
// DISCONNECT 0x8E), then the session is resumed or, for a clean start or
// none, created.
func (s *Server) attach(c *conn, cl *Client, clean bool, expiry uint32) (*session, bool) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, false
		}
		old := s.sessions[cl.ID]
		var oc *conn
		if old != nil {
			old.mu.Lock()
			oc = old.c
			old.mu.Unlock()
		}
		if oc != nil {
			s.mu.Unlock()
			oc.takenOver.Store(true)
			code := mqttwire.SessionTakenOver
			if s.opts.Mosquitto20 {
				code = 0 // 2.0.11 sends no DISCONNECT
			}
			oc.shutdown(code)
			<-oc.done
			continue
		}
		if old != nil && (clean || old.gone) {
			s.mu.Unlock()
			s.forget(old)
			continue
		}
		ss := old
		present := ss != nil
		if ss == nil {
			ss = s.newSession(cl.ID)
			s.sessions[cl.ID] = ss
		}
		ss.mu.Lock()
		ss.c = c
		if prev := ss.client; present && prev != nil && (prev.Username != cl.Username || prev.HasUsername != cl.HasUsername) {
			ss.recheck(cl)
		}
		ss.client = cl
		ss.stopTimers()
		ss.will = nil // a resumed session does not send the last connection's delayed will
		wasPersistent := ss.persistent
		ss.expiry = expiry
		ss.persistent = expiry != 0
		ss.mu.Unlock()
		s.mu.Unlock()
		c.sess = ss
		if ss.persistent {
			s.hooks.SaveSession(SessionRecord{ClientID: cl.ID, Username: cl.Username, Version: cl.Version, Expiry: expiry})
		} else if wasPersistent {
			s.hooks.DeleteSession(cl.ID)
		}
		return ss, present
	}
}

// end runs when the connection's reader stops: the will, and the session
// kept (persistent) or forgotten.
func (c *conn) end(err error) {
	s := c.s
	ss := c.sess
	if ss == nil {
		return
	}
	ss.mu.Lock()
	if ss.c != c {
		ss.mu.Unlock()
		return
	}
	ss.c = nil
	ss.wake() // publishers waiting for room stop waiting
	ss.stalled = false
	will := c.will
	if c.normal {
		will = nil
	}
	persistent := ss.persistent
	if will != nil && c.delay > 0 && persistent {
		ss.will, ss.willClient = will, c.client
	}
	if will != nil && c.delay > 0 && persistent && c.delay < ss.expiry {
		// Otherwise expire sends it, once the session is gone: a client
		// that sees the will and reconnects then finds no session.
		ss.willTimer = time.AfterFunc(time.Duration(c.delay)*time.Second, func() {
			ss.mu.Lock()
			w, wc := ss.will, ss.willClient
			ss.will = nil
			ss.mu.Unlock()
			if w != nil {
				s.sendWill(wc, w)
			}
		})
	}
	if c.delay > 0 && persistent {
		will = nil
	}
	var rec SessionRecord
	if persistent {
		ss.startExpiry()
		rec = SessionRecord{ClientID: ss.id, Username: c.client.Username, Version: c.client.Version, Expiry: ss.expiry, Disconnected: s.now()}
	}
	ss.mu.Unlock()
	if persistent && rec.Expiry != 0xFFFFFFFF {
		s.hooks.SaveSession(rec) // its expiry runs from now, also across a restart
	}
	if will != nil {
		s.sendWill(c.client, will)
	}
	if !persistent {
		s.forget(ss)
	}
	if errors.Is(err, errTakenOver) {
		err = errTakenOver
	}
	s.hooks.Disconnected(c.client, err)
}

func (s *Server) sendWill(cl *Client, m *Message) {
	if s.opt.will != nil {
		if !s.opt.will.MaySendWill(cl, m) || sysDenied(m.Topic) {
			return
		}
	} else if sysDenied(m.Topic) || !s.hooks.MayPublish(cl, m.Topic) {
		return
	}
	m.Created = s.now()
	s.hooks.Published(cl, m)
	s.route(m, false)
}

// newMessage copies a PUBLISH (or will) out of the packet buffer.
func newMessage(from string, t, payload []byte, qos byte, retain bool, pr *mqttwire.Properties, now time.Time) *Message {
	m := &Message{Topic: string(t), Payload: append([]byte(nil), payload...), QoS: qos, Retain: retain, From: from, Created: now}
	if pr == nil {
		return m
	}
	var mp MessageProps
	any := false
	if pr.Has(mqttwire.PropPayloadFormat) {
		mp.PayloadFormat, mp.HasPayloadFormat, any = pr.PayloadFormat, true, true
	}
	if pr.Has(mqttwire.PropMessageExpiry) && pr.MessageExpiry > 0 {
		mp.MessageExpiry, any = pr.MessageExpiry, true
	}
	if pr.Has(mqttwire.PropContentType) {
		mp.ContentType, any = string(pr.ContentType), true
	}
	if pr.Has(mqttwire.PropResponseTopic) {
		mp.ResponseTopic, any = string(pr.ResponseTopic), true
	}
	if pr.Has(mqttwire.PropCorrelationData) {
		mp.CorrelationData, any = append([]byte{}, pr.CorrelationData...), true
	}
	for _, u := range pr.User {
		mp.User, any = append(mp.User, UserProperty{string(u.Key), string(u.Value)}), true
	}
	if any {
		m.Props = &mp
	}
	return m
}

// handle handles one packet after CONNECT. An error ends the connection
// (an MQTT 5 client has been told why).
func (c *conn) handle(p *mqttwire.Packet) error {
	if len(c.held) > 0 && (p.Type != mqttwire.PUBLISH || p.QoS != 1) {
		c.releaseHeld() // every other answer comes after the held PUBACKs
	}
	switch p.Type {
	case mqttwire.PUBLISH:
		return c.publish(p)
	case mqttwire.PUBACK:
		c.sess.acked(p.ID, false)
	case mqttwire.PUBREC:
		if c.sess.received(p.ID, p.Reason) {
			if p.Reason < 0x80 {
				c.sendAck(mqttwire.PUBREL, p.ID, 0)
			}
		} else {
			c.sendAck(mqttwire.PUBREL, p.ID, mqttwire.PacketIDNotFound)
		}
		c.flush()
	case mqttwire.PUBCOMP:
		c.sess.acked(p.ID, true)
	case mqttwire.PUBREL:
		ss := c.sess
		ss.mu.Lock()
		m, ok := ss.inQoS2[p.ID]
		delete(ss.inQoS2, p.ID)
		if len(ss.inQoS2) == 0 {
			ss.inQoS2 = nil
		}
		persistent := ss.persistent
		ss.mu.Unlock()
		if ok && persistent && c.s.opt.incoming != nil {
			c.s.opt.incoming.DeleteIncoming(ss.id, p.ID)
		}
		if m != nil { // a restored session's message (none is kept now: routed at PUBLISH)
			c.s.hooks.Published(c.client, m)
			c.s.count.received.Add(1)
			c.s.route(m, true)
			if c.s.opt.durable != nil {
				c.s.opt.durable.Durable(c.client)
			}
		}
		_ = ok // an unknown id gets PUBCOMP 0x00 too, as mosquitto 2.0 and 2.1
		c.sendAck(mqttwire.PUBCOMP, p.ID, mqttwire.Success)
		c.flush()
	case mqttwire.SUBSCRIBE:
		c.subscribe(p)
	case mqttwire.UNSUBSCRIBE:
		c.unsubscribe(p)
	case mqttwire.PINGREQ:
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.PINGRESP, Version: c.version})
		c.flush()
	case mqttwire.DISCONNECT:
		if c.version == 5 && p.Props.Has(mqttwire.PropSessionExpiry) {
			ss := c.sess
			ss.mu.Lock()
			bad := ss.expiry == 0 && p.Props.SessionExpiry != 0
			was, changed := ss.persistent, ss.expiry != p.Props.SessionExpiry
			if !bad {
				ss.expiry = p.Props.SessionExpiry
				ss.persistent = ss.expiry != 0
			}
			now := ss.persistent
			ss.mu.Unlock()
			if bad {
				c.disconnect(mqttwire.ProtocolError)
				return errors.New("DISCONNECT sets a session expiry after CONNECT said 0")
			}
			// The store follows: a session ended by expiry 0 is deleted
			// (forget skips a session that is no longer persistent), a new
			// expiry is saved.
			switch {
			case was && !now:
				c.s.hooks.DeleteSession(ss.id)
			case now && changed:
				c.s.hooks.SaveSession(SessionRecord{ClientID: ss.id, Username: c.client.Username, Version: c.client.Version, Expiry: p.Props.SessionExpiry})
			}
		}
		c.normal = p.Reason != mqttwire.DisconnectWithWill
		return errClientDisconnect
	case mqttwire.AUTH:
		c.disconnect(mqttwire.ProtocolError)
		return errors.New("AUTH without an authentication method")
	}
	return nil
}

var errClientDisconnect = errors.New("client sent DISCONNECT")

func (c *conn) publish(p *mqttwire.Packet) error {
	s := c.s
	v5 := c.version == 5
	t := p.Topic
	if v5 && p.Props.Has(mqttwire.PropTopicAlias) {
		a := p.Props.TopicAlias
		if int(a) > s.opts.TopicAliasMaximum {
			c.disconnect(mqttwire.TopicAliasInvalid)
			return errors.New("topic alias above the maximum")
		}
		if len(t) == 0 {
			at, ok := c.aliases[a]
			if !ok {
				c.disconnect(mqttwire.ProtocolError)
				return errors.New("unknown topic alias")
			}
			t = unsafeBytes(at)
		} else {
			if c.aliases == nil {
				c.aliases = map[uint16]string{}
			}
			c.aliases[a] = string(t)
		}
	}
	if p.Retain && s.opts.RetainNotAvailable {
		c.disconnect(mqttwire.RetainNotSupported)
		return errors.New("retained PUBLISH while retain_available is false")
	}
	t = c.mount(t)
	ss := c.sess
	if p.QoS == 2 {
		ss.mu.Lock()
		_, dup := ss.inQoS2[p.ID]
		full := !dup && len(ss.inQoS2) >= max(s.opts.MaxInflight, 1) && v5
		ss.mu.Unlock()
		if full { // as mosquitto 2.0 and 2.1: refused, the connection kept
			c.sendAck(mqttwire.PUBREC, p.ID, mqttwire.QuotaExceeded)
			c.flush()
			return nil
		}
		if dup {
			c.sendAck(mqttwire.PUBREC, p.ID, 0)
			c.flush()
			return nil
		}
	}
	if s.opt.icpt != nil && s.opt.icpt.Intercepts(c.client, string(t)) {
		return c.intercepted(p, t)
	}
	denied := sysDenied(string(t)) || !s.hooks.MayPublish(c.client, string(t))
	var m *Message
	if !denied {
		var pr *mqttwire.Properties
		if v5 {
			pr = &p.Props
		}
		m = newMessage(c.client.ID, t, p.Payload, p.QoS, p.Retain, pr, s.now())
	}
	code := mqttwire.Success
	if denied && v5 {
		code = mqttwire.NotAuthorized
	}
	switch p.QoS {
	case 0:
		if m != nil {
			s.hooks.Published(c.client, m)
			s.count.received.Add(1)
			s.route(m, true)
		}
		return nil
	case 1:
		if m != nil {
			s.hooks.Published(c.client, m)
			s.count.received.Add(1)
			if s.route(m, true) == 0 && v5 {
				code = mqttwire.NoMatchingSubscribers
			}
		}
		if s.opt.durable != nil {
			// The PUBACK waits for Durable, with those of the publishes
			// already buffered behind this one (releaseHeld).
			c.hold(p.ID, code)
			return nil
		}
		c.sendAck(mqttwire.PUBACK, p.ID, code)
	case 2:
		// Routed now (the spec's method A), its packet id kept until
		// PUBREL so that a resend is not routed again: what PUBREC
		// acknowledges is in the subscribers' sessions (and durable) at
		// once, so a restart between PUBREC and PUBREL loses nothing, and
		// an unreleased message holds no memory but its id.
		if code < 0x80 {
			ss.mu.Lock()
			if ss.inQoS2 == nil {
				ss.inQoS2 = map[uint16]*Message{}
			}
			ss.inQoS2[p.ID] = nil
			persistent := ss.persistent
			ss.mu.Unlock()
			if m != nil {
				s.hooks.Published(c.client, m)
				s.count.received.Add(1)
				s.route(m, true)
			}
			// The id after the message's copies: a store commits in the
			// order it is handed changes, so a kill -9 between two commits
			// can leave the copies without the id (a resend is routed
			// again: a duplicate) but never the id without the copies (a
			// resend dropped as a duplicate: a lost message).
			if persistent && s.opt.incoming != nil {
				s.opt.incoming.SaveIncoming(ss.id, p.ID)
			}
			if s.opt.durable != nil {
				s.opt.durable.Durable(c.client)
			}
		}
		c.sendAck(mqttwire.PUBREC, p.ID, code)
	}
	c.flush()
	return nil
}

// intercepted answers a publish the Interceptor takes.
func (c *conn) intercepted(p *mqttwire.Packet, t []byte) error {
	c.releaseHeld() // its answer comes after the PUBACKs held before it
	var pr *mqttwire.Properties
	if c.version == 5 {
		pr = &p.Props
	}
	a := c.s.opt.icpt.Intercept(c.client, newMessage(c.client.ID, t, p.Payload, p.QoS, p.Retain, pr, c.s.now()))
	if p.QoS == 0 {
		return nil
	}
	ack := mqttwire.Packet{Type: mqttwire.PUBACK, Version: c.version, ID: p.ID}
	if p.QoS == 2 {
		ack.Type = mqttwire.PUBREC
		if a.Code < 0x80 || c.version != 5 {
			ss := c.sess
			ss.mu.Lock()
			if ss.inQoS2 == nil {
				ss.inQoS2 = map[uint16]*Message{}
			}
			ss.inQoS2[p.ID] = nil // PUBREL gets PUBCOMP, nothing is routed
			ss.mu.Unlock()
		}
	}
	if c.version == 5 {
		ack.Reason = a.Code
		if a.Code >= 0x80 && a.Reason != "" {
			ack.Props.ReasonString = []byte(a.Reason)
			ack.Props.Set(mqttwire.PropReasonString)
		}
	}
	c.sendRaw(&ack)
	c.flush()
	return nil
}

func (c *conn) subscribe(p *mqttwire.Packet) {
	s := c.s
	ss := c.sess
	var subID uint32
	if len(p.Props.SubscriptionIDs) > 0 {
		subID = p.Props.SubscriptionIDs[0]
	}
	ack := mqttwire.Packet{Type: mqttwire.SUBACK, Version: c.version, ID: p.ID}
	type retainedFor struct {
		filter string
		qos    byte
		subID  uint32
	}
	var send []retainedFor
	for _, f := range p.Subs {
		sub := &topic.Subscription{Client: ss.id, Filter: c.mountFilter(string(f.Filter)), QoS: f.QoS, NoLocal: f.NoLocal,
			RetainAsPublished: f.RetainAsPublished, RetainHandling: f.RetainHandling, ID: subID}
		if c.client.Bridge {
			sub.NoLocal, sub.RetainAsPublished = true, true
		}
		if s.opt.sub != nil && !s.opt.sub.MaySubscribe(c.client, sub.Filter) {
			code := mqttwire.NotAuthorized
			if c.version != 5 {
				code = 0x80
			}
			ack.Reasons = append(ack.Reasons, code)
			continue
		}
		if s.opts.Mosquitto20 {
			ss.mu.Lock()
			if old := ss.subs[sub.Filter]; old != nil && old.RetainAsPublished {
				sub.RetainAsPublished = true // 2.0.11 keeps it on a replaced subscription
			}
			ss.mu.Unlock()
		}
		replaced, err := s.subs.Subscribe(sub)
		if err != nil {
			ack.Reasons = append(ack.Reasons, mqttwire.TopicFilterInvalid)
			continue
		}
		ss.mu.Lock()
		if ss.subs == nil {
			ss.subs = map[string]*topic.Subscription{}
		}
		ss.subs[sub.Filter] = sub
		persistent := ss.persistent
		ss.mu.Unlock()
		if persistent {
			s.hooks.SaveSubscription(ss.id, *sub)
		}
		ack.Reasons = append(ack.Reasons, mqttwire.ReasonCode(f.QoS))
		_, _, shared, _ := mqttwire.SplitShared(sub.Filter)
		if !shared && (f.RetainHandling == 0 || f.RetainHandling == 1 && !replaced) {
			send = append(send, retainedFor{sub.Filter, f.QoS, subID})
		}
	}
	c.sendRaw(&ack)
	c.flush()
	now := s.now()
	for _, r := range send {
		var ms []*Message
		s.retained.Match(r.filter, func(_ string, m *Message) bool {
			ms = append(ms, m)
			return true
		})
		for _, m := range ms {
			if m.Expired(now) {
				if s.retained.Delete(m.Topic) {
					s.hooks.DeleteRetained(m.Topic)
				}
				continue
			}
			ss.deliver(&delivery{m: m, qos: min(m.QoS, r.qos), retain: true, subID: r.subID}, false)
		}
	}
}

func (c *conn) unsubscribe(p *mqttwire.Packet) {
	s := c.s
	ss := c.sess
	ack := mqttwire.Packet{Type: mqttwire.UNSUBACK, Version: c.version, ID: p.ID}
	for _, f := range p.Subs {
		filter := c.mountFilter(string(f.Filter))
		found := s.subs.Unsubscribe(ss.id, filter)
		ss.mu.Lock()
		delete(ss.subs, filter)
		if len(ss.subs) == 0 {
			ss.subs = nil
		}
		persistent := ss.persistent
		ss.mu.Unlock()
		if found && persistent {
			s.hooks.DeleteSubscription(ss.id, filter)
		}
		code := mqttwire.Success
		if !found {
			code = mqttwire.NoSubscriptionExisted
		}
		ack.Reasons = append(ack.Reasons, code)
	}
	c.sendRaw(&ack)
	c.flush()
}

// mount puts a topic under the listener's mount point.
func (c *conn) mount(t []byte) []byte {
	if c.l.MountPoint == "" {
		return t
	}
	return append([]byte(c.l.MountPoint), t...)
}

// mountFilter puts a filter under the mount point: in front of it all, as
// mosquitto 2.0 and 2.1 do, $share/ included (such a filter then matches
// the literal level $share only).
func (c *conn) mountFilter(f string) string { return c.l.MountPoint + f }
