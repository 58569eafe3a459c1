package broker

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttctl/mqttctl/confgen"
)

// sysSentinel replaces the topic of a client's publish to $SYS so that the
// engine acknowledges and drops it (mosquitto does; the engine would leave a
// QoS 1 publisher waiting). Topic names cannot hold U+0000, so it cannot
// clash with a real topic.
const sysSentinel = "\x00mqttctl/denied-$SYS"

// authHook enforces mosquitto's authentication and authorisation: password
// files, allow_anonymous, use_identity_as_username / use_subject_as_username
// and acl_file, with mosquitto's CONNACK and PUBACK codes.
type authHook struct {
	mqtt.HookBase
	b *Broker

	mu    sync.Mutex
	creds map[*mqtt.Client]cred // passwords of password clients, for SIGHUP re-checks

	// verifying bounds the password hashes checked at once: an argon2id
	// check (mosquitto 2.1's) takes 46 MiB and tens of milliseconds, so a
	// reconnect storm of N clients must not take N times that memory.
	verifying chan struct{}

	willMu sync.Mutex
	wills  map[string]*time.Timer // delayed wills by client id (delayWill)
}

// cred is what a password client logged in with: its password, and the
// hash it matched (a reload that leaves the hash unchanged needs no new
// check).
type cred struct {
	pw   []byte
	hash confgen.Hash
}

// verify checks password against hash, at most GOMAXPROCS at once.
func (h *authHook) verify(hash confgen.Hash, password []byte) bool {
	h.verifying <- struct{}{}
	defer func() { <-h.verifying }()
	return hash.Verify(password)
}

func (h *authHook) ID() string { return "mqttctl-auth" }

func (h *authHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnConnect, mqtt.OnConnectAuthenticate, mqtt.OnACLCheck, mqtt.OnPublish, mqtt.OnPacketRead,
		mqtt.OnSubscribed, mqtt.OnDisconnect, mqtt.OnSessionEstablish, mqtt.OnSessionEstablished, mqtt.OnWill:
		return true
	}
	return false
}

func peerCert(cl *mqtt.Client) *x509.Certificate {
	if tc, ok := tlsOf(cl.Net.Conn); ok {
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 {
			return certs[0]
		}
	}
	return nil
}

// refuse sends mosquitto's CONNACK for a refused client: v3 return code
// v3code, v5 reason v5code.
func (h *authHook) refuse(cl *mqtt.Client, v3code byte, v5code packets.Code, r refusal, why string) error {
	if ls := h.b.listener(cl.Net.Listener); ls != nil {
		ls.m.refuse(r)
	}
	h.b.log.Info("client refused", "listener", cl.Net.Listener, "remote", cl.Net.Remote, "client", cl.ID,
		"username", string(cl.Properties.Username), "reason", why)
	if cl.Properties.ProtocolVersion == 5 {
		_ = h.b.srv.SendConnack(cl, v5code, false, nil)
		return v5code
	}
	_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: v3code})
	return v5code
}

// OnConnect decides whether a client may connect and sends the refusal.
// With use_username_as_clientid the (final) username becomes the client id,
// and a client without one is refused, as mosquitto does.
func (h *authHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	ls := h.b.listener(cl.Net.Listener)
	if ls == nil {
		return packets.ErrServerUnavailable
	}
	if err := h.authenticate(cl, pk, ls); err != nil {
		return err
	}
	if ls.spec.UseUsernameAsClientID {
		if len(cl.Properties.Username) == 0 {
			return h.refuse(cl, 5, packets.ErrNotAuthorized, refusedNoUsername, "no username, and use_username_as_clientid needs one")
		}
		cl.ID = string(cl.Properties.Username)
	}
	if h.b.enrol.isClaim(cl, ls) {
		// A claim certificate is shared by a batch of devices: it must not
		// knock a device off (or take its session) by using its client id.
		if other, ok := h.b.srv.Clients.Get(cl.ID); ok && !bytes.Equal(other.Properties.Username, cl.Properties.Username) {
			return h.refuse(cl, 2, packets.ErrClientIdentifierNotValid, refusedProtocol,
				"a claim certificate may not use the client id of a session of another identity")
		}
	}
	// mosquitto 2.1 refuses a 3.1.x client whose keepalive max_keepalive
	// cannot honour (0 or above it) once it is authorised; a v5 client gets
	// the server keepalive instead (src/handle_connect.c:256-271 of 2.1.2;
	// 2.0.11 let it in, fixed in 2.0.12 for CVE-2020-13849).
	if max := uint16(h.b.cfg.MaxKeepalive); max > 0 && cl.Properties.ProtocolVersion < 5 &&
		(pk.Connect.Keepalive == 0 || pk.Connect.Keepalive > max) {
		return h.refuse(cl, 2, packets.ErrUnspecifiedError, refusedProtocol,
			fmt.Sprintf("keepalive %d is 0 or above max_keepalive %d", pk.Connect.Keepalive, max))
	}
	return nil
}

