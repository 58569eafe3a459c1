package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/enroll"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

// clock is a test clock shared by the EST server and the agent: real time
// moved by an offset, so that a certificate's lifetime passes without
// sleeping.
type clock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *clock) set(d time.Duration) {
	c.mu.Lock()
	c.off = d
	c.mu.Unlock()
}

// fixture is a pki directory, an EST server on it (in process, on the
// shared clock) and a device directory holding ca.crt.
type fixture struct {
	t     *testing.T
	pki   *pki.Dir
	est   string
	dev   string
	clock *clock
	log   *bytes.Buffer
	hs    interface{ Close() error }
}

// newFixture starts an EST server issuing days-long certificates that
// renews expired ones within window.
func newFixture(t *testing.T, days int, window time.Duration) *fixture {
	t.Helper()
	c := &clock{}
	d := &pki.Dir{Path: filepath.Join(t.TempDir(), "pki"), Now: c.Now}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost", "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(d.Path, pki.ServerCertFile), filepath.Join(d.Path, pki.ServerKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	srv := enroll.New(enroll.Options{Dir: d, Days: days, RenewAfterExpiry: window, Now: c.Now})
	ln, err := enroll.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := srv.HTTPServer(ln.Addr().String(), cert)
	go hs.ServeTLS(ln, "", "")
	t.Cleanup(func() { hs.Close() })
	dev := filepath.Join(t.TempDir(), "device")
	if err := os.Mkdir(dev, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, _ := os.ReadFile(filepath.Join(d.Path, pki.RootCertFile))
	os.WriteFile(filepath.Join(dev, CAFile), ca, 0o644)
	return &fixture{t: t, pki: d, est: "https://localhost:" + strings.Split(ln.Addr().String(), ":")[1], dev: dev, clock: c, log: &bytes.Buffer{}, hs: hs}
}

// token makes a token for name in a 0600 file of the device directory.
func (f *fixture) token(name string, force bool) string {
	f.t.Helper()
	toks, err := f.pki.CreateTokens(pki.TokenOptions{Names: []string{name}, Force: force})
	if err != nil {
		f.t.Fatal(err)
	}
	p := filepath.Join(f.dev, "token")
	if err := os.WriteFile(p, []byte(toks[0].Secret+"\n"), 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

func (f *fixture) opts(name string) Options {
	return Options{Dir: f.dev, Name: name, EST: f.est, Now: f.clock.Now, Log: slog.New(slog.NewTextHandler(f.log, nil))}
}

// enrol enrols name with a new token.
func (f *fixture) enrol(name string) *Status {
	f.t.Helper()
	o := f.opts(name)
	o.TokenFile = f.token(name, false)
	if out, err := Once(context.Background(), o); err != nil || out != Enrolled {
		f.t.Fatalf("enrol: %v %v\n%s", out, err, f.log)
	}
	return f.status(name)
}

func (f *fixture) status(name string) *Status {
	f.t.Helper()
	st, err := ReadStatus(f.dev, name, 0, f.clock.Now())
	if err != nil {
		f.t.Fatal(err)
	}
	return st
}

// workingPair reports whether NAME+suffix .crt and .key match and verify
// against ca.crt at the fixture's time.
func (f *fixture) workingPair(name, suffix string) error {
	o := Options{Dir: f.dev}
	h, err := loadPair(o.pairOf(name, suffix))
	if err != nil {
		return err
	}
	roots, err := readCA(filepath.Join(f.dev, CAFile))
	if err != nil {
		return err
	}
	return verifyLeaf(h.cert, h.chain, roots, name, h.key, f.clock.Now())
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm()
}

// TestEnrolThenRenewAtRenewPoint: a token enrols (key 0600, token file
// removed); nothing happens before the renew point; after it the agent
// re-enrols with its certificate and keeps the previous pair.
func TestEnrolThenRenewAtRenewPoint(t *testing.T) {
	for _, c := range []struct {
		name  string
		rekey bool
	}{{"same key", false}, {"rekey", true}} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			f := newFixture(t, 1, 0)
			st := f.enrol("dev-1")
			if m := mode(t, st.Key); m != 0o600 {
				t.Errorf("key mode %o", m)
			}
			if _, err := os.Stat(filepath.Join(f.dev, "token")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the spent token file is still there: %v", err)
			}
			if !st.VerifiesAgainstCA || st.Due {
				t.Fatalf("after enrolment: %+v", st)
			}
			oldKey, _ := os.ReadFile(st.Key)
			oldCrt, _ := os.ReadFile(st.Cert)
			o := f.opts("dev-1")
			o.Rekey = c.rekey
			// Just before the renew point (2/3 of 1 day and 1 minute): not due.
			f.clock.set(time.Until(st.RenewAt) - time.Minute)
			if out, err := Once(context.Background(), o); err != nil || out != NotDue {
				t.Fatalf("before the renew point: %v %v", out, err)
			}
			f.clock.set(time.Until(st.RenewAt) + time.Minute)
			out, err := Once(context.Background(), o)
			if err != nil || out != Renewed {
				t.Fatalf("after the renew point: %v %v\n%s", out, err, f.log)
			}
			nst := f.status("dev-1")
			if nst.Serial == st.Serial || nst.PrevSerial != st.Serial || !nst.VerifiesAgainstCA || nst.Due {
				t.Fatalf("after renewal: %+v (was %s)", nst, st.Serial)
			}
			newKey, _ := os.ReadFile(nst.Key)
			if bytes.Equal(newKey, oldKey) == c.rekey {
				t.Errorf("rekey %v: the key changed: %v", c.rekey, !bytes.Equal(newKey, oldKey))
			}
			prevKey, _ := os.ReadFile(filepath.Join(f.dev, "dev-1.prev.key"))
			prevCrt, _ := os.ReadFile(filepath.Join(f.dev, "dev-1.prev.crt"))
			if !bytes.Equal(prevKey, oldKey) || !bytes.Equal(prevCrt, oldCrt) {
				t.Error("the previous pair is not the old one")
			}
			if m := mode(t, filepath.Join(f.dev, "dev-1.prev.key")); m != 0o600 {
				t.Errorf("previous key mode %o", m)
			}
			if !strings.Contains(f.log.String(), "msg=renewed") {
				t.Errorf("no log line of the renewal:\n%s", f.log)
			}
			if strings.Contains(f.log.String(), "token=") {
				t.Errorf("the log names a token:\n%s", f.log)
			}
			// The server recorded the new certificate as the device's.
			idx, err := pki.LoadIndex(f.pki.Path)
			if err != nil {
				t.Fatal(err)
			}
			var e *pki.Entry
			for i := range idx.Certificates {
				if idx.Certificates[i].Cert == "clients/dev-1.crt" {
					e = &idx.Certificates[i]
				}
			}
			if e == nil || strings.TrimLeft(strings.ToUpper(strings.ReplaceAll(e.Serial, ":", "")), "0") != strings.TrimLeft(nst.Serial, "0") {
				t.Errorf("the index's dev-1 is not the renewed certificate: %+v (want %s)", e, nst.Serial)
			}
		})
	}
}

// TestRefusals: what the agent cannot do is refused in plain words, with
// nothing written.
func TestRefusals(t *testing.T) {
	f := newFixture(t, 1, 0)
	st := f.enrol("dev-1")
	due := time.Until(st.RenewAt) + time.Minute
	for _, c := range []struct {
		name  string
		setup func(o *Options)
		kind  error
		text  string
	}{
		{"no token, no certificate", func(o *Options) { o.Name, o.Dir = "dev-2", f.emptyDir(t) }, ErrNeedToken, "enrols with the token the factory made"},
		{"a second identity", func(o *Options) { o.Name, o.TokenFile = "dev-2", f.token("dev-2", false) }, nil, `holds the pair of "dev-1"`},
		{"a key without its certificate", func(o *Options) {
			o.Name, o.Dir, o.TokenFile = "dev-2", f.emptyDir(t), f.token("dev-2", true)
			os.WriteFile(filepath.Join(o.Dir, "dev-2.key"), []byte("the key of an application\n"), 0o600)
			t.Cleanup(func() {
				if b, _ := os.ReadFile(filepath.Join(o.Dir, "dev-2.key")); string(b) != "the key of an application\n" || len(snapshot(t, o.Dir)) != 2 {
					t.Errorf("the key was replaced, or files written: %q %v", b, snapshot(t, o.Dir))
				}
			})
		}, nil, "without its certificate"},
		{"a wrong token", func(o *Options) {
			o.Name, o.Dir = "dev-2", f.emptyDir(t)
			o.TokenFile = filepath.Join(f.dev, "wrong")
			os.WriteFile(o.TokenFile, []byte("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n"), 0o600)
		}, ErrRefused, "wrong, used, revoked or expired"},
		{"another CA", func(o *Options) {
			other := &pki.Dir{Path: filepath.Join(t.TempDir(), "other")}
			other.Init(pki.InitOptions{Hosts: []string{"localhost"}})
			o.CAFile = filepath.Join(other.Path, pki.RootCertFile)
			f.clock.set(due)
		}, ErrUntrusted, "does not verify"},
		{"revoked", func(o *Options) {
			if _, _, err := f.pki.Revoke(pki.RevokeOptions{Name: "dev-1"}); err != nil {
				t.Fatal(err)
			}
			f.clock.set(due)
		}, ErrRevoked, "revoked"},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			before := snapshot(t, f.dev)
			o := f.opts("dev-1")
			c.setup(&o)
			out, err := Once(context.Background(), o)
			if err == nil || (c.kind != nil && !errors.Is(err, c.kind)) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("%v %v, want %v %q", out, err, c.kind, c.text)
			}
			after := snapshot(t, f.dev)
			for _, n := range []string{"wrong", "token"} {
				delete(after, n)
				delete(before, n)
			}
			if len(before) != len(after) {
				t.Errorf("files changed: %v -> %v", before, after)
			}
			for k, v := range before {
				if after[k] != v {
					t.Errorf("%s changed", k)
				}
			}
		})
	}
	// Run ends on a refusal instead of retrying for ever.
	o := f.opts("dev-1")
	o.Sleep = func(context.Context, time.Duration) error { t.Fatal("Run retried a refusal"); return nil }
	if err := Run(context.Background(), o); !errors.Is(err, ErrRefused) {
		t.Fatalf("Run on a revoked certificate: %v", err)
	}
	// With a new token, the revoked device enrols again.
	o = f.opts("dev-1")
	o.TokenFile = f.token("dev-1", false)
	if out, err := Once(context.Background(), o); err != nil || out != Enrolled {
		t.Fatalf("a revoked device with a new token: %v %v", out, err)
	}
	if err := f.workingPair("dev-1", ""); err != nil {
		t.Fatal(err)
	}
}

