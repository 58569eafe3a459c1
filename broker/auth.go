package broker

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// hooks is the broker's side of the engine's seam (engine.Hooks and its
// optional parts): mosquitto's authentication and authorisation (password
// files, allow_anonymous, use_identity_as_username /
// use_subject_as_username, use_username_as_clientid, acl_file), the
// $mqttctl/ enrolment requests, logs, metrics and persistence. Every
// decision is a plain function of the listener's current security state
// and the connection (conn), so that a reload applies at once.
type hooks struct {
	engine.NopHooks
	b *Broker

	// verifying bounds the password hashes checked at once: an argon2id
	// check (mosquitto 2.1's) takes 46 MiB and tens of milliseconds, so a
	// reconnect storm of N clients must not take N times that memory.
	verifying chan struct{}
}

var (
	_ engine.Hooks            = (*hooks)(nil)
	_ engine.Interceptor      = (*hooks)(nil)
	_ engine.WillChecker      = (*hooks)(nil)
	_ engine.SubscribeChecker = (*hooks)(nil)
	_ engine.RefusalHook      = (*hooks)(nil)
	_ engine.Durability       = (*hooks)(nil)
	_ engine.IncomingStore    = (*hooks)(nil)
)

// conn is what the broker keeps of a connection (engine.Client.Data).
type conn struct {
	ls    *listenerState
	claim bool                 // a claim certificate on a provision_by_claim listener
	cred  atomic.Pointer[cred] // a password client's login, for SIGHUP re-checks
}

// cred is what a password client logged in with: its password, and the
// hash it matched (a reload that leaves the hash unchanged needs no new
// check).
type cred struct {
	pw   []byte
	hash confgen.Hash
}

// connOf returns cl's broker state; nil for a session restored from
// storage (its listener is not known until it connects).
func connOf(cl *engine.Client) *conn {
	if cl == nil {
		return nil
	}
	c, _ := cl.Data.(*conn)
	return c
}

// verify checks password against hash, at most GOMAXPROCS at once.
func (h *hooks) verify(hash confgen.Hash, password []byte) bool {
	h.verifying <- struct{}{}
	defer func() { <-h.verifying }()
	return hash.Verify(password)
}

func peerCert(cs *tls.ConnectionState) *x509.Certificate {
	if cs != nil && len(cs.PeerCertificates) > 0 {
		return cs.PeerCertificates[0]
	}
	return nil
}

// refuse logs and counts a refused CONNECT and returns the engine's
// verdict (MQTT 5 code; the engine sends 3.1.1 clients mosquitto's return
// code for it).
func (h *hooks) refuse(req *engine.ConnectRequest, ls *listenerState, code mqttwire.ReasonCode, r refusal, why string) engine.Verdict {
	ls.m.refuse(r)
	h.b.log.Info("client refused", "listener", req.Listener, "remote", req.Remote, "client", req.ClientID,
		"username", req.Username, "reason", why)
	return engine.Verdict{Code: code}
}