func (h *authHook) authenticate(cl *mqtt.Client, pk packets.Packet, ls *listenerState) error {
	sec := ls.sec.Load()
	if t := ls.spec.TLS; t != nil && (t.UseIdentityAsUsername || t.UseSubjectAsUsername) {
		cert := peerCert(cl)
		if cert == nil {
			return h.refuse(cl, 4, packets.ErrBadUsernameOrPassword, refusedCertIdentity, "no client certificate, but the listener takes the username from it")
		}
		// The CONNECT username and password are discarded.
		name := cert.Subject.String()
		if t.UseIdentityAsUsername {
			name = cert.Subject.CommonName
		}
		if name == "" {
			// Without this the client would be anonymous to the ACL.
			return h.refuse(cl, 4, packets.ErrBadUsernameOrPassword, refusedCertIdentity, "the client certificate has no CN to use as the username")
		}
		cl.Properties.Username = []byte(name)
		return nil
	}
	user := string(cl.Properties.Username)
	if !pk.Connect.UsernameFlag || user == "" {
		if !sec.allowAnon {
			return h.refuse(cl, 5, packets.ErrNotAuthorized, refusedNotAuthorised, "anonymous clients are not allowed (allow_anonymous false)")
		}
		return nil
	}
	if sec.passwords == nil {
		// No password_file: mosquitto 2.0 lets a username in only where
		// anonymous clients are allowed (there is nothing to check it with).
		if !sec.allowAnon {
			return h.refuse(cl, 5, packets.ErrNotAuthorized, refusedNotAuthorised, "no password_file to check the username against, and allow_anonymous is false")
		}
		return nil
	}
	hash, ok := sec.passwords[user]
	if !ok {
		return h.refuse(cl, 5, packets.ErrNotAuthorized, refusedBadPassword, "unknown user")
	}
	if !h.verify(hash, pk.Connect.Password) {
		return h.refuse(cl, 5, packets.ErrNotAuthorized, refusedBadPassword, "wrong password")
	}
	h.mu.Lock()
	h.creds[cl] = cred{pw: append([]byte(nil), pk.Connect.Password...), hash: hash}
	h.mu.Unlock()
	return nil
}

// OnConnectAuthenticate accepts: OnConnect has decided already.
func (h *authHook) OnConnectAuthenticate(*mqtt.Client, packets.Packet) bool { return true }

// OnSessionEstablish runs after authentication and before the engine hands
// the session of the same client id to cl. As mosquitto does
// (db__check_acl_of_all_messages in handle_connect.c, "assuming a possible
// change of username"), the session is kept, but every message queued or
// in flight in it that cl may not read is dropped first: otherwise a user
// who takes over another's client id would be sent what was queued for
// the other, past the read ACL (the engine resends a session's messages
// without asking the ACL). Later deliveries are checked as they happen.
func (h *authHook) OnSessionEstablish(cl *mqtt.Client, pk packets.Packet) {
	if pk.Connect.Clean {
		return // the engine discards the old session
	}
	old, ok := h.b.srv.Clients.Get(cl.ID)
	if !ok || old == cl || old.State.Inflight.Len() == 0 {
		return
	}
	ls := h.b.listener(cl.Net.Listener)
	if ls == nil {
		return
	}
	acl := ls.sec.Load().acl
	if acl == nil {
		return
	}
	who := aclClient(cl)
	for _, m := range old.State.Inflight.GetAll(false) {
		if m.FixedHeader.Type != packets.Publish || acl.Allowed(who, m.TopicName, confgen.Read) {
			continue
		}
		if old.State.Inflight.Delete(m.PacketID) {
			atomic.AddInt64(&h.b.srv.Info.Inflight, -1)
			if h.b.store != nil && h.b.store.engine != nil {
				h.b.store.engine.OnQosDropped(old, m)
			}
			h.b.log.Info("queued message dropped: the session's new user may not read it", "client", cl.ID,
				"username", string(cl.Properties.Username), "topic", m.TopicName)
		}
	}
}

