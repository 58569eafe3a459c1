package broker

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/mqttwire"

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
	// MaxClaimPacket bounds every packet of a claim client, read or not:
	// a request with room for its topic and properties (response topic,
	// correlation data).
	MaxClaimPacket = MaxEnrolRequest + 2<<10
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
	b *Broker

	busy     sync.Map // *engine.Client -> struct{}: one request at a time each
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

func (h *enrolHook) wait() { h.inflight.Wait() }

// isClaimCert reports whether the connection's certificate is a claim
// certificate.
func isClaimCert(cs *tls.ConnectionState) bool { return pki.IsClaim(peerCert(cs)) }

// deny refuses a publish under $mqttctl/ as mosquitto answers an ACL
// refusal (MQTT 5: 0x87; 3.1.1: the normal acknowledgement).
func (h *enrolHook) deny(cl *engine.Client, m *engine.Message, why string) engine.Answer {
	h.b.log.Info("publish denied", "client", cl.ID, "username", cl.Username, "topic", m.Topic, "qos", m.QoS, "reason", why)
	return engine.Answer{Code: mqttwire.NotAuthorized}
}

// publish answers the requests and refuses every other publish to the
// broker's namespace.
func (h *enrolHook) publish(cl *engine.Client, m *engine.Message) engine.Answer {
	c := connOf(cl)
	if c == nil {
		return engine.Answer{Code: mqttwire.NotAuthorized}
	}
	ls := c.ls
	switch {
	case ls.renew == nil:
		return h.deny(cl, m, "$mqttctl/ is the broker's own namespace; this listener has no renew_pki")
	case m.Topic == RenewTopic && c.claim:
		return h.deny(cl, m, "a claim certificate may only publish to "+ProvisionTopic)
	case m.Topic == ProvisionTopic && !c.claim:
		return h.deny(cl, m, "only a claim certificate provisions (a device renews on "+RenewTopic+")")
	case m.Topic != RenewTopic && m.Topic != ProvisionTopic:
		return h.deny(cl, m, "$mqttctl/ is the broker's own namespace: publish requests to "+RenewTopic+" or "+ProvisionTopic)
	}
	return h.request(cl, m, ls, c.claim)
}

