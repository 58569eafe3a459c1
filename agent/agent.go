// Package agent keeps a device's client certificate current: it enrols
// with a one-time token at the EST server (`mqttctl enroll serve`,
// simpleenroll, HTTP Basic NAME:TOKEN), then re-enrols with its current
// certificate (simplereenroll, TLS client authentication) once the renew
// point of the certificate's lifetime has passed.
//
// The device directory holds, for the device NAME:
//
//	ca.crt                       the CA the EST server and the broker are trusted through
//	NAME.crt, NAME.key           the current pair (the key 0600)
//	NAME.prev.crt, NAME.prev.key the pair the last renewal replaced
//	NAME.new.crt, NAME.new.key   a new pair being checked (only during a run)
//	NAME.next.key                the new key a request asked a certificate for
//	                             (from before the request until the swap: a
//	                             run after a lost answer asks for it again)
//	.agent-journal.json          the swap's redo journal (only during a swap)
//
// A swap is one fsx.Txn with a redo journal: the new certificate (and key)
// and the previous pair are written to synced temporary files first, then
// the journal records every rename, then the renames are done. A kill -9
// before the journal is in place leaves the old pair in place (the next run
// removes the temporary files and renews again); after it, the next run
// completes the renames before anything else. No step leaves the directory
// without a pair that matches and verifies, once the next run has
// recovered.
package agent

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/diagnose"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// Files of the device directory.
const (
	CAFile      = "ca.crt"
	JournalFile = ".agent-journal.json"
)

// DefaultRenewAt is the renew point: two thirds of the lifetime.
const DefaultRenewAt = 2.0 / 3

// Options configures the agent.
type Options struct {
	Dir string
	// Name is the device's name, the certificate's CN and MQTT identity;
	// "" takes it from the one pair in Dir (needed at the first
	// enrolment).
	Name string
	// EST is the server's base URL, https://HOST:PORT (the EST path is
	// added).
	EST string
	// TokenFile holds the one-time token (its first line); removed after
	// the enrolment it was spent on.
	TokenFile string
	// CAFile is the only trust for the EST server ("" is Dir/ca.crt).
	CAFile string
	// RenewAt is the fraction of the lifetime after which it renews (0:
	// DefaultRenewAt).
	RenewAt float64
	// Rekey makes a new key at each renewal (else the key stays).
	Rekey bool
	// Exec runs with sh -c after a renewal or enrolment.
	Exec string
	// Check is an mqtts:// URL the new pair must log into before the swap.
	Check string
	Log   *slog.Logger
	// ExecOut receives the output of Exec (nil: discarded).
	ExecOut io.Writer
	// Timeout bounds one request (default 30 s).
	Timeout time.Duration
	// Now, Sleep, Crash and Jitter are test hooks (nil in use): the clock,
	// the wait between attempts, the crash points of fsx.Txn, and the
	// random fraction in [0,1) of the backoff's jitter.
	Now    func() time.Time
	Sleep  func(ctx context.Context, d time.Duration) error
	Crash  func(step string) bool
	Jitter func() float64
}

func (o *Options) defaults() {
	if o.RenewAt == 0 {
		o.RenewAt = DefaultRenewAt
	}
	if o.CAFile == "" {
		o.CAFile = filepath.Join(o.Dir, CAFile)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Outcome is what a run did.
type Outcome int

// Outcomes.
const (
	NotDue Outcome = iota
	Enrolled
	Renewed
)

func (o Outcome) String() string {
	return [...]string{"not due", "enrolled", "renewed"}[o]
}

// Kinds of failures (errors.Is).
var (
	// ErrRefused: the EST server refused the request (401, 403): retrying
	// does not help.
	ErrRefused = errors.New("refused by the EST server")
	// ErrUnreachable: the server could not be reached or failed (network,
	// 5xx, 429): retrying later may.
	ErrUnreachable = errors.New("the EST server is unreachable")
	// ErrNeedToken: no certificate, or one the server no longer renews,
	// and no token.
	ErrNeedToken = errors.New("a new enrolment token is needed")
	// ErrNoCA: the CA certificate the server is trusted through is
	// missing or unreadable.
	ErrNoCA = errors.New("the CA certificate the EST server is trusted through")
	// ErrExec: renewed, but the --exec command failed.
	ErrExec = errors.New("the command run after the renewal failed")
)

func (o *Options) path(name string) string { return filepath.Join(o.Dir, name) }

// paths of a device's files.
type pair struct{ crt, key string }

func (o *Options) pairOf(name, suffix string) pair {
	return pair{o.path(name + suffix + ".crt"), o.path(name + suffix + ".key")}
}

// FindName returns the name of the one pair (NAME.crt and NAME.key) in dir.
func FindName(dir string) (string, error) {
	keys, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return "", err
	}
	var names []string
	for _, k := range keys {
		n := strings.TrimSuffix(filepath.Base(k), ".key")
		if strings.HasSuffix(n, ".prev") || strings.HasSuffix(n, ".new") || strings.HasSuffix(n, ".next") {
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, n+".crt")); err == nil {
			names = append(names, n)
		}
	}
	switch len(names) {
	case 1:
		return names[0], nil
	case 0:
		return "", fmt.Errorf("%s holds no certificate and key (NAME.crt, NAME.key): give the device's name (the token's name) to enrol", dir)
	}
	return "", fmt.Errorf("%s holds %d pairs (%s): give the device's name", dir, len(names), strings.Join(names, ", "))
}