// TestRunWaitsForTheRenewPoint: after a pass, Run sleeps until the renew
// point, at most MaxWait at a time.
func TestRunWaitsForTheRenewPoint(t *testing.T) {
	f := newFixture(t, 1, 0)
	st := f.enrol("dev-1")
	for _, c := range []struct {
		name string
		left time.Duration // before the renew point
		want time.Duration
	}{
		{"far", 10 * time.Hour, MaxWait},
		{"near", 10 * time.Minute, 10 * time.Minute},
		{"very near", time.Second, time.Minute},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			f.clock.set(time.Until(st.RenewAt) - c.left)
			o := f.opts("dev-1")
			ctx, cancel := context.WithCancel(context.Background())
			var got time.Duration
			o.Sleep = func(ctx context.Context, d time.Duration) error { got = d; cancel(); return ctx.Err() }
			if err := Run(ctx, o); err != nil {
				t.Fatal(err)
			}
			if got < c.want-5*time.Second || got > c.want {
				t.Errorf("waited %v, want %v", got, c.want)
			}
		})
	}
}

// TestHalfPair: a certificate without its key is reported, never
// replaced by an enrolment.
func TestHalfPair(t *testing.T) {
	f := newFixture(t, 1, 0)
	st := f.enrol("dev-1")
	os.Remove(st.Key)
	o := f.opts("dev-1")
	o.TokenFile = f.token("dev-1", true)
	if out, err := Once(context.Background(), o); err == nil || !strings.Contains(err.Error(), "not its key") {
		t.Fatalf("%v %v", out, err)
	}
	if f.replaced(st) {
		t.Error("the certificate was replaced")
	}
}

