// Package agent keeps a device's client certificate current: it enrols
// with a one-time token at the EST server (`mqttctl enroll serve`,
// simpleenroll, HTTP Basic NAME:TOKEN), then re-enrols with its current
// certificate (simplereenroll, TLS client authentication) once the renew
// point of the certificate's lifetime has passed.
//
// The device directory holds, for the device NAME, ca.crt (the CA the EST
// server and the broker are trusted through) and the pairs in the layout
// of pairs.go: NAME.crt and NAME.key (and NAME.prev.crt, NAME.prev.key) are
// symbolic links through one pointer, NAME.current, to a directory per
// certificate, NAME.pairs/SERIAL/. A renewal writes the new pair into
// NAME.pairs/next/ (the key before the request is sent, the certificate as
// soon as the server answers), checks it, and switches NAME.current in one
// rename: at every step a kill -9 can stop it at, NAME.crt and NAME.key are
// the old pair or the new one, never one of each, and the next run installs
// a pair the server issued to the stopped run (and runs --exec).
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
	"slices"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/diagnose"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
	"github.com/mqttctl/mqttctl/pki"
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

// errClock: an issued certificate starts too far after the device's
// clock; it is kept until the clock is set.
var errClock = errors.New("this device's clock is behind")

// Kinds of failures (errors.Is).
var (
	// ErrRefused: the EST server refused the request (401, 403): retrying
	// does not help.
	ErrRefused = errors.New("refused by the EST server")
	// ErrUnreachable: the server could not be reached or failed (network,
	// 5xx, 429): retrying later may.
	ErrUnreachable = errors.New("the EST server is unreachable")
	// ErrUntrusted: the EST server's certificate does not verify against
	// the CA file, or is not for its name: nothing was sent.
	ErrUntrusted = errors.New("the EST server is not trusted")
	// ErrRevoked: the server refused to renew a revoked certificate.
	ErrRevoked = errors.New("the certificate is revoked")
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
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("the device directory %s: %w", dir, err)
		}
		crts, _ := filepath.Glob(filepath.Join(dir, "*.crt"))
		for _, c := range crts {
			n := strings.TrimSuffix(filepath.Base(c), ".crt")
			if n+".crt" != CAFile && !strings.HasSuffix(n, ".prev") && !strings.HasSuffix(n, ".new") {
				return "", fmt.Errorf("%s is there but not its key %s.key: restore the key, or move the certificate away to enrol again", c, n)
			}
		}
		return "", fmt.Errorf("%s holds no certificate and key (NAME.crt, NAME.key): give the device's name (the token's name) to enrol", dir)
	}
	return "", fmt.Errorf("%s holds %d pairs (%s): give the device's name", dir, len(names), strings.Join(names, ", "))
}

// maxSkew is how far in the future an issued certificate may start (the
// device's clock behind the server's) and still be installed, with a
// warning.
const maxSkew = 10 * time.Minute

