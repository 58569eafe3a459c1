package broker

import (
	"bytes"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/pki"
)

// The topics of enrolment over MQTT (# mqttctl: renew_pki DIR, #
// mqttctl: provision_by_claim on). A client publishes a certificate
// signing request as an MQTT v5 request: to RenewTopic (authorised by its
// current client certificate, as EST simplereenroll) or, with a claim
// certificate, to ProvisionTopic (with the device's one-time token, or
// alone for a name under the claim's prefix). The answer goes to the
// request's response topic, which must start with ReplyPrefix and which
// the client must have subscribed to: it is written to that one
// connection, never published through the broker, so no other client can
// read it whatever it subscribes to.
const (
	RenewTopic     = "$mqttctl/renew"
	ProvisionTopic = "$mqttctl/provision"
	ReplyPrefix    = "$mqttctl/reply/"
	// reserved is the broker's own namespace while a listener enrols:
	// no client's publish to it is ever routed.
	reserved = "$mqttctl/"
	// MaxEnrolRequest bounds a request's payload (a CSR of an RSA-8192 key
	// in PEM is under 4 KiB).
	MaxEnrolRequest = 16 << 10
	// A claim certificate may make claimBurst requests at once, then one
	// every claimEvery: a batch of devices shares it, and each request
	// takes the pki directory's lock.
	claimBurst = 20
	claimEvery = 3 * time.Second
	// A device (by certificate CN) may renew renewBurst times at once,
	// then once every renewEvery: each renewal adds a certificate to the
	// index, so a looping device must not grow it without bound.
	renewBurst = 5
	renewEvery = 10 * time.Minute
	// StatusProperty and ReasonProperty are the user properties of an
	// answer: "ok" or "refused", and why in plain words.
	StatusProperty = "mqttctl-status"
	ReasonProperty = "mqttctl-reason"
)

// enrols reports whether any listener serves the $mqttctl/ requests.
func enrols(cfg *confgen.Resolved) bool {
	for _, l := range cfg.Listeners {
		if l.RenewPKI != "" {
			return true
		}
	}
	return false
}

// enrolHook answers the $mqttctl/ requests. Every decision is
// pki.Dir.Enroll's, the locked, journaled path of the CLI and the EST
// server.
type enrolHook struct {
	mqtt.HookBase
	b *Broker

	busy     sync.Map // *mqtt.Client -> struct{}: one request at a time each
	inflight sync.WaitGroup

	mu    sync.Mutex
	rates map[string]*bucket // by claim certificate serial, and by renewing CN
}

type bucket struct {
	tokens, burst float64
	every         time.Duration
	last          time.Time
}

func newEnrolHook(b *Broker) *enrolHook {
	return &enrolHook{b: b, rates: map[string]*bucket{}}
}

func (h *enrolHook) ID() string { return "mqttctl-enrol" }

func (h *enrolHook) Provides(b byte) bool { return b == mqtt.OnPublish || b == mqtt.OnDisconnect }

func (h *enrolHook) wait() { h.inflight.Wait() }

func (h *enrolHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) { h.busy.Delete(cl) }

// isClaim reports whether cl logged in with a claim certificate (only a
// listener that provisions lets one in).
func (h *enrolHook) isClaim(cl *mqtt.Client, ls *listenerState) bool {
	if h == nil || ls == nil || !ls.spec.Provision || cl.Net.Inline {
		return false
	}
	return pki.IsClaim(peerCert(cl))
}

// mayRead decides, before the ACL file, what a client may subscribe to
// and be sent: a claim client only its answers (a topic name under
// ReplyPrefix); any client of an enrolling listener may subscribe to a
// topic under ReplyPrefix, where nothing is ever published.
func (h *enrolHook) mayRead(cl *mqtt.Client, ls *listenerState, topic string) (allow, decided bool) {
	if h == nil {
		return false, false
	}
	reply := strings.HasPrefix(topic, ReplyPrefix)
	if h.isClaim(cl, ls) {
		return reply && !strings.ContainsAny(topic, "+#"), true
	}
	if reply && ls.renew != nil {
		return true, true
	}
	return false, false
}