func (h *authHook) OnSessionEstablished(cl *mqtt.Client, pk packets.Packet) {
	h.cancelWill(cl.ID) // back before its will's delay ended (MQTT-3.1.3-9)
	if ls := h.b.listener(cl.Net.Listener); ls != nil {
		ls.m.connected()
	}
	attrs := []any{"listener", cl.Net.Listener, "remote", cl.Net.Remote, "client", cl.ID,
		"username", string(cl.Properties.Username), "protocol", cl.Properties.ProtocolVersion, "clean", pk.Connect.Clean}
	if tc, ok := tlsOf(cl.Net.Conn); ok {
		cs := tc.ConnectionState()
		attrs = append(attrs, "tls", tls.VersionName(cs.Version), "cipher", tls.CipherSuiteName(cs.CipherSuite))
		if len(cs.PeerCertificates) > 0 {
			attrs = append(attrs, "cert_cn", cs.PeerCertificates[0].Subject.CommonName)
		}
	}
	h.b.log.Info("client connected", attrs...)
}

func (h *authHook) OnDisconnect(cl *mqtt.Client, err error, _ bool) {
	h.mu.Lock()
	delete(h.creds, cl)
	h.mu.Unlock()
	reason := "client sent DISCONNECT"
	if err != nil {
		reason = err.Error()
	}
	h.b.log.Info("client disconnected", "listener", cl.Net.Listener, "remote", cl.Net.Remote, "client", cl.ID,
		"username", string(cl.Properties.Username), "reason", reason)
}

func aclClient(cl *mqtt.Client) confgen.Client {
	return confgen.Client{Username: string(cl.Properties.Username), Anonymous: len(cl.Properties.Username) == 0, ClientID: cl.ID}
}

// OnACLCheck is asked for publishes (write), subscriptions and deliveries
// (read). Publishes are decided in OnPublish, which can answer as mosquitto
// does; subscriptions are always granted (mosquitto checks reads at
// delivery); deliveries follow the ACL.
func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if write {
		return true
	}
	ls := h.b.listener(cl.Net.Listener)
	if ls == nil {
		return false
	}
	if allow, decided := h.b.enrol.mayRead(cl, ls, topic); decided {
		// Before the ACL file: a claim client reads its answers only,
		// whatever the file says.
		return allow
	}
	acl := ls.sec.Load().acl
	if acl == nil || strings.ContainsAny(topic, "+#") {
		return true
	}
	return acl.Allowed(aclClient(cl), topic, confgen.Read)
}

// OnSubscribed turns the engine's refusal of an exact-topic subscription the
// ACL does not let the client read back into a grant, as mosquitto answers
// (nothing is delivered: deliveries are checked). The engine writes the
// SUBACK from this same slice after the hook returns.
func (h *authHook) OnSubscribed(cl *mqtt.Client, pk packets.Packet, codes []byte) {
	ls := h.b.listener(cl.Net.Listener)
	if ls == nil || ls.sec.Load().acl == nil || h.b.enrol.isClaim(cl, ls) {
		return // a claim client's refusals stand
	}
	for i, f := range pk.Filters {
		if i >= len(codes) || codes[i] < 0x80 || strings.ContainsAny(f.Filter, "+#") || confgen.ValidateTopicFilter(f.Filter) != nil ||
			strings.HasPrefix(f.Filter, "$share/") {
			continue
		}
		q := f.Qos
		if q > h.b.srv.Options.Capabilities.MaximumQos {
			q = h.b.srv.Options.Capabilities.MaximumQos
		}
		codes[i] = q
	}
}

// sysPass prefixes the topic of a client's publish that starts with $SYS in
// any case and that mosquitto lets through to the ACL: a bridge's
// $SYS/broker/connection/CLIENTID/state notification, and topics such as
// $sys/x that are not $SYS (mosquitto compares case). The engine drops every
// publish to $SYS in any case; OnPublish restores the topic.
const sysPass = "\x00mqttctl/sys-pass:"

// OnPacketRead marks client publishes to $SYS for OnPublish: to drop, or
// to pass on to the ACL (confgen.SysWritable).
func (h *authHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if pk.FixedHeader.Type == packets.Publish && len(pk.TopicName) >= 4 && strings.EqualFold(pk.TopicName[:4], "$SYS") {
		if confgen.SysWritable(pk.TopicName) {
			pk.TopicName = sysPass + pk.TopicName
		} else {
			pk.TopicName = sysSentinel
		}
	}
	return pk, nil
}

