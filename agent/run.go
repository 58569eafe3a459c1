package agent

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"time"
)

// Backoff while the EST server is unreachable: from MinBackoff, doubled at
// each failure up to MaxBackoff, each wait drawn from [d/2, d) (jitter, so
// that a fleet that lost its server does not come back at once).
const (
	MinBackoff = 10 * time.Second
	MaxBackoff = time.Hour
	// MaxWait bounds one wait for the renew point: the agent looks again
	// at least this often (a clock changed, a certificate replaced by
	// hand).
	MaxWait = time.Hour
)

// Backoff is the wait before retry n (0 first), given a random fraction
// in [0,1).
func Backoff(n int, frac float64) time.Duration {
	d := MinBackoff
	for i := 0; i < n && d < MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, MaxBackoff)
	return d/2 + time.Duration(frac*float64(d/2))
}

// Run keeps the certificate current until ctx ends: Once, then a wait for
// the renew point (at most MaxWait), or, while the server is unreachable,
// a growing wait with jitter (Backoff). A refusal (revoked, a token
// needed) ends it with the error.
func Run(ctx context.Context, o Options) error {
	o.defaults()
	jitter := o.Jitter
	if jitter == nil {
		jitter = rand.Float64
	}
	failures := 0
	for {
		out, err := Once(ctx, o)
		var wait time.Duration
		switch {
		case err == nil || errors.Is(err, ErrExec):
			if err != nil {
				o.Log.Error("renewed, but --exec failed", "error", err.Error())
			}
			failures = 0
			st, serr := ReadStatus(o.Dir, o.Name, o.RenewAt, o.Now())
			if serr != nil {
				return serr
			}
			wait = min(max(st.RenewAt.Sub(o.Now()), time.Minute), MaxWait)
			if out == NotDue {
				o.Log.Debug("not due", "renews_at", st.RenewAt.UTC().Format(time.RFC3339))
			}
		case errors.Is(err, ErrUnreachable):
			wait = Backoff(failures, jitter())
			failures++
			o.Log.Warn("renewal failed; retrying", "attempt", failures, "in", wait.Round(time.Second).String(), "error", err.Error())
		default:
			return err
		}
		if err := o.Sleep(ctx, wait); err != nil {
			return nil
		}
	}
}

// Status is what a device directory holds.
type Status struct {
	Name, Cert, Key   string
	Serial            string
	Subject           string
	NotBefore         time.Time
	NotAfter          time.Time
	RenewAt           time.Time
	Due, Expired      bool
	PrevSerial        string
	PrevNotAfter      time.Time
	Pending           bool // a pair issued to an interrupted run, or its --exec, awaits the next run
	CAFile            string
	VerifiesAgainstCA bool
	VerifyError       string
}

// ReadStatus reads the pair of name (or of the one pair) in dir, without
// changing anything.
func ReadStatus(dir, name string, renewAt float64, now time.Time) (*Status, error) {
	if renewAt == 0 {
		renewAt = DefaultRenewAt
	}
	if name == "" {
		var err error
		if name, err = FindName(dir); err != nil {
			return nil, err
		}
	}
	o := Options{Dir: dir}
	cur := o.pairOf(name, "")
	h, err := loadPair(cur)
	if err != nil {
		return nil, err
	}
	st := &Status{Name: name, Cert: cur.crt, Key: cur.key, Serial: serial(h.cert), Subject: h.cert.Subject.String(),
		NotBefore: h.cert.NotBefore, NotAfter: h.cert.NotAfter, RenewAt: RenewPoint(h.cert, renewAt), CAFile: filepath.Join(dir, CAFile)}
	st.Due = !now.Before(st.RenewAt)
	st.Expired = !now.Before(st.NotAfter)
	if p, err := loadPair(o.pairOf(name, ".prev")); err == nil {
		st.PrevSerial, st.PrevNotAfter = serial(p.cert), p.cert.NotAfter
	}
	st.Pending = isStaged(&o, name)
	if roots, err := readCA(st.CAFile); err != nil {
		st.VerifyError = err.Error()
	} else if err := verifyLeaf(h.cert, h.chain, roots, name, h.key, now); err != nil {
		st.VerifyError = err.Error()
	} else {
		st.VerifiesAgainstCA = true
	}
	return st, nil
}

// Describe is the status in words, one fact a line.
func (s *Status) Describe(now time.Time) string {
	f := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	out := fmt.Sprintf("device:     %s\ncertificate: %s (serial %s)\nvalid:      %s to %s\n", s.Name, s.Cert, s.Serial, f(s.NotBefore), f(s.NotAfter))
	switch {
	case s.Expired:
		out += fmt.Sprintf("renews:     now: it ended %s ago (the EST server renews it only within its --renew-after-expiry window)\n", now.Sub(s.NotAfter).Round(time.Second))
	case s.Due:
		out += fmt.Sprintf("renews:     now: the renew point %s has passed\n", f(s.RenewAt))
	default:
		out += fmt.Sprintf("renews:     at %s (in %s)\n", f(s.RenewAt), s.RenewAt.Sub(now).Round(time.Second))
	}
	if s.VerifiesAgainstCA {
		out += fmt.Sprintf("checks:     verifies against %s, holds its key\n", s.CAFile)
	} else {
		out += fmt.Sprintf("checks:     FAILS: %s\n", s.VerifyError)
	}
	if s.PrevSerial != "" {
		out += fmt.Sprintf("previous:   serial %s, until %s\n", s.PrevSerial, f(s.PrevNotAfter))
	}
	if s.Pending {
		out += "pending:    an interrupted run was given a new pair: the next run installs it (and runs --exec)\n"
	}
	return out
}