// replaced reports whether the current certificate is no longer st's.
func (f *fixture) replaced(st *Status) bool {
	b, _ := os.ReadFile(st.Cert)
	certs, err := ParseCerts(b)
	return err != nil || serial(certs[0]) != st.Serial
}

// TestExecFailure: a failing --exec is logged and returned (ErrExec),
// the new pair in place.
func TestExecFailure(t *testing.T) {
	f := newFixture(t, 1, 0)
	o := f.opts("dev-1")
	o.TokenFile = f.token("dev-1", false)
	o.Exec = "echo reloading; exit 7"
	var out bytes.Buffer
	o.ExecOut = &out
	got, err := Once(context.Background(), o)
	if got != Enrolled || !errors.Is(err, ErrExec) || !strings.Contains(err.Error(), "exit status 7") {
		t.Fatalf("%v %v", got, err)
	}
	if out.String() != "reloading\n" || !strings.Contains(f.log.String(), "the command after the renewal failed") {
		t.Errorf("output %q, log:\n%s", out.String(), f.log)
	}
	if err := f.workingPair("dev-1", ""); err != nil {
		t.Fatal(err)
	}
}

// emptyDir is a device directory holding only ca.crt.
func (f *fixture) emptyDir(t *testing.T) string {
	d := filepath.Join(t.TempDir(), "device")
	os.Mkdir(d, 0o700)
	ca, _ := os.ReadFile(filepath.Join(f.dev, CAFile))
	os.WriteFile(filepath.Join(d, CAFile), ca, 0o644)
	return d
}