// OnPublish applies the ACL to a publish. A denied publish is dropped; QoS 1
// and 2 get a normal acknowledgement for MQTT 3.1.1 and reason 0x87 for v5,
// never a disconnect.
func (h *authHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if cl.Net.Inline {
		return pk, nil
	}
	denied := pk.TopicName == sysSentinel
	pk.TopicName = strings.TrimPrefix(pk.TopicName, sysPass)
	if !denied {
		if ls := h.b.listener(cl.Net.Listener); ls != nil {
			if h.b.enrol.isClaim(cl, ls) {
				// Before the ACL file: a claim client publishes nothing
				// but its requests (answered by the enrol hook).
				denied = true
			} else if acl := ls.sec.Load().acl; acl != nil {
				denied = !acl.Allowed(aclClient(cl), pk.TopicName, confgen.Write)
			}
		}
	}
	if !denied {
		return pk, nil
	}
	topic := pk.TopicName
	if topic == sysSentinel {
		topic = "$SYS/..."
	}
	return h.b.denyPublish(cl, pk, topic, "")
}

// willDenied is the topic a denied will is sent to: no subscription can
// match it (topic names cannot hold U+0000), and it is never retained.
const willDenied = "\x00mqttctl/denied-will"

// OnWill applies to a will, when it is sent, the rules of the client's
// publishes, as mosquitto does (context__send_will checks the ACL then):
// $SYS, the broker's own $mqttctl/ namespace, a claim certificate's
// limits and the ACL file; and a client whose certificate is revoked sends
// none. The engine has no way to drop a will here, so a denied one goes to
// a topic nothing matches.
func (h *authHook) OnWill(cl *mqtt.Client, will mqtt.Will) (mqtt.Will, error) {
	if why := h.willRefusal(cl, will.TopicName); why != "" {
		h.b.log.Info("will not sent", "client", cl.ID, "username", string(cl.Properties.Username), "topic", will.TopicName, "reason", why)
		return nowhere(will), nil
	}
	// A will is sent when its delay or the session ends, whichever comes
	// first (MQTT 5 3.1.3.2.2), as mosquitto does.
	delay := will.WillDelayInterval
	if cl.Properties.ProtocolVersion == 5 && cl.Properties.Props.SessionExpiryInterval < delay {
		delay = cl.Properties.Props.SessionExpiryInterval
	}
	// The engine reads the delay from the client after this hook, and would
	// send a delayed will later without asking anyone: serve sends it
	// itself, checking it again then (a client revoked during the delay
	// sends none); the engine sends nowhere, at once.
	cl.Properties.Will.WillDelayInterval = 0
	will.WillDelayInterval = delay
	if delay == 0 {
		return will, nil
	}
	h.delayWill(cl, will)
	return nowhere(will), nil
}

// nowhere is will sent where nothing matches, never retained.
func nowhere(will mqtt.Will) mqtt.Will {
	will.TopicName, will.Retain, will.Payload, will.WillDelayInterval = willDenied, false, nil, 0
	return will
}

// delayWill sends cl's will after its delay, if its rules still allow it
// then; a session of the same client id that starts before cancels it
// (MQTT-3.1.3-9), as does Close.
func (h *authHook) delayWill(cl *mqtt.Client, will mqtt.Will) {
	h.willMu.Lock()
	defer h.willMu.Unlock()
	if h.wills == nil {
		h.wills = map[string]*time.Timer{}
	}
	if old := h.wills[cl.ID]; old != nil {
		old.Stop()
	}
	var t *time.Timer
	t = time.AfterFunc(time.Duration(will.WillDelayInterval)*time.Second, func() {
		h.willMu.Lock()
		mine := h.wills[cl.ID] == t
		if mine {
			delete(h.wills, cl.ID)
		}
		h.willMu.Unlock()
		if !mine {
			return
		}
		if why := h.willRefusal(cl, will.TopicName); why != "" {
			h.b.log.Info("will not sent", "client", cl.ID, "username", string(cl.Properties.Username), "topic", will.TopicName, "reason", why)
			return
		}
		inline, ok := h.b.srv.Clients.Get(mqtt.InlineClientId)
		if !ok {
			return
		}
		_ = h.b.srv.InjectPacket(inline, packets.Packet{
			FixedHeader: packets.FixedHeader{Type: packets.Publish, Qos: will.Qos, Retain: will.Retain},
			TopicName:   will.TopicName, Payload: will.Payload, Properties: packets.Properties{User: will.User},
			PacketID: uint16(will.Qos), Origin: cl.ID,
		})
	})
	h.wills[cl.ID] = t
}