// OnPublish answers the requests and refuses every other publish to the
// broker's namespace.
func (h *enrolHook) OnPublish(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	if !strings.HasPrefix(pk.TopicName, reserved) {
		return pk, nil
	}
	ls := h.b.listener(cl.Net.Listener)
	if cl.Net.Inline || ls == nil {
		return pk, packets.ErrRejectPacket
	}
	claim := h.isClaim(cl, ls)
	switch {
	case ls.renew == nil:
		return h.b.denyPublish(cl, pk, pk.TopicName, "$mqttctl/ is the broker's own namespace; this listener has no renew_pki")
	case pk.TopicName == RenewTopic && claim:
		return h.b.denyPublish(cl, pk, pk.TopicName, "a claim certificate may only publish to "+ProvisionTopic)
	case pk.TopicName == ProvisionTopic && !claim:
		return h.b.denyPublish(cl, pk, pk.TopicName, "only a claim certificate provisions (a device renews on "+RenewTopic+")")
	case pk.TopicName != RenewTopic && pk.TopicName != ProvisionTopic:
		return h.b.denyPublish(cl, pk, pk.TopicName, "$mqttctl/ is the broker's own namespace: publish requests to "+RenewTopic+" or "+ProvisionTopic)
	}
	return h.request(cl, pk, ls, claim)
}

// request checks what can be checked at once and starts the enrolment.
// The engine acknowledges the request and routes it nowhere.
func (h *enrolHook) request(cl *mqtt.Client, pk packets.Packet, ls *listenerState, claim bool) (packets.Packet, error) {
	what := "renewal"
	if claim {
		what = "provisioning"
	}
	reply := pk.Properties.ResponseTopic
	switch {
	case cl.Properties.ProtocolVersion != 5:
		return h.b.denyPublish(cl, pk, pk.TopicName, what+" needs MQTT v5 (a request with a response topic)")
	case reply == "":
		return h.unanswerable(cl, pk, what+" request without a response topic: give one starting "+ReplyPrefix+" (mosquitto_rr -e)")
	case strings.ContainsAny(reply, "+#"):
		return h.unanswerable(cl, pk, fmt.Sprintf("the response topic %q has a wildcard: give one topic under %s, e.g. %sNAME", reply, ReplyPrefix, ReplyPrefix))
	case !strings.HasPrefix(reply, ReplyPrefix) || len(reply) == len(ReplyPrefix):
		return h.unanswerable(cl, pk, fmt.Sprintf("the response topic %q is not a topic under %s: answers go only there", reply, ReplyPrefix))
	}
	if _, ok := h.b.srv.Topics.Subscribers(reply).Subscriptions[cl.ID]; !ok {
		return h.unanswerable(cl, pk, fmt.Sprintf("subscribe to the response topic %s before the request", reply))
	}
	refuse := func(format string, a ...any) (packets.Packet, error) {
		msg := fmt.Sprintf(format, a...)
		h.b.log.Warn(what+" refused", "client", cl.ID, "username", string(cl.Properties.Username), "remote", cl.Net.Remote, "reason", msg)
		h.answer(cl, reply, pk.Properties.CorrelationData, nil, msg)
		return pk, packets.CodeSuccessIgnore
	}
	if len(pk.Payload) > MaxEnrolRequest {
		return refuse("the request is %d bytes: at most %d (a CSR, with the token on a line before it)", len(pk.Payload), MaxEnrolRequest)
	}
	chain := peerChain(cl)
	if len(chain) == 0 {
		return refuse("no client certificate")
	}
	if claim && !h.allow("claim/"+pki.FormatSerial(chain[0]), claimBurst, claimEvery, time.Now()) {
		return refuse("too many requests with the claim certificate %s: at most %d at once, then one every %s; try again later", chain[0].Subject.CommonName, claimBurst, claimEvery)
	}
	if !claim && !h.allow("renew/"+chain[0].Subject.CommonName, renewBurst, renewEvery, time.Now()) {
		return refuse("too many renewals of %s: at most %d at once, then one every %s; try again later", chain[0].Subject.CommonName, renewBurst, renewEvery)
	}
	if _, busy := h.busy.LoadOrStore(cl, struct{}{}); busy {
		return refuse("a request is already being answered on this connection: wait for its answer")
	}
	csr, token, err := decodeEnrolRequest(pk.Payload)
	if err != nil {
		h.busy.Delete(cl)
		return refuse("%v", err)
	}
	if token != "" && !claim {
		h.busy.Delete(cl)
		return refuse("a renewal is authorised by the connection's certificate: send the CSR without a token")
	}
	req := pki.EnrollRequest{CSR: csr, Peer: chain, Reenroll: !claim, Claim: claim, Days: ls.spec.RenewDays}
	if token != "" {
		req.TokenName, req.Token = csr.Subject.CommonName, token
	}
	corr := append([]byte(nil), pk.Properties.CorrelationData...)
	h.inflight.Add(1)
	go func() {
		defer h.inflight.Done()
		defer h.busy.Delete(cl)
		h.enrol(cl, ls, req, what, reply, corr)
	}()
	return pk, packets.CodeSuccessIgnore
}