// snapshot maps the names of dir's files to their contents.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() == ".device.lock" {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		out[e.Name()] = string(b)
	}
	return out
}

// TestAfterExpiry: a device offline past its certificate's end renews
// within the server's --renew-after-expiry window; outside it, it is told
// to get a new token, and enrols with one.
func TestAfterExpiry(t *testing.T) {
	for _, c := range []struct {
		name    string
		window  time.Duration
		offline time.Duration // past the end
		token   bool
		out     Outcome
		text    string
	}{
		{"within the window", 30 * 24 * time.Hour, 10 * 24 * time.Hour, false, Renewed, ""},
		{"outside the window", 30 * 24 * time.Hour, 40 * 24 * time.Hour, false, NotDue, "no longer renews it"},
		{"no window", 0, time.Hour, false, NotDue, "mqttctl enroll token create dev-1 --force"},
		{"outside the window with a new token", 30 * 24 * time.Hour, 40 * 24 * time.Hour, true, Enrolled, ""},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			f := newFixture(t, 1, c.window)
			st := f.enrol("dev-1")
			f.clock.set(time.Until(st.NotAfter) + c.offline)
			o := f.opts("dev-1")
			if c.token {
				o.TokenFile = f.token("dev-1", true)
			}
			out, err := Once(context.Background(), o)
			if c.text != "" {
				if !errors.Is(err, ErrNeedToken) || !strings.Contains(err.Error(), c.text) || !strings.Contains(err.Error(), "--renew-after-expiry") {
					t.Fatalf("%v %v, want ErrNeedToken %q", out, err, c.text)
				}
				if f.status("dev-1").Serial != st.Serial {
					t.Error("the pair changed")
				}
				return
			}
			if err != nil || out != c.out {
				t.Fatalf("%v %v, want %v\n%s", out, err, c.out, f.log)
			}
			if err := f.workingPair("dev-1", ""); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBackoff: while the EST server is unreachable the agent waits longer
// and longer, with jitter, up to MaxBackoff, and logs each failure.
func TestBackoff(t *testing.T) {
	for _, c := range []struct {
		n    int
		frac float64
		want time.Duration
	}{
		{0, 0, MinBackoff / 2},
		{0, 0.5, MinBackoff * 3 / 4},
		{1, 0, MinBackoff},
		{3, 0.999999, 8 * MinBackoff},
		{20, 0, MaxBackoff / 2},
		{1000, 0.5, MaxBackoff * 3 / 4},
	} {
		got := Backoff(c.n, c.frac)
		if got < c.want-time.Millisecond || got > c.want+time.Millisecond {
			t.Errorf("Backoff(%d, %v) = %v, want %v", c.n, c.frac, got, c.want)
		}
	}
	f := newFixture(t, 1, 0)
	st := f.enrol("dev-1")
	f.clock.set(time.Until(st.RenewAt) + time.Minute)
	f.hs.Close()
	o := f.opts("dev-1")
	o.Jitter = func() float64 { return 0.5 }
	ctx, cancel := context.WithCancel(context.Background())
	var waits []time.Duration
	o.Sleep = func(ctx context.Context, d time.Duration) error {
		waits = append(waits, d)
		if len(waits) == 12 {
			cancel()
			return ctx.Err()
		}
		return nil
	}
	if err := Run(ctx, o); err != nil {
		t.Fatal(err)
	}
	for i, w := range waits {
		if w != Backoff(i, 0.5) || (i > 0 && w < waits[i-1]) || w > MaxBackoff {
			t.Errorf("wait %d: %v (waits %v)", i, w, waits)
		}
	}
	if waits[len(waits)-1] != MaxBackoff*3/4 {
		t.Errorf("the waits do not reach the bound: %v", waits)
	}
	if n := strings.Count(f.log.String(), "renewal failed; retrying"); n != 12 {
		t.Errorf("%d log lines of failures, want 12:\n%s", n, f.log)
	}
	if f.status("dev-1").Serial != st.Serial {
		t.Error("the pair changed")
	}
}

// TestCrashAtEveryWriteStep stops an enrolment and a renewal, as kill -9
// would, before each step that changes the disk: at every stop the current
// pair, NAME.crt and NAME.key as an application reads them, verifies and
// matches (after an enrolment started, none or the new one), and the next
// run, with the same command line, leaves a working current pair, renewed
// (or enrolled), runs --exec and leaves nothing behind. A stop before the
// answer was written is a lost answer: the next run asks again for the
// staged key, and the server answers the same certificate (finding 9).
func TestCrashAtEveryWriteStep(t *testing.T) {
	// plain: NAME.crt and NAME.key copied into the directory by hand.
	type variant struct{ enrol, rekey, renewedBefore, plain bool }
	for _, c := range []variant{{true, false, false, false}, {false, false, false, false}, {false, false, true, false}, {false, true, false, false}, {false, true, true, false}, {false, true, false, true}} {
		// setup enrols (and renews once: a previous pair exists, as on a
		// device that renewed before) and moves the clock past the renew
		// point; for an enrolment, it makes a token.
		setup := func(t *testing.T) (*fixture, *Status, Options) {
			f := newFixture(t, 1, 0)
			if c.enrol {
				o := f.opts("dev-1")
				o.TokenFile = f.token("dev-1", false)
				o.Exec = "echo ran >> " + filepath.Join(t.TempDir(), "exec")
				return f, nil, o
			}
			st := f.enrol("dev-1")
			if c.renewedBefore {
				f.renewAgain(t, st)
				st = f.status("dev-1")
			}
			if c.plain {
				f.plainCopy(t, "dev-1")
			}
			f.clock.set(time.Until(st.RenewAt) + time.Minute)
			o := f.opts("dev-1")
			o.Rekey = c.rekey
			o.Exec = "echo ran >> " + filepath.Join(t.TempDir(), "exec")
			return f, st, o
		}
		want := Renewed
		if c.enrol {
			want = Enrolled
		}
		// Count the steps of one run.
		var steps []string
		{
			_, _, o := setup(t)
			o.Crash = func(step string) bool { steps = append(steps, step); return false }
			if out, err := Once(context.Background(), o); err != nil || out != want {
				t.Fatalf("%v %v", out, err)
			}
		}
		if len(steps) < 6 {
			t.Fatalf("only %d steps: %v", len(steps), steps)
		}
		for i, step := range steps {
			verb, path, _ := strings.Cut(step, " ")
			t.Run(fmt.Sprintf("%+v/%02d_%s_%s", c, i, strings.ReplaceAll(verb, " ", "_"), filepath.Base(path)), func(t *testing.T) {
				f, st, o := setup(t)
				n := 0
				o.Crash = func(string) bool { n++; return n > i }
				if _, err := Once(context.Background(), o); !errors.Is(err, fsx.ErrCrashed) {
					t.Fatalf("crash at %d (%s): %v", i, step, err)
				}
				// The current pair, as an application reads it.
				if err := f.workingPair("dev-1", ""); err != nil && !(c.enrol && errors.Is(err, fs.ErrNotExist)) {
					t.Fatalf("crash at %s: the current pair does not work: %v", step, err)
				}
				o.Crash = nil
				out, err := Once(context.Background(), o)
				if err != nil || out != want {
					t.Fatalf("the run after a crash at %s: %v %v, want %v\n%s", step, out, err, want, f.log)
				}
				nst := f.status("dev-1")
				if (st != nil && nst.Serial == st.Serial) || nst.Due || !nst.VerifiesAgainstCA || nst.Pending {
					t.Fatalf("after a crash at %s and a run (%v): %+v", step, out, nst)
				}
				ran, _ := os.ReadFile(strings.TrimPrefix(o.Exec, "echo ran >> "))
				if string(ran) != "ran\n" {
					t.Errorf("--exec ran %q times after a crash at %s", ran, step)
				}
				if c.enrol {
					if _, err := os.Stat(o.TokenFile); !errors.Is(err, fs.ErrNotExist) {
						t.Errorf("the spent token file is still there: %v", err)
					}
				} else if err := f.workingPair("dev-1", ".prev"); err != nil || f.replaced(&Status{Cert: filepath.Join(f.dev, "dev-1.prev.crt"), Serial: st.Serial}) {
					t.Errorf("the previous pair is not the one replaced: %v", err)
				}
				if m := mode(t, nst.Key); m != 0o600 {
					t.Errorf("key mode %o", m)
				}
				for name := range snapshot(t, f.dev) {
					if strings.Contains(name, ".new.") || strings.Contains(name, ".tmp") || strings.Contains(name, ".link") || strings.Contains(name, "exec-pending") {
						t.Errorf("left behind: %s", name)
					}
				}
				pairs, _ := os.ReadDir(filepath.Join(f.dev, "dev-1.pairs"))
				if max := 2 - map[bool]int{true: 1}[c.enrol]; len(pairs) != max {
					t.Errorf("%d pair directories, want %d", len(pairs), max)
				}
			})
		}
	}
}

// plainCopy replaces the device's pair by plain files, as copied by hand
// from a pki directory.
func (f *fixture) plainCopy(t *testing.T, name string) {
	t.Helper()
	crt, _ := os.ReadFile(filepath.Join(f.dev, name+".crt"))
	key, _ := os.ReadFile(filepath.Join(f.dev, name+".key"))
	entries, _ := os.ReadDir(f.dev)
	for _, e := range entries {
		if e.Name() != CAFile {
			os.RemoveAll(filepath.Join(f.dev, e.Name()))
		}
	}
	os.WriteFile(filepath.Join(f.dev, name+".crt"), crt, 0o644)
	os.WriteFile(filepath.Join(f.dev, name+".key"), key, 0o600)
}

// renewAgain renews once (the clock past the renew point of st) and sets
// the clock back.
func (f *fixture) renewAgain(t *testing.T, st *Status) {
	t.Helper()
	f.clock.set(time.Until(st.RenewAt) + time.Minute)
	if out, err := Once(context.Background(), f.opts("dev-1")); err != nil || out != Renewed {
		t.Fatalf("renew: %v %v", out, err)
	}
}

// TestFirstEnrolmentKeepsWhatTheServerIssued: once the server has spent
// the token on a certificate for the device's key, the certificate is
// installed (a --check that fails, a device clock a few minutes behind) or
// kept until it can be (a clock far behind), never thrown away.
func TestFirstEnrolmentKeepsWhatTheServerIssued(t *testing.T) {
	for _, c := range []struct {
		name   string
		check  bool
		behind time.Duration // the device's clock behind the server's
		first  string        // the first run fails with this ("" succeeds)
		log    string
	}{
		{"check fails", true, 0, "", "there is no older pair to keep"},
		{"clock 5 minutes behind", false, 5 * time.Minute, "", "the clock is behind"},
		{"clock an hour behind", false, time.Hour, "set the device's clock (NTP) and run again", ""},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			f := newFixture(t, 1, 0)
			f.clock.set(c.behind) // the server's clock ahead
			o := f.opts("dev-1")
			o.Now = time.Now
			o.TokenFile = f.token("dev-1", false)
			if c.check {
				o.Check = "mqtts://127.0.0.1:" + strconv.Itoa(testutil.FreePort(t))
			}
			out, err := Once(context.Background(), o)
			if c.first != "" {
				if err == nil || !strings.Contains(err.Error(), c.first) {
					t.Fatalf("%v %v, want %q", out, err, c.first)
				}
				if _, err := os.Stat(filepath.Join(f.dev, "dev-1.pairs", "next", "dev-1.crt")); err != nil {
					t.Fatalf("the issued certificate is not kept: %v", err)
				}
				// The clock set, the next run installs it (the token is spent).
				o.Now = f.clock.Now
				out, err = Once(context.Background(), o)
			}
			if err != nil || out != Enrolled {
				t.Fatalf("%v %v\n%s", out, err, f.log)
			}
			if !strings.Contains(f.log.String(), c.log) || strings.Contains(f.log.String(), "old pair is kept") {
				t.Errorf("log:\n%s", f.log)
			}
			if err := f.workingPair("dev-1", ""); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(o.TokenFile); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the spent token file is still there: %v", err)
			}
		})
	}
}