// cancelWill drops the delayed will of client id (it is back).
func (h *authHook) cancelWill(id string) {
	h.willMu.Lock()
	defer h.willMu.Unlock()
	if t := h.wills[id]; t != nil {
		t.Stop()
		delete(h.wills, id)
	}
}

// stopWills drops every delayed will (the broker stops: mosquitto sends
// none either at a clean stop).
func (h *authHook) stopWills() {
	h.willMu.Lock()
	defer h.willMu.Unlock()
	for id, t := range h.wills {
		t.Stop()
		delete(h.wills, id)
	}
}

// willRefusal says why cl may not send a will to topic ("" if it may).
func (h *authHook) willRefusal(cl *mqtt.Client, topic string) string {
	ls := h.b.listener(cl.Net.Listener)
	switch {
	case cl.Net.Inline || ls == nil:
		return ""
	case len(topic) >= 4 && strings.EqualFold(topic[:4], "$SYS") && !confgen.SysWritable(topic):
		return "clients do not publish to $SYS"
	case h.b.enrol != nil && strings.HasPrefix(topic, reserved):
		return "$mqttctl/ is the broker's own namespace"
	case h.b.enrol.isClaim(cl, ls):
		return "a claim certificate publishes nothing but its requests"
	}
	if _, err := h.b.revokedClient(ls, cl); err != nil {
		return "its certificate is revoked: " + err.Error()
	}
	if acl := ls.sec.Load().acl; acl != nil && !acl.Allowed(aclClient(cl), topic, confgen.Write) {
		return "the ACL does not allow it"
	}
	return ""
}

// denyPublish drops a publish the client may not make, answered as
// mosquitto answers an ACL refusal (why, if not "", is logged).
func (b *Broker) denyPublish(cl *mqtt.Client, pk packets.Packet, topic, why string) (packets.Packet, error) {
	attrs := []any{"client", cl.ID, "username", string(cl.Properties.Username), "topic", topic, "qos", pk.FixedHeader.Qos}
	if why != "" {
		attrs = append(attrs, "reason", why)
	}
	b.log.Info("publish denied", attrs...)
	switch {
	case pk.FixedHeader.Qos == 0:
		return pk, packets.ErrRejectPacket
	case cl.Properties.ProtocolVersion == 5 && pk.FixedHeader.Qos == 2:
		// The engine would answer a QoS 2 refusal with a PUBACK; mosquitto sends PUBREC 0x87.
		_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Pubrec}, PacketID: pk.PacketID, ReasonCode: packets.ErrNotAuthorized.Code})
		return pk, packets.ErrRejectPacket
	case cl.Properties.ProtocolVersion == 5:
		return pk, packets.ErrNotAuthorized
	}
	return pk, packets.CodeSuccessIgnore
}

// recheck disconnects password clients whose password no longer verifies
// (after a SIGHUP reload), as mosquitto does. Certificate clients stay.
func (h *authHook) recheck() int {
	h.mu.Lock()
	creds := make(map[*mqtt.Client]cred, len(h.creds))
	for cl, c := range h.creds {
		creds[cl] = c
	}
	h.mu.Unlock()
	// Outside the lock: checking changed hashes may take a while (argon2id),
	// and logins must go on meanwhile.
	var drop []*mqtt.Client
	for cl, c := range creds {
		ls := h.b.listener(cl.Net.Listener)
		if ls == nil {
			continue
		}
		sec := ls.sec.Load()
		if sec.passwords == nil {
			continue
		}
		hash, ok := sec.passwords[string(cl.Properties.Username)]
		switch {
		case !ok:
			drop = append(drop, cl)
		case hash.Equal(c.hash):
		case !h.verify(hash, c.pw):
			drop = append(drop, cl)
		default:
			h.mu.Lock()
			if _, still := h.creds[cl]; still {
				h.creds[cl] = cred{pw: c.pw, hash: hash}
			}
			h.mu.Unlock()
		}
	}
	for _, cl := range drop {
		h.b.log.Info("client disconnected: password no longer valid after reload", "client", cl.ID, "username", string(cl.Properties.Username))
		_ = h.b.srv.DisconnectClient(cl, packets.ErrNotAuthorized)
	}
	return len(drop)
}
