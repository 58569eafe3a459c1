// Package diagnose connects to an MQTT broker as a client and explains, in
// plain words, what works and what does not: TLS version and cipher, the
// server's chain and whether it verifies, whether the name matches, whether
// a client certificate was asked for and accepted, the CONNACK, and a
// publish/subscribe round trip.
package diagnose

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/mqtturl"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/mqttws"
	"github.com/mqttctl/mqttctl/pki"
)

// Options says what to check and with which credentials.
type Options struct {
	URL               string // mqtts://host:port or mqtt://host:port
	CAFile            string // trust for the server; empty: the system pool
	CertFile, KeyFile string
	Username          string
	Password          []byte        // nil: no password
	TLSVersion        string        // "", "1.2" or "1.3": offer only that version
	Topic             string        // round-trip topic; default mqttctl/check/<random>
	PKIDir            string        // named in fixes; default "pki"
	Timeout           time.Duration // bounds the whole check; default 5 s
	// FromPage is the URL of the web page that would connect (ws:// and
	// wss:// targets): an https page cannot use ws:// to another host.
	FromPage string
}

// CertInfo summarises a certificate of the server's chain.
type CertInfo struct {
	Subject  string    `json:"subject"`
	Issuer   string    `json:"issuer"`
	NotAfter time.Time `json:"not_after"`
	Names    []string  `json:"names,omitempty"`
}

// Report is what Check found. Problems is empty when everything worked.
type Report struct {
	URL                 string            `json:"url"`
	Address             string            `json:"address"`
	TLS                 bool              `json:"tls"`
	TLSVersion          string            `json:"tls_version,omitempty"`
	Cipher              string            `json:"cipher,omitempty"`
	Chain               []CertInfo        `json:"server_chain,omitempty"`
	ChainVerified       bool              `json:"chain_verified"`
	NameMatches         bool              `json:"name_matches"`
	ClientCertRequested bool              `json:"client_cert_requested"`
	ClientCertSent      string            `json:"client_cert_sent,omitempty"`
	Connack             *int              `json:"connack,omitempty"`
	RoundTrip           bool              `json:"round_trip"`
	Topic               string            `json:"topic,omitempty"`
	Problems            []explain.Problem `json:"problems,omitempty"`
	Notes               []string          `json:"notes,omitempty"`

	clientCAUnknown bool // the broker's certificate request does not name our issuer
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) problem(p explain.Problem) { r.Problems = append(r.Problems, p) }