// Authenticate decides a CONNECT as mosquitto does. With
// use_username_as_clientid the (final) username becomes the client id,
// and a client without one is refused.
func (h *hooks) Authenticate(req *engine.ConnectRequest) engine.Verdict {
	ls := h.b.listener(req.Listener)
	if ls == nil {
		return engine.Verdict{Code: mqttwire.ServerUnavailable}
	}
	sec := ls.sec.Load()
	v := engine.Verdict{}
	if req.Assigned {
		if !sec.allowZeroID {
			code := mqttwire.ClientIDNotValid
			if req.Version == 5 {
				code = mqttwire.UnspecifiedError
			}
			return h.refuse(req, ls, code, refusedProtocol, "empty client id (allow_zero_length_clientid false)")
		}
		var b [16]byte
		_, _ = rand.Read(b[:])
		v.ClientID = sec.autoIDPrefix + hex.EncodeToString(b[:])
	}
	c := &conn{ls: ls}
	username, hasUsername := req.Username, req.HasUsername && req.Username != ""
	if t := ls.spec.TLS; t != nil && (t.UseIdentityAsUsername || t.UseSubjectAsUsername) {
		cert := peerCert(req.TLS)
		if cert == nil {
			return h.refuse(req, ls, mqttwire.BadUsernameOrPassword, refusedCertIdentity, "no client certificate, but the listener takes the username from it")
		}
		// The CONNECT username and password are discarded.
		name := cert.Subject.String()
		if t.UseIdentityAsUsername {
			name = cert.Subject.CommonName
		}
		if name == "" {
			// Without this the client would be anonymous to the ACL.
			return h.refuse(req, ls, mqttwire.BadUsernameOrPassword, refusedCertIdentity, "the client certificate has no CN to use as the username")
		}
		username, hasUsername = name, true
		v.SetUsername, v.Username, v.HasUsername = true, name, true
	} else if !hasUsername {
		if !sec.allowAnon {
			return h.refuse(req, ls, mqttwire.NotAuthorized, refusedNotAuthorised, "anonymous clients are not allowed (allow_anonymous false)")
		}
	} else if sec.passwords == nil {
		// No password_file: mosquitto 2.0 lets a username in only where
		// anonymous clients are allowed (there is nothing to check it with).
		if !sec.allowAnon {
			return h.refuse(req, ls, mqttwire.NotAuthorized, refusedNotAuthorised, "no password_file to check the username against, and allow_anonymous is false")
		}
	} else {
		hash, ok := sec.passwords[username]
		if !ok {
			return h.refuse(req, ls, mqttwire.NotAuthorized, refusedBadPassword, "unknown user")
		}
		if !h.verify(hash, req.Password) {
			return h.refuse(req, ls, mqttwire.NotAuthorized, refusedBadPassword, "wrong password")
		}
		c.cred.Store(&cred{pw: append([]byte(nil), req.Password...), hash: hash})
	}
	id := req.ClientID
	if v.ClientID != "" {
		id = v.ClientID
	}
	if ls.spec.UseUsernameAsClientID {
		if !hasUsername {
			return h.refuse(req, ls, mqttwire.NotAuthorized, refusedNoUsername, "no username, and use_username_as_clientid needs one")
		}
		id, v.ClientID = username, username
	}
	c.claim = h.b.enrol != nil && ls.spec.Provision && isClaimCert(req.TLS)
	if c.claim {
		// A claim client sends requests and nothing else: its packets are
		// bounded by the request limit before they are read.
		v.MaxPacketSize = MaxClaimPacket
		// A claim certificate is shared by a batch of devices: it must not
		// knock a device off (or take its session) by using its client id.
		if owner, _, ok := h.b.srv.SessionOwner(id); ok && owner != username {
			return h.refuse(req, ls, mqttwire.ClientIDNotValid, refusedProtocol,
				"a claim certificate may not use the client id of a session of another identity")
		}
	}
	v.Data = c
	return v
}

// Refused logs and counts the CONNECTs the engine refused by its own
// rules, and connections that never sent a valid CONNECT.
func (h *hooks) Refused(req *engine.ConnectRequest, code mqttwire.ReasonCode, err error) {
	ls := h.b.listener(req.Listener)
	if ls == nil {
		return
	}
	if req.Version != 0 {
		ls.m.refuse(refusedProtocol)
		h.b.log.Info("client refused", "listener", req.Listener, "remote", req.Remote, "client", req.ClientID, "reason", err.Error())
		return
	}
	r, why := refusedNotMQTT, err.Error()
	switch {
	case errors.Is(err, engine.ErrConnectTimeout):
		r = refusedConnectTimeout
	case mqttwire.CodeOf(err) == mqttwire.PacketTooLarge:
		r, why = refusedConnectTooLarge, fmt.Sprintf("CONNECT larger than %d bytes (the most a client that has not logged in may send)", MaxConnectSize)
	}
	ls.m.refuse(r)
	h.b.log.Info("client refused: no valid CONNECT", "listener", req.Listener, "remote", req.Remote, "reason", why)
}

func (h *hooks) Connected(cl *engine.Client, present bool) {
	c := connOf(cl)
	if c == nil {
		return
	}
	c.ls.m.connected()
	attrs := []any{"listener", cl.Listener, "remote", cl.Remote, "client", cl.ID,
		"username", cl.Username, "protocol", cl.Version, "session_present", present}
	if cs := cl.TLS; cs != nil {
		attrs = append(attrs, "tls", tls.VersionName(cs.Version), "cipher", tls.CipherSuiteName(cs.CipherSuite))
		if cert := peerCert(cs); cert != nil {
			attrs = append(attrs, "cert_cn", cert.Subject.CommonName)
		}
	}
	h.b.log.Info("client connected", attrs...)
}