// recoverDir finishes what a stopped run left, under the directory's lock:
// temporary links and files are removed, plain NAME.crt and NAME.key are
// moved into the layout of links, and a pair the server issued (the next
// pair, or a pair directory no pointer names yet) is installed, as the
// renewal (or enrolment) it is: --exec runs. done reports that it
// installed a pair or ran a pending --exec.
func (o *Options) recoverDir(name string, roots *x509.CertPool) (Outcome, bool, error) {
	if _, err := os.Lstat(o.path(JournalFile)); err == nil {
		return NotDue, false, fmt.Errorf("%s is the journal of an older mqttctl agent's interrupted swap: check that %s.crt and %s.key match (mqttctl agent status; %s.prev.crt and .prev.key are the pair before), then remove it", o.path(JournalFile), name, name, name)
	}
	o.cleanLinks(name)
	fsx.CleanTemps(o.Dir)
	for _, f := range []string{".new.crt", ".new.key"} {
		os.Remove(o.path(name + f))
	}
	if err := o.migrate(name); err != nil {
		return NotDue, false, err
	}
	// The links an interrupted run did not make (NAME.crt last: a
	// certificate without its key is the user's, and is reported).
	_, err := os.Lstat(o.pairOf(name, "").crt)
	if err := o.ensureLinks(name, errors.Is(err, fs.ErrNotExist)); err != nil {
		return NotDue, false, err
	}
	cur, err := o.target(name, "current")
	if err != nil {
		return NotDue, false, err
	}
	prev, err := o.target(name, "previous")
	if err != nil {
		return NotDue, false, err
	}
	var old *held
	if cur != "" {
		if old, err = loadPair(o.pairOf(name, "")); err != nil {
			return NotDue, false, err
		}
	}
	outcome := Renewed
	if old == nil {
		outcome = Enrolled
	}
	// Pairs issued but not installed: the next one, or one renamed into
	// place whose pointer was not switched.
	var srcs []string
	if _, err := os.Lstat(o.nextPair(name).crt); err == nil {
		srcs = append(srcs, nextDir)
	}
	entries, _ := os.ReadDir(o.pairsDir(name))
	for _, e := range entries {
		if n := e.Name(); e.IsDir() && serialDir.MatchString(n) && n != cur && n != prev {
			srcs = append(srcs, n)
		}
	}
	for _, src := range srcs {
		d := filepath.Join(o.pairsDir(name), src)
		h, err := loadPair(pair{filepath.Join(d, name+".crt"), filepath.Join(d, name+".key")})
		if err == nil {
			err = o.acceptable(name, roots, append([]*x509.Certificate{h.cert}, h.chain...), h.key, old)
		}
		if errors.Is(err, errClock) {
			return NotDue, true, err
		}
		if err != nil {
			if src == nextDir {
				// The certificate is no use; its key is kept for the
				// next request.
				o.Log.Warn("a staged certificate is not installed", "file", filepath.Join(d, name+".crt"), "reason", err.Error())
				os.Remove(filepath.Join(d, name+".crt"))
			}
			continue
		}
		if err := o.activate(name, src, serial(h.cert), outcome); err != nil {
			return NotDue, false, err
		}
		o.Log.Warn("installed the pair an interrupted run was given", "name", name, "serial", serial(h.cert), "not_after", h.cert.NotAfter.UTC().Format(time.RFC3339))
		o.spendToken(outcome)
		return outcome, true, o.runExec(name)
	}
	if b, err := fsx.ReadRegular(o.execMarker(name), 64); err == nil {
		o.Log.Warn("an interrupted run installed a new pair; running --exec now")
		out := parseOutcome(string(b))
		o.spendToken(out)
		if err := o.collect(name); err != nil {
			return NotDue, false, err
		}
		return out, true, o.runExec(name)
	}
	return NotDue, false, o.collect(name)
}

// spendToken removes the token file after an enrolment.
func (o *Options) spendToken(out Outcome) {
	if out != Enrolled || o.TokenFile == "" {
		return
	}
	if err := os.Remove(o.TokenFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		o.Log.Warn("the token is spent but its file could not be removed: remove it", "file", o.TokenFile, "error", err.Error())
	}
}