// Check runs the whole diagnosis. The error is for bad options only; what
// goes wrong on the wire is in the report.
func Check(ctx context.Context, o Options) (*Report, error) {
	t, err := mqtturl.Parse(o.URL)
	if err != nil {
		return nil, err
	}
	if o.FromPage != "" && pageOrigin(o.FromPage) == "" {
		return nil, fmt.Errorf("page URL %q: give the URL of the web page that connects, e.g. https://app.example.com/", o.FromPage)
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.PKIDir == "" {
		o.PKIDir = "pki"
	}
	if o.Topic == "" {
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Topic = "mqttctl/check/" + hex.EncodeToString(b)
	}
	r := &Report{URL: o.URL, Address: t.Addr, TLS: t.TLS, Topic: o.Topic}
	// One deadline for everything: dial, handshake, probes, CONNECT and
	// the round trip.
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()

	var clientCert *tls.Certificate
	var clientLeaf *x509.Certificate
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, errors.New("a client certificate needs both its certificate and its key file")
		}
		c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			if strings.Contains(err.Error(), "does not match") {
				r.problem(explain.KeyMismatch(o.KeyFile, o.CertFile))
				return r, nil
			}
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		clientCert = &c
		clientLeaf, _ = x509.ParseCertificate(c.Certificate[0])
		now := time.Now()
		switch {
		case now.After(clientLeaf.NotAfter):
			r.problem(explain.Expired("client certificate "+o.CertFile, clientLeaf.NotAfter, "issue a new one: "+explain.ReissueClient(clientLeaf.Subject.CommonName, "")))
		case now.Before(clientLeaf.NotBefore):
			r.problem(explain.NotYetValid("client certificate "+o.CertFile, clientLeaf.NotBefore))
		}
		if !hasClientAuth(clientLeaf) {
			r.problem(explain.NotClientCert(o.CertFile))
		}
	}
	var roots *x509.CertPool
	if r.TLS {
		if roots, err = mqtturl.CAPool(o.CAFile); err != nil {
			return nil, err
		}
	}

	if t.WebSocket && !t.TLS && !t.Local() {
		mc := explain.MixedContent(o.URL)
		if strings.HasPrefix(o.FromPage, "https://") {
			r.problem(mc)
			return r, nil
		}
		r.Notes = append(r.Notes, mc.Message+"; fix: "+mc.Fix)
	}

	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", t.Addr)
	if err != nil {
		r.problem(explain.Unreachable(t.Addr, err))
		return r, nil
	}
	defer raw.Close()
	_ = raw.SetDeadline(deadline)
	conn := net.Conn(raw)

	if r.TLS {
		conf := &tls.Config{
			ServerName:         t.Host,
			InsecureSkipVerify: true, // verified below, to report chain and name separately
			MinVersion:         tls.VersionTLS12,
			GetClientCertificate: func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
				r.ClientCertRequested = true
				if clientCert == nil {
					return &tls.Certificate{}, nil
				}
				// The request names the CAs the broker trusts (mosquitto:
				// its cafile; Go: ClientCAs).
				if len(cri.AcceptableCAs) > 0 {
					r.clientCAUnknown = true
					for _, ca := range cri.AcceptableCAs {
						if string(ca) == string(clientLeaf.RawIssuer) {
							r.clientCAUnknown = false
						}
					}
				}
				r.ClientCertSent = clientLeaf.Subject.String()
				return clientCert, nil
			},
		}
		switch o.TLSVersion {
		case "1.2":
			conf.MaxVersion = tls.VersionTLS12
		case "1.3":
			conf.MinVersion = tls.VersionTLS13
		case "":
		default:
			return nil, fmt.Errorf("TLS version %q: use 1.2 or 1.3", o.TLSVersion)
		}
		tc := tls.Client(raw, conf)
		if err := tc.HandshakeContext(ctx); err != nil {
			if isTimeout(err) {
				r.problem(explain.Silent(t.Addr, "TLS handshake", o.Timeout))
				return r, nil
			}
			r.handshakeFailed(ctx, err, t, o, clientLeaf)
			return r, nil
		}
		cs := tc.ConnectionState()
		r.TLSVersion, r.Cipher = tls.VersionName(cs.Version), tls.CipherSuiteName(cs.CipherSuite)
		for _, c := range cs.PeerCertificates {
			r.Chain = append(r.Chain, CertInfo{Subject: c.Subject.String(), Issuer: c.Issuer.String(), NotAfter: c.NotAfter, Names: pki.Names(c)})
		}
		r.verifyServer(cs.PeerCertificates, roots, t.Host, o)
		if !r.ChainVerified {
			// Never send a username, a password or messages to a server
			// whose identity is unproven.
			r.Notes = append(r.Notes, "stopped before CONNECT: the broker's certificate does not verify, so nothing was sent to it")
			return r, nil
		}
		conn = tc
	}

	if t.WebSocket {
		// TLS is done: the upgrade goes over it as plain ws://.
		u, _ := url.Parse("ws://" + t.Addr + t.Path)
		d := websocket.Dialer{ReadBufferSize: 1024, WriteBufferSize: 1024,
			NetDial: func(string, string) (net.Conn, error) { return conn, nil }}
		h := http.Header{"Sec-WebSocket-Protocol": []string{"mqtt"}}
		origin := pageOrigin(o.FromPage)
		if origin != "" {
			// What a browser sends: the listener may refuse the page.
			h.Set("Origin", origin)
		}
		ws, resp, err := d.Dial(u.String(), h)
		switch {
		case err == nil:
		case resp != nil && resp.StatusCode == http.StatusForbidden && origin != "":
			r.problem(explain.OriginRefused(t.URL(), origin))
			return r, nil
		case resp != nil:
			r.problem(explain.NotWebSocket(t.URL(), "it answered HTTP "+resp.Status))
			return r, nil
		case isTimeout(err):
			r.problem(explain.Silent(t.Addr, "WebSocket upgrade", o.Timeout))
			return r, nil
		case !r.TLS && probeTLS(ctx, t.Addr, t.Host):
			// A TLS listener read the HTTP request as a bad TLS record
			// and closed ("unexpected EOF") or sent an alert.
			r.problem(explain.WSOnTLSPort(o.URL))
			return r, nil
		case closedAtOnce(err) && !r.TLS:
			r.problem(explain.ClosedAtOnce(t.Addr, "WebSocket upgrade"))
			return r, nil
		case strings.Contains(err.Error(), "remote error: tls"),
			r.TLS && r.ClientCertRequested && clientLeaf == nil && closedAtOnce(err):
			// TLS 1.3: a refused client certificate shows at the first
			// read, or, when the broker's alert is lost to a reset, as the
			// connection dropped after it asked for a certificate we did
			// not have.
			r.connectFailed(ctx, err, t, o, clientLeaf)
			return r, nil
		default:
			r.problem(explain.NotWebSocket(t.URL(), err.Error()))
			return r, nil
		}
		conn = mqttws.NewConn(ws)
	}

	code, err := r.connect(conn, o)
	switch {
	case errors.Is(err, errHTTP):
		r.problem(explain.NotMQTT(o.URL, "an HTTP server"))
		return r, nil
	case err != nil && isTimeout(err):
		r.problem(explain.Silent(t.Addr, "MQTT CONNECT", o.Timeout))
		return r, nil
	case err != nil:
		r.connectFailed(ctx, err, t, o, clientLeaf)
		return r, nil
	}
	c := int(code)
	r.Connack = &c
	if code != 0 {
		r.problem(explain.BadLogin(code, o.Username))
		return r, nil
	}
	r.roundTrip(conn, o, deadline)
	return r, nil
}