// enrol decides (pki.Dir.Enroll), logs how it was authorised, and answers.
func (h *enrolHook) enrol(cl *mqtt.Client, ls *listenerState, req pki.EnrollRequest, what, reply string, corr []byte) {
	attrs := []any{"client", cl.ID, "username", string(cl.Properties.Username), "remote", cl.Net.Remote, "listener", ls.id}
	got, err := ls.renew.Enroll(req)
	if err != nil {
		msg := err.Error()
		switch {
		case req.TokenName != "" && errors.Is(err, pki.ErrEnrollAuth) && strings.HasPrefix(msg, "token of"):
			// Which of wrong, used, revoked or expired goes to the log only.
			msg = fmt.Sprintf("the token for %q is wrong, used, revoked or expired", req.TokenName)
		case !errors.Is(err, pki.ErrEnrollAuth) && !errors.Is(err, pki.ErrEnrollPolicy):
			h.b.log.Error(what+" failed", append(attrs, "name", req.CSR.Subject.CommonName, "error", err)...)
			msg = "the certificate could not be issued (the broker's log says why)"
		}
		h.b.log.Warn(what+" refused", append(attrs, "name", req.CSR.Subject.CommonName, "reason", err.Error())...)
		h.answer(cl, reply, corr, nil, msg)
		return
	}
	attrs = append(attrs, "name", got.Name, "serial", pki.FormatSerial(got.Cert), "authorised_by", got.How)
	if got.AuthSerial != "" {
		attrs = append(attrs, "authorising_serial", got.AuthSerial)
	}
	msg := "issued over MQTT"
	if got.Repeat {
		msg = "answered again over MQTT" // the same certificate, to a device whose answer was lost
	}
	h.b.log.Info(msg, append(attrs, "not_after", got.Cert.NotAfter.UTC().Format(time.RFC3339))...)
	h.answer(cl, reply, corr, pki.EncodeCerts(append([]*x509.Certificate{got.Cert}, got.Chain...)...), "")
}

// unanswerable refuses a request that cannot be answered on its response
// topic: a v5 QoS 1 or 2 request gets the reason in its acknowledgement.
func (h *enrolHook) unanswerable(cl *mqtt.Client, pk packets.Packet, why string) (packets.Packet, error) {
	h.b.log.Warn("request refused", "client", cl.ID, "username", string(cl.Properties.Username), "topic", pk.TopicName, "reason", why)
	if pk.FixedHeader.Qos == 0 {
		return pk, packets.ErrRejectPacket
	}
	return pk, packets.Code{Code: packets.ErrImplementationSpecificError.Code, Reason: enrolReason + why}
}

// enrolReason starts the reason string of a refused request's
// acknowledgement, which the protocol hook keeps (it removes the engine's).
const enrolReason = "mqttctl: "