// TestMissingStagedFile: a file of an interrupted run removed by hand (a
// careless rm) never leaves the current pair mismatched, and the last copy
// of a staged key is never removed: the next run renews again with it.
// (With the staged key gone, the server, which recorded the new
// certificate, refuses the old one as replaced; the old pair stays.) A journal of the older agent is refused in
// plain words, nothing changed.
func TestMissingStagedFile(t *testing.T) {
	for _, c := range []struct {
		name, remove string
		keyKept      bool
	}{
		{"certificate removed", "dev-1.crt", true},
		{"key removed", "dev-1.key", false},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			f := newFixture(t, 1, 0)
			st := f.enrol("dev-1")
			f.clock.set(time.Until(st.RenewAt) + time.Minute)
			o := f.opts("dev-1")
			o.Rekey = true
			next := filepath.Join(f.dev, "dev-1.pairs", "next")
			o.Crash = func(step string) bool { return step == "rename "+next }
			if _, err := Once(context.Background(), o); !errors.Is(err, fsx.ErrCrashed) {
				t.Fatal(err)
			}
			staged, _ := os.ReadFile(filepath.Join(next, "dev-1.key"))
			os.Remove(filepath.Join(next, c.remove))
			o.Crash = func(step string) bool {
				// The staged key is used again, not replaced.
				if got, _ := os.ReadFile(filepath.Join(next, "dev-1.key")); c.keyKept && strings.HasPrefix(step, "write ") && !bytes.Equal(got, staged) {
					t.Errorf("the staged key was replaced before %s", step)
				}
				return false
			}
			out, err := Once(context.Background(), o)
			if err := f.workingPair("dev-1", ""); err != nil {
				t.Fatal(err)
			}
			if !c.keyKept {
				// The only key of the certificate the server now holds
				// as the device's is gone: the current pair, still
				// working, is refused as replaced, and stays in place.
				if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "replaced") || f.replaced(st) {
					t.Fatalf("%v %v", out, err)
				}
				return
			}
			if err != nil || out != Renewed {
				t.Fatalf("%v %v\n%s", out, err, f.log)
			}
			key, _ := os.ReadFile(filepath.Join(f.dev, "dev-1.key"))
			if bytes.Equal(key, staged) != c.keyKept {
				t.Errorf("the staged key installed: %v, want %v", bytes.Equal(key, staged), c.keyKept)
			}
		})
	}
	f := newFixture(t, 1, 0)
	f.enrol("dev-1")
	os.WriteFile(filepath.Join(f.dev, JournalFile), []byte(`{"version":1,"ops":[]}`), 0o600)
	before := snapshot(t, f.dev)
	if _, err := Once(context.Background(), f.opts("dev-1")); err == nil || !strings.Contains(err.Error(), "older mqttctl agent") {
		t.Fatalf("a journal of the older agent: %v", err)
	}
	if after := snapshot(t, f.dev); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("files changed")
	}
}