// recoverDir completes an interrupted swap, or removes what a run stopped
// before its journal left (temporary and staged files). Called under the
// directory's lock.
func (o *Options) recoverDir() error {
	canRemove := func(rel string) bool {
		return !strings.Contains(rel, "/") && (strings.HasSuffix(rel, ".new.crt") || strings.HasSuffix(rel, ".new.key") || strings.HasSuffix(rel, nextKeySuffix))
	}
	done, err := fsx.Recover(o.path(JournalFile), canRemove, o.Crash)
	if err != nil {
		return err
	}
	if len(done) > 0 {
		o.Log.Warn("completed an interrupted swap", "files", len(done))
		return nil
	}
	fsx.CleanTemps(o.Dir)
	staged, _ := filepath.Glob(filepath.Join(o.Dir, "*.new.*"))
	for _, f := range staged {
		if strings.HasSuffix(f, ".new.crt") || strings.HasSuffix(f, ".new.key") {
			os.Remove(f)
		}
	}
	return nil
}

// Once runs one pass: it enrols when the directory has no certificate,
// renews when the renew point has passed, and otherwise does nothing
// (NotDue).
func Once(ctx context.Context, o Options) (Outcome, error) {
	o.defaults()
	if u, err := url.Parse(o.EST); err != nil || u.Scheme != "https" || u.Host == "" {
		return NotDue, fmt.Errorf("the EST server %q is not https://HOST:PORT", o.EST)
	}
	unlock, err := fsx.LockDir(o.Dir)
	if err != nil {
		return NotDue, err
	}
	defer unlock()
	if err := o.recoverDir(); err != nil {
		return NotDue, err
	}
	roots, err := readCA(o.CAFile)
	if err != nil {
		return NotDue, err
	}
	name := o.Name
	if name == "" {
		if name, err = FindName(o.Dir); err != nil {
			return NotDue, err
		}
	}
	if err := ident.Validate(name); err != nil {
		return NotDue, fmt.Errorf("device name %q: %w", name, err)
	}
	cur := o.pairOf(name, "")
	h, err := loadPair(cur)
	if errors.Is(err, fs.ErrNotExist) {
		return o.enrol(ctx, name, roots, nil)
	}
	if err != nil {
		return NotDue, err
	}
	now := o.Now()
	if h.cert.Subject.CommonName != name {
		return NotDue, fmt.Errorf("%s is the certificate of %q, not of %q", cur.crt, h.cert.Subject.CommonName, name)
	}
	if now.Before(RenewPoint(h.cert, o.RenewAt)) {
		return NotDue, nil
	}
	expired := !now.Before(h.cert.NotAfter)
	out, err := o.renew(ctx, name, roots, h)
	if err == nil || !errors.Is(err, ErrRefused) {
		return out, err
	}
	if _, serr := os.Stat(o.TokenFile); o.TokenFile != "" && serr == nil {
		o.Log.Warn("the server does not renew the certificate; enrolling with the token", "reason", err.Error())
		return o.enrol(ctx, name, roots, h)
	}
	if !expired && strings.Contains(err.Error(), "revoked") {
		return NotDue, fmt.Errorf("the certificate %s (serial %s) is revoked: it cannot renew, and the pair is left as it is; the device enrols again with a new token (mqttctl enroll token create %s on the CA): %w", cur.crt, serial(h.cert), name, err)
	}
	if !expired {
		return NotDue, err
	}
	return NotDue, fmt.Errorf("%w: the certificate %s ended on %s and the EST server no longer renews it (%v); it renews an expired certificate only within its window (mqttctl enroll serve --renew-after-expiry): make a new token for %s on the CA (mqttctl enroll token create %s --force) and give it to the agent",
		ErrNeedToken, cur.crt, h.cert.NotAfter.UTC().Format(time.RFC3339), err, name, name)
}

// RenewPoint is when a certificate is due: at the fraction at of its
// lifetime.
func RenewPoint(c *x509.Certificate, at float64) time.Time {
	life := c.NotAfter.Sub(c.NotBefore)
	return c.NotBefore.Add(time.Duration(float64(life) * at))
}