// Once runs one pass: it enrols when the directory has no certificate,
// renews when the renew point has passed, and otherwise does nothing
// (NotDue).
func Once(ctx context.Context, o Options) (Outcome, error) {
	o.defaults()
	if u, err := url.Parse(o.EST); err != nil || u.Scheme != "https" || u.Host == "" {
		return NotDue, fmt.Errorf("the EST server %q is not https://HOST:PORT", Printable(o.EST))
	} else if u.User != nil {
		return NotDue, fmt.Errorf("the EST server https://%s... holds a user name or password: the agent authenticates with its token file or its certificate, and a secret in a command line is visible to every user of the machine; give https://%s", u.Host, u.Host)
	}
	if st, err := os.Stat(o.Dir); err == nil && st.Mode().Perm()&0o022 != 0 {
		return NotDue, fmt.Errorf("%s is writable by others than its owner (mode %04o): whoever can write it can replace the device's key; chmod 700 %s", o.Dir, st.Mode().Perm(), o.Dir)
	}
	unlock, err := fsx.LockDir(o.Dir)
	if err != nil {
		return NotDue, err
	}
	defer unlock()
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
	for _, f := range []string{o.pairOf(name, "").key, o.TokenFile} {
		if st, err := os.Stat(f); f != "" && err == nil && st.Mode().Perm()&0o077 != 0 {
			o.Log.Warn("a secret is readable by others than its owner: chmod 600 it (the agent writes its keys 0600)", "file", f, "mode", fmt.Sprintf("%04o", st.Mode().Perm()))
		}
	}
	if out, done, err := o.recoverDir(name, roots); done || err != nil {
		return out, err
	}
	cur := o.pairOf(name, "")
	h, err := loadPair(cur)
	if errors.Is(err, fs.ErrNotExist) {
		if other, ferr := FindName(o.Dir); ferr == nil && other != name {
			return NotDue, fmt.Errorf("%s holds the pair of %q: a device directory holds one device's pair, and every later run would have to be told which; enrol %q into a directory of its own (--dir), or move %s.crt and %s.key away first", o.Dir, other, name, other, other)
		}
		if _, kerr := os.Lstat(cur.key); kerr == nil {
			return NotDue, fmt.Errorf("%s is there without its certificate %s: the enrolment would replace that key; restore %s, or move the key away to enrol with a new one", cur.key, cur.crt, filepath.Base(cur.crt))
		}
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
		return NotDue, kindError{ErrRevoked, fmt.Sprintf("the certificate %s (serial %s) is revoked: it cannot renew, and the pair is left as it is; the device enrols again with a new token (mqttctl enroll token create %s on the CA): %v", cur.crt, serial(h.cert), name, err), err}
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
	// The key is on disk before the token is spent: a run stopped after
	// the server answered finds it, and the certificate, at its next start.
	key, err := o.stageKey(name, true, nil)
	if err != nil {
		return NotDue, err
	}
	csr, err := makeCSR(key, pkix.Name{CommonName: name}.ToRDNSequence(), nil)
	if err != nil {
		return NotDue, err
	}
	certs, err := o.post(ctx, "simpleenroll", csr, roots, nil, name, tok)
	if err != nil {
		return NotDue, err
	}
	if err := o.install(name, roots, certs, key, old, Enrolled); err != nil {
		return NotDue, err
	}
	o.Log.Info("enrolled", "name", name, "serial", serial(certs[0]), "not_after", certs[0].NotAfter.UTC().Format(time.RFC3339))
	o.spendToken(Enrolled)
	return Enrolled, o.runExec(name)
}

func (o *Options) renew(ctx context.Context, name string, roots *x509.CertPool, h *held) (Outcome, error) {
	key, err := o.stageKey(name, o.Rekey, h)
	if err != nil {
		return NotDue, err
	}
	csr, err := makeCSR(key, nil, h.cert.RawSubject)
	if err != nil {
		return NotDue, err
	}
	certs, err := o.post(ctx, "simplereenroll", csr, roots, h, "", "")
	if err != nil {
		return NotDue, err
	}
	if err := o.install(name, roots, certs, key, h, Renewed); err != nil {
		return NotDue, err
	}
	o.Log.Info("renewed", "name", name, "serial", serial(certs[0]), "not_after", certs[0].NotAfter.UTC().Format(time.RFC3339), "previous", serial(h.cert))
	return Renewed, o.runExec(name)
}

// acceptable checks an issued chain (leaf first) for key: it verifies
// against the CA for client authentication, names the device and holds
// the key. A certificate that starts up to maxSkew after the device's
// clock is accepted with a warning about the clock.
func (o *Options) acceptable(name string, roots *x509.CertPool, certs []*x509.Certificate, key crypto.Signer, old *held) error {
	leaf := certs[0]
	at := o.Now()
	if ahead := leaf.NotBefore.Sub(at); ahead > maxSkew {
		if err := verifyLeaf(leaf, certs[1:], roots, name, key, leaf.NotBefore); err != nil {
			return err
		}
		return fmt.Errorf("%w: the certificate starts at %s, %s after this device's clock (%s): it is kept in %s; set the device's clock (NTP) and run again to install it", errClock, leaf.NotBefore.UTC().Format(time.RFC3339), ahead.Round(time.Second), at.UTC().Format(time.RFC3339), filepath.Dir(o.nextPair(name).crt))
	} else if ahead > 0 {
		o.Log.Warn("the certificate starts after this device's clock: the clock is behind; set it (NTP)", "not_before", leaf.NotBefore.UTC().Format(time.RFC3339), "clock", at.UTC().Format(time.RFC3339))
		at = leaf.NotBefore
	}
	if err := deviceCert(leaf); err != nil {
		return err
	}
	if err := verifyLeaf(leaf, certs[1:], roots, name, key, at); err != nil {
		return err
	}
	if life := leaf.NotAfter.Sub(leaf.NotBefore); life < minLifetime {
		return fmt.Errorf("it is valid for only %s (%s to %s), under %s: the EST server's --days is not a device certificate's lifetime", life.Round(time.Second), leaf.NotBefore.UTC().Format(time.RFC3339), leaf.NotAfter.UTC().Format(time.RFC3339), minLifetime)
	}
	if left := leaf.NotAfter.Sub(at); left < minLifetime {
		return fmt.Errorf("it ends at %s, in %s, under %s from now", leaf.NotAfter.UTC().Format(time.RFC3339), left.Round(time.Second), minLifetime)
	}
	if old != nil && leaf.SerialNumber.Cmp(old.cert.SerialNumber) == 0 {
		return fmt.Errorf("it is the current certificate again (serial %s), not a new one", serial(leaf))
	}
	if old != nil && leaf.NotAfter.Before(old.cert.NotAfter) {
		return fmt.Errorf("it ends at %s, before the current certificate (%s): it would shorten the device's validity", leaf.NotAfter.UTC().Format(time.RFC3339), old.cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if old != nil && leaf.Subject.String() != old.cert.Subject.String() {
		return fmt.Errorf("it names %q, the current certificate %q", leaf.Subject, old.cert.Subject)
	}
	return nil
}

// minLifetime is the shortest lifetime, and the shortest time left, of a
// certificate the agent installs.
const minLifetime = time.Hour

// deviceCert checks that c is a device's client certificate: not a CA, for
// client authentication (the extended key usage named), for signatures,
// and not a bootstrap certificate.
func deviceCert(c *x509.Certificate) error {
	switch {
	case c.IsCA:
		return errors.New("it is a CA certificate (CA:TRUE), not a device's")
	case !slices.Contains(c.ExtKeyUsage, x509.ExtKeyUsageClientAuth):
		return errors.New("it is not for TLS client authentication (no clientAuth extended key usage)")
	case c.KeyUsage&x509.KeyUsageDigitalSignature == 0:
		return errors.New("its key usage lacks digitalSignature, which a TLS client's key needs")
	case pki.IsBootstrap(c):
		return fmt.Errorf("it is a bootstrap certificate (OU %s), which only enrols, not a device's", pki.BootstrapOU)
	}
	return nil
}

// install checks the issued chain, writes it beside its key in the next
// pair (the key is there already), checks that it logs into the broker
// when asked, and switches the pointer to it.
func (o *Options) install(name string, roots *x509.CertPool, certs []*x509.Certificate, key crypto.Signer, old *held, outcome Outcome) error {
	certs = leafFirst(certs, key)
	clockErr := o.acceptable(name, roots, certs, key, old)
	if clockErr != nil && !errors.Is(clockErr, errClock) {
		return fmt.Errorf("the EST server's answer: %w", clockErr)
	}
	next := o.nextPair(name)
	var files []fileData
	if old != nil && key == old.key {
		// The key stays (a key an earlier --rekey run staged is replaced).
		files = append(files, fileData{name + ".key", old.keyPEM, 0o600})
	}
	files = append(files, fileData{name + ".crt", encodeCerts(certs), 0o644})
	if err := o.writeDirect(filepath.Dir(next.crt), files...); err != nil {
		return err
	}
	if clockErr != nil {
		return clockErr
	}
	// The files as written must verify too.
	h, err := loadPair(next)
	if err == nil {
		err = o.acceptable(name, roots, append([]*x509.Certificate{h.cert}, h.chain...), h.key, old)
	}
	if err != nil {
		os.Remove(next.crt)
		return fmt.Errorf("the new pair as written: %w", err)
	}
	if o.Check != "" {
		if err := o.checkBroker(next.crt, next.key); err != nil {
			if old != nil {
				os.Remove(next.crt)
				return fmt.Errorf("%w; the old pair is kept", err)
			}
			// The token is spent: the pair the server issued is the only
			// one the device can have.
			o.Log.Warn("the new pair is installed although it could not log into the broker: there is no older pair to keep, and the token is spent", "url", o.Check, "reason", err.Error())
		}
	}
	return o.activate(name, nextDir, serial(h.cert), outcome)
}

func (o *Options) checkBroker(crt, key string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	rep, err := diagnose.Check(ctx, diagnose.Options{URL: o.Check, CAFile: o.CAFile, CertFile: crt, KeyFile: key, Timeout: 10 * time.Second})
	if err != nil {
		return fmt.Errorf("checking the new pair at %s: %w", o.Check, err)
	}
	if !rep.OK() {
		var b strings.Builder
		rep.WriteText(&b)
		return fmt.Errorf("the new pair cannot log into %s:\n%s", o.Check, strings.TrimSpace(b.String()))
	}
	o.Log.Info("the new pair logs into the broker", "url", o.Check)
	return nil
}

func (o *Options) runExec(name string) error {
	os.Remove(o.execMarker(name))
	syncDir(o.Dir)
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