// request checks what can be checked at once and starts the enrolment.
// The engine acknowledges the request and routes it nowhere.
func (h *enrolHook) request(cl *engine.Client, m *engine.Message, ls *listenerState, claim bool) engine.Answer {
	what := "renewal"
	if claim {
		what = "provisioning"
	}
	var reply string
	var corr []byte
	if m.Props != nil {
		reply, corr = m.Props.ResponseTopic, m.Props.CorrelationData
	}
	switch {
	case cl.Version != 5:
		return h.deny(cl, m, what+" needs MQTT v5 (a request with a response topic)")
	case reply == "":
		return h.unanswerable(cl, m, what+" request without a response topic: give one starting "+ReplyPrefix+" (mosquitto_rr -e)")
	case strings.ContainsAny(reply, "+#"):
		return h.unanswerable(cl, m, fmt.Sprintf("the response topic %q has a wildcard: give one topic under %s, e.g. %sNAME", reply, ReplyPrefix, ReplyPrefix))
	case !strings.HasPrefix(reply, ReplyPrefix) || len(reply) == len(ReplyPrefix):
		return h.unanswerable(cl, m, fmt.Sprintf("the response topic %q is not a topic under %s: answers go only there", reply, ReplyPrefix))
	}
	// The answer is written to this connection only, but only where the
	// client asked for it: a subscription of its own to the topic.
	if !h.b.srv.Subscribed(cl.ID, reply) {
		return h.unanswerable(cl, m, fmt.Sprintf("subscribe to the response topic %s before the request", reply))
	}
	refuse := func(format string, a ...any) engine.Answer {
		msg := fmt.Sprintf(format, a...)
		h.b.log.Warn(what+" refused", "client", cl.ID, "username", cl.Username, "remote", cl.Remote, "reason", msg)
		h.answer(cl, reply, corr, nil, msg)
		return engine.Answer{}
	}
	if len(m.Payload) > MaxEnrolRequest {
		return refuse("the request is %d bytes: at most %d (a CSR, with the token on a line before it)", len(m.Payload), MaxEnrolRequest)
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
	csr, token, err := decodeEnrolRequest(m.Payload)
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
	h.inflight.Add(1)
	go func() {
		defer h.inflight.Done()
		h.enrol(cl, ls, req, what, reply, corr)
	}()
	return engine.Answer{}
}

// enrol issues (or refuses) and answers; it runs in its own goroutine.
// The connection may send its next request once it has the answer, so the
// request is done (busy cleared) before the answer is written.
func (h *enrolHook) enrol(cl *engine.Client, ls *listenerState, req pki.EnrollRequest, what, reply string, corr []byte) {
	attrs := []any{"client", cl.ID, "username", cl.Username, "remote", cl.Remote, "listener", ls.id}
	got, err := ls.renew.Enroll(req)
	if err != nil {
		msg := err.Error()
		switch {
		case req.TokenName != "" && errors.Is(err, pki.ErrEnrollAuth) && strings.HasPrefix(msg, "token of"):
			msg = fmt.Sprintf("the token for %q is wrong, used, revoked or expired", req.TokenName)
		case !errors.Is(err, pki.ErrEnrollAuth) && !errors.Is(err, pki.ErrEnrollPolicy):
			h.b.log.Error(what+" failed", append(attrs, "name", req.CSR.Subject.CommonName, "error", err)...)
			msg = "the certificate could not be issued (the broker's log says why)"
		}
		h.b.log.Warn(what+" refused", append(attrs, "name", req.CSR.Subject.CommonName, "reason", err.Error())...)
		h.busy.Delete(cl)
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
	h.busy.Delete(cl)
	h.answer(cl, reply, corr, pki.EncodeCerts(append([]*x509.Certificate{got.Cert}, got.Chain...)...), "")
}

// unanswerable refuses a request that cannot be answered on a topic
// (QoS 0: dropped; QoS 1/2: 0x83 with the reason, for MQTT 5 clients).
func (h *enrolHook) unanswerable(cl *engine.Client, m *engine.Message, why string) engine.Answer {
	h.b.log.Warn("request refused", "client", cl.ID, "username", cl.Username, "topic", m.Topic, "reason", why)
	return engine.Answer{Code: mqttwire.ImplementationSpecific, Reason: enrolReason + why}
}

// enrolReason starts the reason strings of the requests' refusals.
const enrolReason = "mqttctl: "

// answer writes the answer to the requesting connection only (QoS 0,
// never retained, never routed): the chain in PEM, or the refusal.
func (h *enrolHook) answer(cl *engine.Client, topic string, corr, chain []byte, refusal string) {
	props := &engine.MessageProps{CorrelationData: corr}
	out := &engine.Message{Topic: topic, Props: props, Created: time.Now()}
	if chain != nil {
		out.Payload = chain
		props.ContentType = "application/pem-certificate-chain"
		props.User = []engine.UserProperty{{Key: StatusProperty, Value: "ok"}}
	} else {
		out.Payload = []byte("refused: " + refusal + "\n")
		props.ContentType = "text/plain; charset=utf-8"
		props.User = []engine.UserProperty{{Key: StatusProperty, Value: "refused"}, {Key: ReasonProperty, Value: refusal}}
	}
	if !h.b.srv.SendTo(cl, out) {
		h.b.log.Warn("answer not delivered: the connection has gone", "client", cl.ID, "topic", topic)
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
func peerChain(cl *engine.Client) []*x509.Certificate {
	if cl.TLS != nil && len(cl.TLS.VerifiedChains) > 0 {
		return cl.TLS.VerifiedChains[0]
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