// closedAtOnce reports whether the peer closed the connection (EOF or a
// reset) rather than answering.
func closedAtOnce(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET)
}

// isTimeout reports whether err is the check's deadline running out.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

func hasClientAuth(c *x509.Certificate) bool {
	if len(c.ExtKeyUsage) == 0 {
		return true
	}
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

func (r *Report) verifyServer(chain []*x509.Certificate, roots *x509.CertPool, host string, o Options) {
	if len(chain) == 0 {
		return
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	leaf := chain[0]
	_, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	var inv x509.CertificateInvalidError
	switch {
	case err == nil:
		r.ChainVerified = true
	case errors.As(err, &inv) && inv.Reason == x509.Expired:
		r.problem(explain.Expired("broker's certificate", leaf.NotAfter, "reissue it: "+explain.ReissueServer("server", o.PKIDir, []string{host})+", then SIGHUP the broker"))
	case errors.As(err, new(x509.UnknownAuthorityError)):
		ca := o.CAFile
		if ca == "" {
			ca = "the system trust store"
		}
		if p, ok := sameNameOtherCA(chain, o.CAFile); ok {
			r.problem(p)
			break
		}
		r.problem(explain.UnknownServerCA(chain[len(chain)-1].Issuer.String(), ca))
	default:
		r.problem(explain.Problem{Code: "server-chain", Message: "the broker's certificate does not verify: " + err.Error()})
	}
	if err := leaf.VerifyHostname(host); err == nil {
		r.NameMatches = true
	} else {
		r.problem(explain.NameMismatch(host, pki.Names(leaf), o.PKIDir))
	}
}

func (r *Report) connect(conn net.Conn, o Options) (byte, error) {
	id := make([]byte, 4)
	_, _ = rand.Read(id)
	c := mqttwire.Connect{Version: 4, ClientID: "mqttctl-check-" + hex.EncodeToString(id), Clean: true, Keepalive: 30}
	if o.Username != "" {
		c.Username = &o.Username
	}
	if o.Password != nil {
		pw := string(o.Password)
		c.Password = &pw
	}
	if _, err := conn.Write(mqttwire.AppendConnect(nil, c)); err != nil {
		return 0, err
	}
	br := bufio.NewReader(conn)
	head, body, err := mqttwire.ReadPacket(br, nil)
	if err != nil {
		return 0, err
	}
	if head>>4 != mqttwire.CONNACK || len(body) < 2 {
		if head == 0x15 || head == 0x16 {
			return 0, errTLSRecord
		}
		if head == 'H' && strings.HasPrefix(string(body), "TP/") {
			return 0, errHTTP
		}
		return 0, fmt.Errorf("expected CONNACK, got packet type %d", head>>4)
	}
	return body[1], nil
}

var (
	errTLSRecord = errors.New("the server answered with a TLS record")
	errHTTP      = errors.New("the server answered with HTTP")
)

// probePlain reports whether addr answers a plain CONNECT with a CONNACK
// before ctx's deadline.
func probePlain(ctx context.Context, addr string) bool {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return false
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	c.Write(mqttwire.AppendConnect(nil, mqttwire.Connect{Version: 4, ClientID: "mqttctl-probe", Clean: true}))
	head, _, err := mqttwire.ReadPacket(bufio.NewReader(c), nil)
	return err == nil && head>>4 == mqttwire.CONNACK
}

// probeTLS reports whether addr completes a TLS handshake before ctx's
// deadline.
func probeTLS(ctx context.Context, addr, host string) bool {
	d := &tls.Dialer{Config: &tls.Config{ServerName: host, InsecureSkipVerify: true}}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		// A server that asks for a client certificate may fail the
		// handshake at once (TLS 1.2) but still speaks TLS.
		return strings.Contains(err.Error(), "remote error: tls")
	}
	c.Close()
	return true
}

// looksLikeHTTP reports whether a failed handshake got an HTTP answer.
func looksLikeHTTP(err error) bool {
	var rh tls.RecordHeaderError
	return errors.As(err, &rh) && string(rh.RecordHeader[:]) == "HTTP/"
}

func (r *Report) handshakeFailed(ctx context.Context, err error, t mqtturl.Target, o Options, leaf *x509.Certificate) {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "protocol version"):
		offered := "TLS 1.2"
		if o.TLSVersion == "1.3" {
			offered = "TLS 1.3"
		}
		r.problem(explain.TLSVersionRefused(offered))
	case looksLikeHTTP(err):
		r.problem(explain.NotMQTT(o.URL, "an HTTP server"))
	case !strings.Contains(msg, "remote error") && !r.ClientCertRequested && probePlain(ctx, t.Addr):
		r.problem(explain.TLSOnPlainPort(o.URL))
	case strings.Contains(msg, "first record does not look like a TLS handshake"):
		r.problem(explain.NoTLS(o.URL))
	case closedAtOnce(err) && !r.ClientCertRequested:
		// Closed before the server said anything, and no plain CONNACK
		// either: a full listener (or a refusing firewall or proxy).
		r.problem(explain.ClosedAtOnce(t.Addr, "TLS handshake"))
	default:
		r.clientCertAlert(err, o, leaf)
	}
}