// TestPermissions: a device directory others can write is refused,
// nothing written; a key or token file others can read is warned about,
// and a key copied in at 0644 is 0600 once in the agent's layout.
func TestPermissions(t *testing.T) {
	f := newFixture(t, 1, 0)
	f.enrol("dev-1")
	f.plainCopy(t, "dev-1")
	os.Chmod(filepath.Join(f.dev, "dev-1.key"), 0o644)
	os.Chmod(f.dev, 0o777)
	before := snapshot(t, f.dev)
	if _, err := Once(context.Background(), f.opts("dev-1")); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("a 0777 device directory: %v", err)
	}
	if after := snapshot(t, f.dev); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Error("files changed")
	}
	os.Chmod(f.dev, 0o700)
	o := f.opts("dev-1")
	o.TokenFile = filepath.Join(f.dev, "token")
	os.WriteFile(o.TokenFile, []byte("x\n"), 0o644)
	os.Chmod(o.TokenFile, 0o644)
	if out, err := Once(context.Background(), o); err != nil || out != NotDue {
		t.Fatalf("%v %v", out, err)
	}
	for _, w := range []string{"dev-1.key mode=0644", "token mode=0644"} {
		if !strings.Contains(f.log.String(), w) {
			t.Errorf("no warning %q:\n%s", w, f.log)
		}
	}
	if m := mode(t, filepath.Join(f.dev, "dev-1.key")); m != 0o600 {
		t.Errorf("the key is %04o after the move into the layout", m)
	}
}

