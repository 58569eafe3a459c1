// Package enroll is mqttctl's EST server (RFC 7030, Enrollment over Secure
// Transport): devices get their client certificates from the pki directory
// by sending a CSR over HTTPS, authorised by a one-time token (HTTP Basic
// NAME:TOKEN), a bootstrap certificate, or, to renew, their current
// certificate (TLS client authentication). Every decision is taken by
// pki.Dir.Enroll under the directory's lock, from the directory as it is at
// that request: a revocation made meanwhile with pki revoke is enforced at
// once.
package enroll

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/smallstep/pkcs7"

	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/pki"
)

// Limits of a request.
const (
	// MaxBody bounds a request body: a base64 CSR with an RSA-8192 key is
	// some 3 KiB.
	MaxBody = 64 << 10
	// MaxHeaderBytes bounds the request line and headers.
	MaxHeaderBytes = 16 << 10
	// HeaderTimeout bounds the TLS handshake and the headers (slowloris):
	// an idle connection holds its slot this long at most. BodyTimeout
	// bounds the whole request.
	HeaderTimeout = 5 * time.Second
	BodyTimeout   = 30 * time.Second
	// MaxConns bounds the connections served at once (Listen); more wait
	// to be accepted. MaxConnsPerIP bounds those of one address; more are
	// closed at once.
	MaxConns      = 512
	MaxConnsPerIP = 16
)

// BasePath is where the EST operations are served.
const BasePath = "/.well-known/est/"

// Options configures a Server.
type Options struct {
	Dir *pki.Dir
	// RenewAfterExpiry lets a certificate that ended less than this long ago
	// re-enrol (0: an expired certificate cannot).
	RenewAfterExpiry time.Duration
	// Days is the validity of issued certificates (0: pki's default).
	Days int
	Log  *slog.Logger
	// MaxFailures failed authentications from one IP address within
	// FailWindow block it for the rest of the window (defaults 10, 1m).
	MaxFailures int
	FailWindow  time.Duration
	Now         func() time.Time
}

// Server answers EST requests.
type Server struct {
	o      Options
	mu     sync.Mutex
	bad    map[string]*failures
	pruned time.Time
	n      counters // for Collector (metrics.go)
}

type failures struct {
	n     int
	start time.Time
}

// New makes a Server.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.MaxFailures == 0 {
		o.MaxFailures = 10
	}
	if o.FailWindow == 0 {
		o.FailWindow = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Server{o: o, bad: map[string]*failures{}}
}

// TLSConfig is the server's TLS configuration: TLS 1.2 or later, the given
// certificate, and a client certificate asked for but not required (a
// device with a token has none); Enroll verifies it against the pki's CA.
// Session tickets are off, so that every request is judged on a full
// handshake's certificate.
func TLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS12,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequestClientCert,
		SessionTicketsDisabled: true,
	}
}

// HTTPServer is an http.Server for s on addr with the bounds above
// (HTTP/1.1 only).
func (s *Server) HTTPServer(addr string, cert tls.Certificate) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s,
		TLSConfig:         TLSConfig(cert),
		MaxHeaderBytes:    MaxHeaderBytes,
		ReadHeaderTimeout: HeaderTimeout,
		ReadTimeout:       BodyTimeout,
		WriteTimeout:      BodyTimeout,
		IdleTimeout:       time.Minute,
		TLSNextProto:      map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:          log.New(&serverLog{s.o.Log}, "", 0),
	}
}

// httpError is a refusal: its status and the reason sent as text/plain.
type httpError struct {
	status int
	reason string
	allow  string // the methods a 405 names
}

func (e *httpError) Error() string { return e.reason }

func fail(status int, format string, a ...any) *httpError {
	return &httpError{status: status, reason: fmt.Sprintf(format, a...)}
}

// ServeHTTP implements http.Handler.
// serverLog writes the http.Server's own messages to the log: a failed
// TLS handshake (a port scan, an idle connection cut at HeaderTimeout) at
// debug level, so that a flood of them does not flood the log; the
// others as warnings.
type serverLog struct{ log *slog.Logger }