// clientCertAlert maps a TLS alert from the broker to its cause.
func (r *Report) clientCertAlert(err error, o Options, leaf *x509.Certificate) {
	msg := err.Error()
	if leaf != nil && r.ClientCertRequested && !hasProblem(r, "expired") {
		if p, ok := crlProblem(o.PKIDir, o.CertFile, leaf, time.Now()); ok {
			r.problem(p)
			return
		}
	}
	switch {
	case strings.Contains(msg, "expired certificate") && leaf != nil && time.Now().Before(leaf.NotAfter) && !hasProblem(r, "expired"):
		// OpenSSL sends the same alert for an expired CRL.
		r.problem(explain.CRLExpiredAtBroker(o.CertFile, leaf.NotAfter, o.PKIDir))
	case strings.Contains(msg, "certificate required"),
		strings.Contains(msg, "handshake failure") && r.ClientCertRequested && leaf == nil:
		r.problem(explain.ClientCertRequired())
	case strings.Contains(msg, "unknown certificate authority"), r.clientCAUnknown && leaf != nil:
		issuer := ""
		if leaf != nil {
			issuer = leaf.Issuer.String()
		}
		p := explain.UnknownClientCA(issuer)
		if !r.clientCAUnknown && strings.Contains(msg, "unknown certificate authority") {
			// The broker did not say which CAs it trusts (mosquitto does
			// not): OpenSSL also answers "unknown CA" for a trusted CA
			// that crlfile has no CRL from.
			p.Message += "; or, if its cafile does hold that CA, its crlfile holds no CRL from it (OpenSSL answers \"unknown ca\" for \"unable to get certificate CRL\" too)"
			p.Fix += "; or add that CA's CRL to the broker's crlfile, then reload the broker (mqttctl config check warns about a CA without a CRL)"
		}
		r.problem(p)
	case strings.Contains(msg, "expired certificate") && leaf != nil:
		if !hasProblem(r, "expired") {
			r.problem(explain.Expired("client certificate "+o.CertFile, leaf.NotAfter, "issue a new one: "+explain.ReissueClient(leaf.Subject.CommonName, "")))
		}
	case strings.Contains(msg, "unsupported certificate"), strings.Contains(msg, "bad certificate") && leaf != nil && !hasClientAuth(leaf):
		if !hasProblem(r, "not-client-cert") {
			r.problem(explain.NotClientCert(o.CertFile))
		}
	case r.ClientCertRequested && !strings.Contains(msg, "remote error") && len(r.Problems) == 0:
		// The broker dropped the connection after asking for a certificate
		// (its alert was lost to a reset): no certificate, or one it does
		// not trust; expiry and usage were checked locally already.
		if leaf == nil {
			r.problem(explain.ClientCertRequired())
		} else {
			p := explain.UnknownClientCA(leaf.Issuer.String())
			p.Message = "the broker closed the connection when it got your client certificate; most likely " + p.Message
			r.problem(p)
		}
	case strings.Contains(msg, "remote error: tls"):
		if len(r.Problems) == 0 {
			r.problem(explain.ClientCertRefused(strings.TrimPrefix(msg, "remote error: tls: ")))
		}
	default:
		r.problem(explain.Problem{Code: "tls", Message: "the TLS handshake failed: " + msg})
	}
}