// TestRekeyThenNot: a key staged by a --rekey run that stopped before its
// answer does not stop a later run without --rekey (which keeps the key).
func TestRekeyThenNot(t *testing.T) {
	f := newFixture(t, 1, 0)
	st := f.enrol("dev-1")
	f.clock.set(time.Until(st.RenewAt) + time.Minute)
	o := f.opts("dev-1")
	o.Rekey = true
	o.EST = "https://localhost:" + strconv.Itoa(testutil.FreePort(t)) // nobody there
	if _, err := Once(context.Background(), o); !errors.Is(err, ErrUnreachable) {
		t.Fatal(err)
	}
	oldKey, _ := os.ReadFile(st.Key)
	o = f.opts("dev-1")
	if out, err := Once(context.Background(), o); err != nil || out != Renewed {
		t.Fatalf("%v %v\n%s", out, err, f.log)
	}
	if err := f.workingPair("dev-1", ""); err != nil {
		t.Fatal(err)
	}
	if key, _ := os.ReadFile(st.Key); !bytes.Equal(key, oldKey) {
		t.Error("the key changed without --rekey")
	}
}

// TestEnrolAgainAfterALostAnswer: finding 9. An enrolment whose answer
// the agent did not keep (stopped before the certificate was written: the
// same as a lost response) is asked again with the same token for the key
// kept in NAME.pairs/next/, and the EST server answers the same
// certificate: the device enrols (before: 401, the token used).
func TestEnrolAgainAfterALostAnswer(t *testing.T) {
	f := newFixture(t, 1, 0)
	o := f.opts("dev-1")
	o.TokenFile = f.token("dev-1", false)
	o.Crash = func(step string) bool {
		return strings.HasPrefix(step, "write ") && strings.HasSuffix(step, "dev-1.crt")
	}
	if _, err := Once(context.Background(), o); !errors.Is(err, fsx.ErrCrashed) {
		t.Fatalf("the first run: %v", err)
	}
	o.Crash = nil
	if out, err := Once(context.Background(), o); err != nil || out != Enrolled {
		t.Fatalf("the run after the lost answer: %v %v\n%s", out, err, f.log)
	}
	if _, err := os.Stat(filepath.Join(f.dev, "dev-1.pairs", "next")); err == nil {
		t.Error("dev-1.pairs/next left after the enrolment")
	}
	if err := f.workingPair("dev-1", ""); err != nil {
		t.Fatal(err)
	}
}
