package agent

import (
	"bytes"
	"context"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/smallstep/pkcs7"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// Bounds of what the agent reads.
const (
	maxFile   = 1 << 20
	maxAnswer = 256 << 10
)

// held is a pair read from the device directory.
type held struct {
	cert           *x509.Certificate
	chain          []*x509.Certificate
	key            crypto.Signer
	crtPEM, keyPEM []byte
}

// loadPair reads a certificate (chain) and its key; an error wraps
// fs.ErrNotExist when the certificate is missing.
func loadPair(p pair) (*held, error) {
	crt, err := fsx.ReadRegular(p.crt, maxFile)
	if err != nil {
		return nil, err
	}
	certs, err := ParseCerts(crt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.crt, err)
	}
	kb, err := fsx.ReadRegular(p.key, maxFile)
	if err != nil {
		return nil, fmt.Errorf("%s is there but not its key (%v): restore the key, or move the certificate away to enrol again", p.crt, err)
	}
	key, err := ParseKey(kb)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.key, err)
	}
	return &held{cert: certs[0], chain: certs[1:], key: key, crtPEM: crt, keyPEM: kb}, nil
}

// ParseCerts reads the PEM certificates of data, leaf first.
func ParseCerts(data []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("an unreadable certificate: %v", err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate in it")
	}
	return out, nil
}

// ParseKey reads a PEM private key (PKCS#8, SEC 1 or PKCS#1).
func ParseKey(data []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, errors.New("no PEM private key in it")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	}
	if err != nil {
		return nil, fmt.Errorf("an unreadable private key (an encrypted key is not supported): %v", err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("a private key of type %T", k)
	}
	return s, nil
}