// crlProblem looks at the CRL of the pki directory named in fixes (the
// broker's own when the check runs beside it) for why a broker refuses the
// client certificate: its issuer's CRL expired or is not valid yet (every
// client of that CA is refused), or lists the certificate.
func crlProblem(pkiDir, certFile string, leaf *x509.Certificate, now time.Time) (explain.Problem, bool) {
	file := filepath.Join(pkiDir, pki.CRLFile)
	data, err := os.ReadFile(file)
	if err != nil {
		return explain.Problem{}, false
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return explain.Problem{}, false
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil || !bytes.Equal(crl.RawIssuer, leaf.RawIssuer) {
			continue
		}
		switch {
		case !crl.NextUpdate.IsZero() && now.After(crl.NextUpdate):
			return explain.CRLExpired(file, crl.Issuer.String(), crl.NextUpdate), true
		case now.Before(crl.ThisUpdate):
			return explain.CRLNotYetValid(file, crl.Issuer.String(), crl.ThisUpdate), true
		}
		for _, e := range crl.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(leaf.SerialNumber) == 0 {
				return explain.Revoked(certFile, file, leaf.Subject.CommonName), true
			}
		}
	}
}

func hasProblem(r *Report, code string) bool {
	for _, p := range r.Problems {
		if p.Code == code {
			return true
		}
	}
	return false
}

func (r *Report) connectFailed(ctx context.Context, err error, t mqtturl.Target, o Options, leaf *x509.Certificate) {
	if r.TLS {
		// TLS 1.3 reports a refused client certificate at the first read.
		r.clientCertAlert(err, o, leaf)
		return
	}
	if errors.Is(err, errTLSRecord) || probeTLS(ctx, t.Addr, t.Host) {
		r.problem(explain.PlainOnTLSPort(o.URL))
		return
	}
	if closedAtOnce(err) && !t.WebSocket {
		r.problem(explain.ClosedAtOnce(t.Addr, "CONNACK"))
		return
	}
	r.problem(explain.Problem{Code: "connect", Message: "the broker closed the connection before CONNACK: " + err.Error()})
}