// answer writes the answer to cl alone: the chain (PEM) or, when it is
// nil, the refusal in plain words, with StatusProperty and ReasonProperty.
func (h *enrolHook) answer(cl *mqtt.Client, topic string, corr, chain []byte, refusal string) {
	out := packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Publish}, TopicName: topic}
	out.Properties.CorrelationData = corr
	if chain != nil {
		out.Payload = chain
		out.Properties.ContentType = "application/pem-certificate-chain"
		out.Properties.User = []packets.UserProperty{{Key: StatusProperty, Val: "ok"}}
	} else {
		out.Payload = []byte("refused: " + refusal + "\n")
		out.Properties.ContentType = "text/plain; charset=utf-8"
		out.Properties.User = []packets.UserProperty{{Key: StatusProperty, Val: "refused"}, {Key: ReasonProperty, Val: refusal}}
	}
	if err := cl.WritePacket(out); err != nil {
		h.b.log.Warn("answer not delivered", "client", cl.ID, "topic", topic, "error", err)
	}
}

// allow takes one request from key's bucket, which holds burst requests
// and gains one every every.
func (h *enrolHook) allow(key string, burst float64, every time.Duration, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	b := h.rates[key]
	if b == nil {
		if len(h.rates) >= 4096 {
			for k, v := range h.rates { // forget the full buckets
				if now.Sub(v.last) >= time.Duration(v.burst)*v.every {
					delete(h.rates, k)
				}
			}
		}
		b = &bucket{tokens: burst, burst: burst, every: every, last: now}
		h.rates[key] = b
	}
	b.tokens = min(burst, b.tokens+float64(now.Sub(b.last))/float64(every))
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// peerChain is the client's verified certificate chain, leaf first.
func peerChain(cl *mqtt.Client) []*x509.Certificate {
	tc, ok := tlsOf(cl.Net.Conn)
	if !ok {
		return nil
	}
	cs := tc.ConnectionState()
	if len(cs.VerifiedChains) > 0 {
		return cs.VerifiedChains[0]
	}
	return nil
}

// maxTokenLen bounds the token line (a token is 43 base64url characters).
const maxTokenLen = 128

// decodeEnrolRequest reads a request's payload: a PKCS#10 CSR in PEM or
// DER; in PEM, optionally after a line holding the device's one-time
// token (what 'mqttctl enroll token create' printed).
// looksLikeText reports whether p is printable text with a line break: a
// token line then a PEM CSR, never DER.
func looksLikeText(p []byte) bool {
	return bytes.IndexByte(p, '\n') > 0 && !bytes.ContainsFunc(p, func(r rune) bool {
		return r != '\n' && r != '\r' && r != '\t' && (r < 0x20 || r > 0x7e)
	})
}

func decodeEnrolRequest(p []byte) (*x509.CertificateRequest, string, error) {
	var (
		der   []byte
		token string
	)
	if len(p) > 0 && p[0] == 0x30 && !looksLikeText(p) {
		// DER (a SEQUENCE); a token line may also start with '0' (0x30).
		der = p
	} else {
		text := bytes.TrimLeft(p, " \t\r\n")
		if len(text) == 0 {
			return nil, "", errors.New("the request is empty: send a CSR (PEM or DER)")
		}
		if !bytes.HasPrefix(text, []byte("-----BEGIN")) {
			line, rest, _ := bytes.Cut(text, []byte("\n"))
			token = string(bytes.TrimSpace(line))
			if len(token) > maxTokenLen || strings.ContainsFunc(token, func(r rune) bool {
				return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
			}) {
				return nil, "", errors.New("the request's first line is neither a PEM CSR nor a one-time token: send the token (if any) on the first line, then the CSR in PEM")
			}
			text = bytes.TrimLeft(rest, " \t\r\n")
		}
		block, rest := pem.Decode(text)
		if block == nil || (block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST") {
			return nil, "", errors.New("the request holds no PEM CERTIFICATE REQUEST: send the CSR (openssl req -new ... -out dev.csr)")
		}
		if len(bytes.TrimSpace(rest)) > 0 {
			return nil, "", errors.New("the request has more after its CSR: send one CSR")
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, "", errors.New("the request is not a PKCS#10 certificate request")
	}
	if k, ok := csr.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > 8192 {
		return nil, "", fmt.Errorf("the request's key is RSA-%d: at most 8192 bits", k.N.BitLen())
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, "", fmt.Errorf("the request's signature does not verify: %v", err)
	}
	return csr, token, nil
}