func readCA(path string) (*x509.CertPool, error) {
	data, err := fsx.ReadRegular(path, maxFile)
	if err != nil {
		return nil, fmt.Errorf("%w: %w (the factory puts the pki's ca.crt there)", ErrNoCA, err)
	}
	certs, err := ParseCerts(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}

func readToken(path string) (string, error) {
	const max = 64 << 10
	if st, err := os.Stat(path); err == nil && st.Mode().IsRegular() && st.Size() > max {
		return "", fmt.Errorf("the token file %s is %d bytes, over %d KiB: a token file holds one token on its first line; it is not the right file", path, st.Size(), max>>10)
	}
	data, err := fsx.ReadRegular(path, max)
	if err != nil {
		return "", fmt.Errorf("the token file: %w", err)
	}
	tok, _, _ := strings.Cut(string(data), "\n")
	tok = strings.TrimSpace(tok)
	if tok == "" {
		return "", fmt.Errorf("the token file %s is empty: its first line is the token 'mqttctl enroll token create' printed", path)
	}
	if strings.ContainsAny(tok, ": \t") {
		return "", fmt.Errorf("the first line of %s is not a token (it holds a colon or a space): put the token alone on it", path)
	}
	return tok, nil
}

// verifyLeaf checks that leaf verifies against roots for client
// authentication at now, is the certificate of name, and holds key.
func verifyLeaf(leaf *x509.Certificate, chain []*x509.Certificate, roots *x509.CertPool, name string, key crypto.Signer, now time.Time) error {
	inter := x509.NewCertPool()
	for _, c := range chain {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		return fmt.Errorf("the certificate does not verify against the CA: %v", err)
	}
	if leaf.Subject.CommonName != name {
		return fmt.Errorf("the certificate is of %q, not of %q", leaf.Subject.CommonName, name)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		return errors.New("the certificate does not hold the device's key")
	}
	return nil
}

// post sends a CSR to op and returns the issued chain, leaf first. With h
// it authenticates with that pair (TLS), else with HTTP Basic user:token.
func (o *Options) post(ctx context.Context, op string, csr []byte, roots *x509.CertPool, h *held, user, token string) ([]*x509.Certificate, error) {
	u, err := url.Parse(o.EST)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("the EST server %q is not https://HOST:PORT", o.EST)
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots, Time: o.Now}
	if h != nil {
		leaf := tls.Certificate{PrivateKey: h.key, Leaf: h.cert, Certificate: [][]byte{h.cert.Raw}}
		for _, c := range h.chain {
			leaf.Certificate = append(leaf.Certificate, c.Raw)
		}
		tc.Certificates = []tls.Certificate{leaf}
	}
	client := &http.Client{
		// An EST answer is at the URL asked: a redirect is not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       o.Timeout,
		Transport:     &http.Transport{TLSClientConfig: tc, Proxy: http.ProxyFromEnvironment, ForceAttemptHTTP2: false},
	}
	defer client.CloseIdleConnections()
	endpoint := strings.TrimSuffix(u.String(), "/") + "/.well-known/est/" + op
	if strings.Contains(u.Path, "/.well-known/est") {
		endpoint = strings.TrimSuffix(u.String(), "/") + "/" + op
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(base64.StdEncoding.EncodeToString(csr)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/pkcs10")
	req.Header.Set("Content-Transfer-Encoding", "base64")
	if user != "" {
		req.SetBasicAuth(user, token)
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr x509.UnknownAuthorityError
		var herr x509.HostnameError
		var cerr x509.CertificateInvalidError
		switch {
		case errors.As(err, &uerr):
			return nil, fmt.Errorf("%w: the certificate of %s does not verify against %s (%v): --est is not the EST server of this CA, or --cafile is not its CA", ErrUntrusted, u.Host, o.CAFile, uerr)
		case errors.As(err, &herr):
			return nil, fmt.Errorf("%w: the certificate of %s is not for the name %q (%v): give --est the name in the server's certificate", ErrUntrusted, u.Host, u.Hostname(), herr)
		case errors.As(err, &cerr):
			return nil, fmt.Errorf("%w: the certificate of %s is not valid for a TLS server at this device's time (%v)", ErrUntrusted, u.Host, cerr)
		}
		return nil, fmt.Errorf("%w: %s: %v", ErrUnreachable, u.Host, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: reading the answer: %v", ErrUnreachable, u.Host, err)
	}
	if len(body) > maxAnswer {
		return nil, fmt.Errorf("%s: the answer to %s is over %d KiB", u.Host, op, maxAnswer>>10)
	}
	if resp.StatusCode != http.StatusOK {
		reason := strings.TrimSpace(string(body))
		if len(reason) > 300 {
			reason = reason[:300]
		}
		reason = Printable(reason)
		status := Printable(resp.Status)
		switch c := resp.StatusCode; {
		case c == http.StatusUnauthorized || c == http.StatusForbidden || c == http.StatusBadRequest:
			return nil, fmt.Errorf("%w: %s answered %s to %s: %s", ErrRefused, u.Host, status, op, reason)
		case c >= 500 || c == http.StatusTooManyRequests:
			return nil, kindError{ErrUnreachable, fmt.Sprintf("the EST server failed: %s answered %s to %s: %s (a later attempt may succeed)", u.Host, status, op, reason), nil}
		}
		return nil, fmt.Errorf("%s answered %s to %s, not an EST answer: %s: --est is https://HOST:PORT of the EST server (mqttctl enroll serve)", u.Host, status, op+" at "+endpoint, reason)
	}
	certs, err := DecodeCerts(body)
	if err != nil {
		return nil, fmt.Errorf("%s: the answer to %s: %w", u.Host, op, err)
	}
	return certs, nil
}

// DecodeCerts reads an EST answer: a base64 certs-only PKCS#7, leaf
// first.
func DecodeCerts(body []byte) ([]*x509.Certificate, error) {
	clean := bytes.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, body)
	der, err := base64.StdEncoding.DecodeString(string(clean))
	if err != nil {
		return nil, fmt.Errorf("not base64: %v", err)
	}
	p7, err := pkcs7.Parse(der)
	if err != nil {
		return nil, fmt.Errorf("not a PKCS#7 certs-only message: %v", err)
	}
	if len(p7.Certificates) == 0 {
		return nil, errors.New("a PKCS#7 message with no certificate")
	}
	return p7.Certificates, nil
}

// Printable escapes what a terminal or a journal would act on in text the
// server sent (control characters, ESC sequences, CR and LF, invalid
// UTF-8) as Go escapes (\x1b, \r, \n), the rest as it is.
func Printable(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == ' ' || (unicode.IsPrint(r) && r != '\\'):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

// kindError is an error of kind (errors.Is) with its own words.
type kindError struct {
	kind error
	msg  string
	from error // the error it wraps, if any
}

func (e kindError) Error() string        { return e.msg }
func (e kindError) Is(target error) bool { return target == e.kind }
func (e kindError) Unwrap() error        { return e.from }