func (r *Report) roundTrip(conn net.Conn, o Options, deadline time.Time) {
	br := bufio.NewReader(conn)
	conn.Write(mqttwire.AppendSubscribe(nil, 4, 1, o.Topic, 1))
	conn.Write(mqttwire.AppendPublish(nil, 4, o.Topic, []byte("mqttctl check"), 1, false, 2))
	_ = conn.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		head, body, err := mqttwire.ReadPacket(br, nil)
		if err != nil {
			break
		}
		if head>>4 == mqttwire.PUBLISH {
			topic, id, _, _ := mqttwire.PublishInfo(head, body, 4)
			if (head>>1)&3 == 1 {
				conn.Write(mqttwire.AppendAck(nil, mqttwire.PUBACK, id))
			}
			if topic == o.Topic {
				r.RoundTrip = true
				break
			}
		}
	}
	conn.Write([]byte{mqttwire.DISCONNECT << 4, 0})
	if !r.RoundTrip {
		user := o.Username
		if r.ClientCertSent != "" && user == "" {
			user = "the certificate's CN"
		}
		r.problem(explain.NotDelivered(o.Topic, user))
	}
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	row := func(k, v string) { fmt.Fprintf(w, "%-13s %s\n", k, v) }
	row("Target", r.URL+" ("+r.Address+")")
	if r.TLS {
		if r.TLSVersion != "" {
			row("TLS", r.TLSVersion+", "+r.Cipher)
		}
		for i, c := range r.Chain {
			label := ""
			if i == 0 {
				label = "Server chain"
			}
			row(label, fmt.Sprintf("%s (until %s), issued by %s", c.Subject, c.NotAfter.Format(time.DateOnly), c.Issuer))
		}
		if len(r.Chain) > 0 {
			row("Verified", yesNo(r.ChainVerified))
			row("Name matches", yesNo(r.NameMatches))
			req := "not requested by the broker"
			if r.ClientCertRequested {
				req = "requested by the broker"
				if r.ClientCertSent != "" {
					req += "; sent " + r.ClientCertSent
					if r.Connack != nil {
						req += "; accepted"
					}
				} else {
					req += "; none sent"
				}
			}
			row("Client cert", req)
		}
	}
	if r.Connack != nil {
		row("CONNACK", fmt.Sprint(*r.Connack))
	}
	if r.Connack != nil && *r.Connack == 0 {
		row("Round trip", fmt.Sprintf("%s on %s", map[bool]string{true: "published and received", false: "nothing came back"}[r.RoundTrip], r.Topic))
	}
	for _, n := range r.Notes {
		fmt.Fprintf(w, "NOTE: %s\n", n)
	}
	if r.OK() {
		fmt.Fprintln(w, "OK: everything works")
		return
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "PROBLEM: %s\n", p)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// pageOrigin is the Origin a browser sends from the page at pageURL:
// scheme://host[:port], the default port left out; "" if there is no page.
func pageOrigin(pageURL string) string {
	u, err := url.Parse(pageURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Hostname())
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if p := u.Port(); p != "" && !(scheme == "https" && p == "443") && !(scheme == "http" && p == "80") {
		host += ":" + p
	}
	return scheme + "://" + host
}

// sameNameOtherCA explains a chain whose top issuer has the name of a CA in
// caFile but was signed by another key, by key id and fingerprint.
func sameNameOtherCA(chain []*x509.Certificate, caFile string) (explain.Problem, bool) {
	if caFile == "" {
		return explain.Problem{}, false
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return explain.Problem{}, false
	}
	top := chain[len(chain)-1]
	var same []*x509.Certificate
	for rest := data; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if c, err := x509.ParseCertificate(b.Bytes); err == nil && bytes.Equal(c.RawSubject, top.RawIssuer) {
			same = append(same, c)
		}
	}
	if len(same) == 0 {
		return explain.Problem{}, false
	}
	var ours []string
	for _, c := range same {
		ours = append(ours, fmt.Sprintf("one with key id %s (SHA-256 fingerprint %s)", keyID(c.SubjectKeyId), pki.Fingerprint(c)))
	}
	theirs := "signed by key id " + keyID(top.AuthorityKeyId)
	if top.IsCA && bytes.Equal(top.RawSubject, top.RawIssuer) {
		theirs = fmt.Sprintf("key id %s (SHA-256 fingerprint %s)", keyID(top.SubjectKeyId), pki.Fingerprint(top))
	}
	return explain.SameNameOtherServerCA(top.Issuer.String(), caFile, strings.Join(ours, " and "), theirs), true
}

// keyID is a key identifier as colon-separated hex, as openssl prints it.
func keyID(id []byte) string {
	if len(id) == 0 {
		return "(none given)"
	}
	return strings.ToUpper(strings.TrimSpace(strings.ReplaceAll(fmt.Sprintf("% x", id), " ", ":")))
}