func (o *Options) enrol(ctx context.Context, name string, roots *x509.CertPool, old *held) (Outcome, error) {
	if o.TokenFile == "" {
		return NotDue, fmt.Errorf("%w: %s has no certificate for %s: it enrols with the token the factory made for it", ErrNeedToken, o.Dir, name)
	}
	tok, err := readToken(o.TokenFile)
	if err != nil {
		return NotDue, err
	}
	key, err := o.nextKey(name)
	if err != nil {
		return NotDue, err
	}
	csr, err := makeCSR(key, pkix.Name{CommonName: name}.ToRDNSequence(), nil)
	if err != nil {
		return NotDue, err
	}
	certs, err := o.post(ctx, "simpleenroll", csr, roots, nil, name, tok)
	if err != nil {
		o.dropNextKey(name, err)
		return NotDue, err
	}
	if err := o.install(name, roots, certs, key, old); err != nil {
		return NotDue, err
	}
	o.Log.Info("enrolled", "name", name, "serial", serial(certs[0]), "not_after", certs[0].NotAfter.UTC().Format(time.RFC3339))
	if err := os.Remove(o.TokenFile); err != nil {
		o.Log.Warn("the token is spent but its file could not be removed: remove it", "file", o.TokenFile, "error", err.Error())
	}
	return Enrolled, o.runExec(name)
}

func (o *Options) renew(ctx context.Context, name string, roots *x509.CertPool, h *held) (Outcome, error) {
	key := h.key
	var newk crypto.Signer
	if o.Rekey {
		k, err := o.nextKey(name)
		if err != nil {
			return NotDue, err
		}
		key, newk = k, k
	}
	csr, err := makeCSR(key, nil, h.cert.RawSubject)
	if err != nil {
		return NotDue, err
	}
	certs, err := o.post(ctx, "simplereenroll", csr, roots, h, "", "")
	if err != nil {
		if newk != nil {
			o.dropNextKey(name, err)
		}
		return NotDue, err
	}
	if err := o.install(name, roots, certs, newk, h); err != nil {
		return NotDue, err
	}
	o.Log.Info("renewed", "name", name, "serial", serial(certs[0]), "not_after", certs[0].NotAfter.UTC().Format(time.RFC3339), "previous", serial(h.cert))
	return Renewed, o.runExec(name)
}

// install checks the issued chain (it verifies against the CA, names the
// device, holds the key), stages it beside the current pair, checks that
// it logs into the broker when asked, and swaps. newKey is nil when the
// key stays.
func (o *Options) install(name string, roots *x509.CertPool, certs []*x509.Certificate, newKey crypto.Signer, old *held) error {
	key := newKey
	if key == nil {
		key = old.key
	}
	certs = leafFirst(certs, key)
	leaf := certs[0]
	if err := verifyLeaf(leaf, certs[1:], roots, name, key, o.Now()); err != nil {
		return fmt.Errorf("the EST server's answer: %w", err)
	}
	if old != nil && newKey == nil && leaf.Subject.String() != old.cert.Subject.String() {
		return fmt.Errorf("the EST server's answer names %q, the current certificate %q", leaf.Subject, old.cert.Subject)
	}
	cur, staged := o.pairOf(name, ""), o.pairOf(name, ".new")
	crtPEM := encodeCerts(certs)
	var keyPEM []byte
	if newKey != nil {
		var err error
		if keyPEM, err = encodeKey(newKey); err != nil {
			return err
		}
	}
	// Stage beside the old pair (no journal: a crash leaves files the next
	// run removes).
	st := fsx.Txn{Crash: o.Crash}
	if err := st.Add(staged.crt, crtPEM, 0o644, true); err != nil {
		return err
	}
	checkKey := cur.key
	if keyPEM != nil {
		if err := st.Add(staged.key, keyPEM, 0o600, true); err != nil {
			st.Abort()
			return err
		}
		checkKey = staged.key
	}
	if err := st.Commit(); err != nil {
		return err
	}
	// The staged files as written must verify too.
	if h, err := loadPair(pair{staged.crt, checkKey}); err != nil {
		return fmt.Errorf("the new pair as written: %w", err)
	} else if err := verifyLeaf(h.cert, nil, roots, name, h.key, o.Now()); err != nil {
		return fmt.Errorf("the new pair as written: %w", err)
	}
	if o.Check != "" {
		if err := o.checkBroker(staged.crt, checkKey); err != nil {
			os.Remove(staged.crt)
			os.Remove(staged.key)
			return err
		}
	}
	// The swap: the previous pair kept, the new one in place, the staged
	// files removed, all or nothing.
	t := fsx.Txn{Journal: o.path(JournalFile), Crash: o.Crash}
	if old != nil {
		prev := o.pairOf(name, ".prev")
		if err := t.Add(prev.crt, old.crtPEM, 0o644, true); err != nil {
			return err
		}
		if err := t.Add(prev.key, old.keyPEM, 0o600, true); err != nil {
			t.Abort()
			return err
		}
	}
	if err := t.Add(cur.crt, crtPEM, 0o644, true); err != nil {
		t.Abort()
		return err
	}
	if keyPEM != nil {
		if err := t.Add(cur.key, keyPEM, 0o600, true); err != nil {
			t.Abort()
			return err
		}
		t.Remove(staged.key)
	}
	t.Remove(staged.crt)
	if next := o.path(name + nextKeySuffix); fileExists(next) {
		t.Remove(next)
	}
	return t.Commit()
}