func (h *hooks) Disconnected(cl *engine.Client, err error) {
	if h.b.enrol != nil {
		h.b.enrol.busy.Delete(cl)
	}
	reason := "client sent DISCONNECT"
	if err != nil {
		reason = err.Error()
	}
	h.b.log.Info("client disconnected", "listener", cl.Listener, "remote", cl.Remote, "client", cl.ID,
		"username", cl.Username, "reason", reason)
}

func aclClient(cl *engine.Client) confgen.Client {
	return confgen.Client{Username: cl.Username, Anonymous: !cl.HasUsername || cl.Username == "", ClientID: cl.ID}
}

// securityOf is the security state that decides for cl: its listener's,
// or, for a session restored from storage and not yet connected, the one
// every listener shares (per_listener_settings false); nil when that
// cannot be known, which refuses (fail closed: mosquitto has no listener
// for such a session either).
func (h *hooks) securityOf(cl *engine.Client) *security {
	if c := connOf(cl); c != nil {
		return c.ls.sec.Load()
	}
	if !h.b.cfg.PerListenerSettings && len(h.b.listeners) > 0 {
		return h.b.listeners[0].sec.Load()
	}
	return nil
}

// MayPublish is the ACL's write check of a PUBLISH and of a will (the
// engine has refused $SYS already). The $mqttctl/ namespace is the
// broker's own where it answers enrolment requests (Intercept takes a
// client's publishes there; a will there is refused), and a claim client
// publishes nothing but its requests.
func (h *hooks) MayPublish(cl *engine.Client, t string) bool {
	if h.b.enrol != nil && strings.HasPrefix(t, reserved) {
		return false
	}
	if c := connOf(cl); c != nil && c.claim {
		return false
	}
	sec := h.securityOf(cl)
	if sec == nil {
		return false
	}
	if sec.acl == nil {
		return true
	}
	if !sec.acl.Allowed(aclClient(cl), t, confgen.Write) {
		h.b.log.Info("publish denied", "client", cl.ID, "username", cl.Username, "topic", t)
		return false
	}
	return true
}

// MayRead is the ACL's read check, asked at every delivery. A claim client
// reads its answers only, whatever the ACL file says; on a renew_pki
// listener the answers' topics are readable by their requester (Intercept
// checks that the requester subscribed to its own).
func (h *hooks) MayRead(cl *engine.Client, t string) bool {
	c := connOf(cl)
	if c != nil && h.b.enrol != nil {
		reply := strings.HasPrefix(t, ReplyPrefix)
		if c.claim {
			return reply
		}
		if reply && c.ls.renew != nil {
			return true
		}
	}
	sec := h.securityOf(cl)
	if sec == nil {
		return false
	}
	return sec.acl == nil || sec.acl.Allowed(aclClient(cl), t, confgen.Read)
}

// MaySubscribe refuses a claim client every subscription but one topic of
// its answers (mosquitto grants the rest and checks reads at delivery).
func (h *hooks) MaySubscribe(cl *engine.Client, filter string) bool {
	c := connOf(cl)
	if c == nil || !c.claim {
		return true
	}
	return strings.HasPrefix(filter, ReplyPrefix) && !strings.ContainsAny(filter, "+#")
}

// MaySendWill applies to a will, when it is sent (at the end of the
// connection, or of its delay), the rules of the client's publishes, as
// mosquitto does (context__send_will checks the ACL then): $SYS, the
// broker's own $mqttctl/ namespace, a claim certificate's limits and the
// ACL file; and a client whose certificate is revoked (crlfile, live)
// sends none.
func (h *hooks) MaySendWill(cl *engine.Client, m *engine.Message) bool {
	if why := h.willRefusal(cl, m.Topic); why != "" {
		h.b.log.Info("will not sent", "client", cl.ID, "username", cl.Username, "topic", m.Topic, "reason", why)
		return false
	}
	return true
}

// willRefusal says why cl may not send a will to topic ("" if it may).
func (h *hooks) willRefusal(cl *engine.Client, topic string) string {
	c := connOf(cl)
	switch {
	case len(topic) >= 4 && strings.EqualFold(topic[:4], "$SYS") && !confgen.SysWritable(topic):
		return "clients do not publish to $SYS"
	case h.b.enrol != nil && strings.HasPrefix(topic, reserved):
		return "$mqttctl/ is the broker's own namespace"
	case c != nil && c.claim:
		return "a claim certificate publishes nothing but its requests"
	}
	if c != nil {
		if _, err := h.b.revokedClient(c.ls, cl); err != nil {
			return "its certificate is revoked: " + err.Error()
		}
	}
	sec := h.securityOf(cl)
	if sec == nil {
		return "the session's listener is not known (per_listener_settings)"
	}
	if sec.acl != nil && !sec.acl.Allowed(aclClient(cl), topic, confgen.Write) {
		return "the ACL does not allow it"
	}
	return ""
}