func (l *serverLog) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if strings.Contains(msg, "TLS handshake error") {
		l.log.Debug(msg)
	} else {
		l.log.Warn(msg)
	}
	return len(p), nil
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := clientIP(r)
	op, ok := strings.CutPrefix(r.URL.Path, BasePath)
	if !ok {
		s.refuse(w, r, ip, fail(http.StatusNotFound, "not an EST path: the operations are under %s", BasePath))
		return
	}
	if r.TLS == nil {
		s.refuse(w, r, ip, fail(http.StatusForbidden, "EST runs over TLS only"))
		return
	}
	switch op {
	case "cacerts":
		if r.Method != http.MethodGet {
			e := fail(http.StatusMethodNotAllowed, "cacerts takes GET")
			e.allow = http.MethodGet
			s.refuse(w, r, ip, e)
			return
		}
		s.cacerts(w, r, ip)
	case "csrattrs":
		w.WriteHeader(http.StatusNoContent)
	case "simpleenroll", "simplereenroll":
		if r.Method != http.MethodPost {
			e := fail(http.StatusMethodNotAllowed, "%s takes POST", op)
			e.allow = http.MethodPost
			s.refuse(w, r, ip, e)
			return
		}
		if err := s.enroll(w, r, ip, op == "simplereenroll"); err != nil {
			s.refuse(w, r, ip, err)
		}
	default:
		s.refuse(w, r, ip, fail(http.StatusNotFound, "unknown EST operation %q (cacerts, simpleenroll, simplereenroll, csrattrs)", op))
	}
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, ip string, e *httpError) {
	s.n.refuse(e.status)
	s.o.Log.Warn("refused", "path", r.URL.Path, "remote", ip, "status", e.status, "reason", e.reason)
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="est", charset="UTF-8"`)
	}
	if e.allow != "" {
		w.Header().Set("Allow", e.allow)
	}
	if e.status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", strconv.Itoa(int(s.o.FailWindow.Seconds())))
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Connection", "close")
	w.WriteHeader(e.status)
	fmt.Fprintln(w, e.reason)
}

func (s *Server) cacerts(w http.ResponseWriter, r *http.Request, ip string) {
	var der []byte
	for _, f := range []string{pki.RootCertFile, pki.IntermediateCertFile} {
		data, err := fsx.ReadRegular(filepath.Join(s.o.Dir.Path, f), 1<<20)
		if err != nil {
			if f == pki.IntermediateCertFile {
				continue
			}
			s.o.Log.Error("cacerts", "error", err)
			s.refuse(w, r, ip, fail(http.StatusInternalServerError, "the CA certificate cannot be read"))
			return
		}
		certs, err := pki.ParseCerts(data, f)
		if err != nil {
			s.o.Log.Error("cacerts", "error", err)
			s.refuse(w, r, ip, fail(http.StatusInternalServerError, "the CA certificate cannot be read"))
			return
		}
		der = append(der, certs[0].Raw...)
	}
	writeCerts(w, der)
}

// writeCerts answers a base64 certs-only PKCS#7 holding the DER
// certificates der.
func writeCerts(w http.ResponseWriter, der []byte) {
	p7, err := pkcs7.DegenerateCertificate(der)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/pkcs7-mime; smime-type=certs-only")
	w.Header().Set("Content-Transfer-Encoding", "base64")
	enc := base64.StdEncoding.EncodeToString(p7)
	var b bytes.Buffer
	for len(enc) > 64 {
		b.WriteString(enc[:64] + "\n")
		enc = enc[64:]
	}
	b.WriteString(enc + "\n")
	w.Write(b.Bytes())
}

// blocked reports whether ip has failed too often within the window.
func (s *Server) blocked(ip string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.bad[ip]
	if f == nil {
		return false
	}
	if s.o.Now().Sub(f.start) >= s.o.FailWindow {
		delete(s.bad, ip)
		return false
	}
	return f.n >= s.o.MaxFailures
}

func (s *Server) failed(ip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.o.Now()
	if len(s.bad) >= 1024 && now.Sub(s.pruned) >= s.o.FailWindow/10 {
		// Forget ended windows, at most ten times a window: many
		// addresses cost a sweep now and then, not one per failure.
		s.pruned = now
		for k, f := range s.bad {
			if now.Sub(f.start) >= s.o.FailWindow {
				delete(s.bad, k)
			}
		}
	}
	if f := s.bad[ip]; f != nil {
		f.n++
		return
	}
	s.bad[ip] = &failures{n: 1, start: now}
}

func (s *Server) enroll(w http.ResponseWriter, r *http.Request, ip string, reenroll bool) *httpError {
	if s.blocked(ip) {
		return fail(http.StatusTooManyRequests, "too many failed authentications from %s: try again later", ip)
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/pkcs10" {
		return fail(http.StatusUnsupportedMediaType, "the request's Content-Type is %q: send application/pkcs10 (a base64 DER CSR)", r.Header.Get("Content-Type"))
	}
	if r.ContentLength > MaxBody {
		return fail(http.StatusRequestEntityTooLarge, "the request is %d bytes: at most %d", r.ContentLength, MaxBody)
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fail(http.StatusRequestEntityTooLarge, "the request is over %d bytes", MaxBody)
		}
		return fail(http.StatusBadRequest, "the request body could not be read: %v", err)
	}
	csr, err := DecodeCSR(body)
	if err != nil {
		return fail(http.StatusBadRequest, "%v", err)
	}
	req := pki.EnrollRequest{CSR: csr, Reenroll: reenroll, RenewAfterExpiry: s.o.RenewAfterExpiry, Days: s.o.Days}
	if user, pass, ok := r.BasicAuth(); ok && !reenroll {
		req.TokenName, req.Token = user, pass
	} else if r.Header.Get("Authorization") != "" && !reenroll {
		return s.authFailed(ip, "the Authorization header is not HTTP Basic NAME:TOKEN")
	}
	if r.TLS != nil && (reenroll || req.TokenName == "") {
		req.Peer = r.TLS.PeerCertificates
	}
	if reenroll && len(req.Peer) == 0 {
		return s.authFailed(ip, "simplereenroll needs the device's current certificate (TLS client authentication)")
	}
	got, err := s.o.Dir.Enroll(req)
	switch {
	case errors.Is(err, pki.ErrEnrollAuth) && req.TokenName != "":
		// Which of wrong, used, revoked or expired goes to the log only.
		s.o.Log.Warn("token refused", "remote", ip, "name", req.TokenName, "reason", err.Error())
		return s.authFailed(ip, fmt.Sprintf("the token for %q is wrong, used, revoked or expired", req.TokenName))
	case errors.Is(err, pki.ErrEnrollAuth):
		return s.authFailed(ip, err.Error())
	case errors.Is(err, pki.ErrEnrollPolicy):
		return fail(http.StatusForbidden, "%v", err)
	case err != nil:
		s.o.Log.Error("enrolment failed", "remote", ip, "name", csr.Subject.CommonName, "error", err)
		return fail(http.StatusInternalServerError, "the certificate could not be issued (the server's log says why)")
	}
	args := []any{"name", got.Name, "serial", pki.FormatSerial(got.Cert), "authorised_by", got.How}
	if got.AuthSerial != "" {
		args = append(args, "authorising_serial", got.AuthSerial)
	}
	msg := "issued"
	if got.Repeat {
		// The same certificate again, to a device whose answer was lost.
		msg = "answered again"
	} else {
		s.n.issue(got.How)
	}
	s.o.Log.Info(msg, append(args, "remote", ip, "not_after", got.Cert.NotAfter.UTC().Format(time.RFC3339))...)
	der := append([]byte(nil), got.Cert.Raw...)
	for _, c := range got.Chain {
		der = append(der, c.Raw...)
	}
	writeCerts(w, der)
	return nil
}

func (s *Server) authFailed(ip, reason string) *httpError {
	s.failed(ip)
	return fail(http.StatusUnauthorized, "not authorised: %s", reason)
}

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// DecodeCSR reads an EST request body: a base64 DER PKCS#10 request (line
// breaks and other white space allowed), and checks its signature.
func DecodeCSR(body []byte) (*x509.CertificateRequest, error) {
	clean := bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, body)
	if len(clean) == 0 {
		return nil, errors.New("the request body is empty: send a base64 DER CSR")
	}
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		if bytes.HasPrefix(clean, []byte("-----BEGIN")) {
			return nil, errors.New("the request body is PEM: send the base64 of the DER CSR (openssl req -outform DER | base64)")
		}
		return nil, fmt.Errorf("the request body is not base64: %v", err)
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, errors.New("the request body is not a PKCS#10 certificate request")
	}
	if k, ok := csr.PublicKey.(*rsa.PublicKey); ok && k.N.BitLen() > 8192 {
		return nil, fmt.Errorf("the request's key is RSA-%d: at most 8192 bits", k.N.BitLen())
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("the request's signature does not verify: %v", err)
	}
	return csr, nil
}