// nextKeySuffix names the key a request asks a certificate for
// (NAME.next.key), kept from before the request until the swap.
const nextKeySuffix = ".next.key"

// nextKey returns the new key a request asks a certificate for: the one
// a run before kept (its answer lost, or its swap interrupted), or a new
// one, written to NAME.next.key (0600) before it is sent. The EST server
// answers a repeated request for the key of the certificate it issued
// with that certificate again, and the swap removes the file.
func (o *Options) nextKey(name string) (crypto.Signer, error) {
	p := o.path(name + nextKeySuffix)
	if data, err := fsx.ReadRegular(p, 1<<20); err == nil {
		if k, err := ParseKey(data); err == nil {
			return k, nil
		}
	}
	k, err := newKey()
	if err != nil {
		return nil, err
	}
	pem, err := encodeKey(k)
	if err != nil {
		return nil, err
	}
	t := fsx.Txn{Crash: o.Crash}
	if err := t.Add(p, pem, 0o600, true); err != nil {
		return nil, err
	}
	if err := t.Commit(); err != nil {
		return nil, err
	}
	return k, nil
}

// dropNextKey removes NAME.next.key after the server refused the request
// (no certificate was issued for it); after a lost answer it stays.
func (o *Options) dropNextKey(name string, err error) {
	if errors.Is(err, ErrRefused) {
		os.Remove(o.path(name + nextKeySuffix))
	}
}

func fileExists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

func (o *Options) checkBroker(crt, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rep, err := diagnose.Check(ctx, diagnose.Options{URL: o.Check, CAFile: o.CAFile, CertFile: crt, KeyFile: key, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("checking the new pair at %s: %w; the old pair is kept", o.Check, err)
	}
	if !rep.OK() {
		var b strings.Builder
		rep.WriteText(&b)
		return fmt.Errorf("the new pair cannot log into %s; the old pair is kept:\n%s", o.Check, strings.TrimSpace(b.String()))
	}
	o.Log.Info("the new pair logs into the broker", "url", o.Check)
	return nil
}

func (o *Options) runExec(name string) error {
	if o.Exec == "" {
		return nil
	}
	cur := o.pairOf(name, "")
	cmd := exec.Command("/bin/sh", "-c", o.Exec)
	cmd.Env = append(os.Environ(), "MQTTCTL_CERT="+cur.crt, "MQTTCTL_KEY="+cur.key, "MQTTCTL_NAME="+name)
	out := o.ExecOut
	if out == nil {
		out = io.Discard
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		o.Log.Error("the command after the renewal failed", "command", o.Exec, "error", err.Error())
		return fmt.Errorf("%w: sh -c %q: %v (the new pair is in place)", ErrExec, o.Exec, err)
	}
	o.Log.Info("ran the command after the renewal", "command", o.Exec)
	return nil
}

// leafFirst puts the certificate of key first (an EST answer's order is
// not guaranteed).
func leafFirst(certs []*x509.Certificate, key crypto.Signer) []*x509.Certificate {
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	for i, c := range certs {
		if ok && pub.Equal(c.PublicKey) {
			out := append([]*x509.Certificate{c}, certs[:i]...)
			return append(out, certs[i+1:]...)
		}
	}
	return certs
}

func newKey() (crypto.Signer, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

func makeCSR(key crypto.Signer, subj pkix.RDNSequence, rawSubject []byte) ([]byte, error) {
	tpl := &x509.CertificateRequest{RawSubject: rawSubject}
	if rawSubject == nil {
		var n pkix.Name
		n.FillFromRDNSequence(&subj)
		tpl.Subject = n
	}
	return x509.CreateCertificateRequest(rand.Reader, tpl, key)
}

func encodeKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

func encodeCerts(certs []*x509.Certificate) []byte {
	var b []byte
	for _, c := range certs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return b
}

func serial(c *x509.Certificate) string { return fmt.Sprintf("%X", c.SerialNumber) }