// Intercepts: a client's publishes under $mqttctl/ are the enrolment
// requests' (answered or refused by the broker, never routed) wherever a
// listener has renew_pki.
func (h *hooks) Intercepts(_ *engine.Client, t string) bool {
	return h.b.enrol != nil && strings.HasPrefix(t, reserved)
}

func (h *hooks) Intercept(cl *engine.Client, m *engine.Message) engine.Answer {
	return h.b.enrol.publish(cl, m)
}

// The persistence calls go to the store when persistence is on.

func (h *hooks) SaveSession(r engine.SessionRecord) {
	if st := h.b.store; st != nil {
		st.SaveSession(r)
	}
}

func (h *hooks) DeleteSession(id string) {
	if st := h.b.store; st != nil {
		st.DeleteSession(id)
	}
}

func (h *hooks) SaveSubscription(id string, s topic.Subscription) {
	if st := h.b.store; st != nil {
		st.SaveSubscription(id, s)
	}
}

func (h *hooks) DeleteSubscription(id, filter string) {
	if st := h.b.store; st != nil {
		st.DeleteSubscription(id, filter)
	}
}

func (h *hooks) SaveRetained(m *engine.Message) {
	if st := h.b.store; st != nil {
		st.SaveRetained(m)
	}
}

func (h *hooks) DeleteRetained(t string) {
	if st := h.b.store; st != nil {
		st.DeleteRetained(t)
	}
}

func (h *hooks) SaveQueued(id string, seq uint64, q engine.Queued) {
	if st := h.b.store; st != nil {
		st.SaveQueued(id, seq, q)
	}
}

func (h *hooks) DeleteQueued(id string, seq uint64) {
	if st := h.b.store; st != nil {
		st.DeleteQueued(id, seq)
	}
}

func (h *hooks) SaveIncoming(id string, pid uint16) {
	if st := h.b.store; st != nil {
		st.SaveIncoming(id, pid)
	}
}

func (h *hooks) DeleteIncoming(id string, pid uint16) {
	if st := h.b.store; st != nil {
		st.DeleteIncoming(id, pid)
	}
}

func (h *hooks) Durable(cl *engine.Client) {
	if st := h.b.store; st != nil {
		st.Durable(cl)
	}
}

// recheck disconnects password clients whose password no longer verifies
// (after a SIGHUP reload), as mosquitto does. Certificate clients stay.
func (h *hooks) recheck() int {
	var drop []*engine.Client
	h.b.srv.Clients(func(cl *engine.Client) bool {
		c := connOf(cl)
		if c == nil {
			return true
		}
		cr := c.cred.Load()
		if cr == nil {
			return true
		}
		sec := c.ls.sec.Load()
		if sec.passwords == nil {
			return true
		}
		// Checking changed hashes may take a while (argon2id); logins go
		// on meanwhile (no lock is held).
		hash, ok := sec.passwords[cl.Username]
		switch {
		case !ok:
			drop = append(drop, cl)
		case hash.Equal(cr.hash):
		case !h.verify(hash, cr.pw):
			drop = append(drop, cl)
		default:
			c.cred.CompareAndSwap(cr, &cred{pw: cr.pw, hash: hash})
		}
		return true
	})
	for _, cl := range drop {
		h.b.log.Info("client disconnected: password no longer valid after reload", "client", cl.ID, "username", cl.Username)
		h.b.srv.DisconnectClient(cl, mqttwire.NotAuthorized)
	}
	return len(drop)
}

// stateStore is the persistence the hooks hand the engine's calls to.
type stateStore interface {
	SaveSession(engine.SessionRecord)
	DeleteSession(string)
	SaveSubscription(string, topic.Subscription)
	DeleteSubscription(string, string)
	SaveRetained(*engine.Message)
	DeleteRetained(string)
	SaveQueued(string, uint64, engine.Queued)
	DeleteQueued(string, uint64)
	Durable(*engine.Client)
	SaveIncoming(string, uint16)
	DeleteIncoming(string, uint16)
	Restore(srv *engine.Server, drop func(topic string) bool) error
	Sync() error
	Close() error
}
