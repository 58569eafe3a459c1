package loadgen

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// IdleOptions shapes an idle run.
type IdleOptions struct {
	Conns    int
	Parallel int // connections being opened at a time; default 16
	// Timeout bounds each connection's TCP connect, TLS handshake, CONNECT
	// and CONNACK together; default 10 s.
	Timeout time.Duration
	// Sources are the local addresses the connections are dialled from,
	// in turn (SourceAddrs); none: the system's choice.
	Sources []netip.Addr
	// MaxFailures stops the opening once this many connections
	// failed (the broker is down or full: the rest would fail the same
	// way); default 100.
	MaxFailures int
	// Progress, when set, is called every ProgressEvery (default 5 s)
	// while the connections open.
	Progress      func(IdleResult)
	ProgressEvery time.Duration
	// Ready, when set, is called once, when every connection is open or
	// failed, before the hold.
	Ready func(IdleResult)
}

// IdleResult is what an idle run opened.
type IdleResult struct {
	Opened, Failed int
	// Reasons counts the failures by FailureReason.
	Reasons map[string]int
	// Elapsed is the time the opening took (so far, in Progress).
	Elapsed time.Duration
	// RSSBefore and RSSAfter are the generator's own resident memory
	// (bytes) before the first connection and once all were open, after a
	// garbage collection that returned what it could to the system; zero
	// where /proc/self/status is not readable.
	RSSBefore, RSSAfter int64
}

// RSSPerConn is the generator's own memory per open connection, in bytes.
func (r IdleResult) RSSPerConn() float64 {
	if r.Opened == 0 || r.RSSAfter == 0 {
		return 0
	}
	return float64(r.RSSAfter-r.RSSBefore) / float64(r.Opened)
}

// Failure reasons (FailureReason).
const (
	ReasonRefused = "refused" // nothing listens, or the backlog is full
	ReasonTimeout = "timeout" // TCP, TLS or CONNACK did not finish within the timeout
	ReasonTLS     = "tls"     // the handshake failed: alert, certificate
	ReasonNoPort  = "no port" // no local port left for this source address
	ReasonReset   = "closed"  // the broker closed or reset the connection
	ReasonMQTT    = "connack" // the broker refused the CONNECT
	ReasonOther   = "other"
)

// errConnack is a CONNACK with a refusal code.
var errConnack = errors.New("connect refused")

// FailureReason sorts a connection error into one of the Reason values.
func FailureReason(err error) string {
	var ne net.Error
	var alert tls.AlertError
	var rhe tls.RecordHeaderError
	var cve *tls.CertificateVerificationError
	switch {
	case errors.Is(err, errConnack):
		return ReasonMQTT
	case errors.Is(err, syscall.ECONNREFUSED):
		return ReasonRefused
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return ReasonNoPort
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return ReasonTimeout
	case errors.As(err, &alert), errors.As(err, &rhe), errors.As(err, &cve):
		return ReasonTLS
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.EPIPE):
		return ReasonReset
	}
	return ReasonOther
}

// dialIdle opens one connection that is to stay idle: TCP from src (when
// valid), TLS, CONNECT with the longest keepalive, CONNACK, all within
// timeout. It keeps no buffer of its own: what stays is the socket and
// crypto/tls's state.
func (t Target) dialIdle(ctx context.Context, src netip.Addr, id string, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	d := &net.Dialer{}
	if src.IsValid() {
		d.LocalAddr = &net.TCPAddr{IP: src.AsSlice()}
	}
	var c net.Conn
	var err error
	if t.TLS != nil {
		c, err = (&tls.Dialer{NetDialer: d, Config: t.TLS}).DialContext(ctx, "tcp", t.Addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", t.Addr)
	}
	if err != nil {
		return nil, err
	}
	dl, _ := ctx.Deadline()
	_ = c.SetDeadline(dl)
	// Keepalive 65535 s: the broker must not drop a connection the run
	// holds for minutes without PINGREQs.
	if _, err := c.Write(mqttwire.AppendConnect(nil, mqttwire.Connect{Version: 4, ClientID: id, Clean: true, Keepalive: 65535, Username: t.Username, Password: t.Password})); err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	var ack [4]byte // a 3.1.1 CONNACK is 4 bytes; read exactly that, buffer nothing
	if _, err := io.ReadFull(c, ack[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("connack: %w", err)
	}
	if ack[0]>>4 != mqttwire.CONNACK || ack[1] != 2 || ack[3] != 0 {
		c.Close()
		return nil, fmt.Errorf("%w (CONNACK % x)", errConnack, ack)
	}
	_ = c.SetDeadline(time.Time{})
	return c, nil
}

// IdleRun opens o.Conns connections (TLS and CONNECT), o.Parallel at a
// time, from o.Sources in turn, counting failures by reason; calls
// o.Ready and holds what opened until ctx ends. It is for measuring what
// an idle connection costs the broker. It returns when ctx ends (or
// before the hold, when ctx ended during the opening).
func IdleRun(ctx context.Context, t Target, o IdleOptions) IdleResult {
	if o.Parallel <= 0 {
		o.Parallel = 16
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxFailures <= 0 {
		o.MaxFailures = 100
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	var mu sync.Mutex
	res := IdleResult{Reasons: map[string]int{}, RSSBefore: ownRSS()}
	snapshot := func() IdleResult {
		mu.Lock()
		defer mu.Unlock()
		r := res
		r.Reasons = make(map[string]int, len(res.Reasons))
		for k, v := range res.Reasons {
			r.Reasons[k] = v
		}
		return r
	}
	conns := make([]net.Conn, o.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	start := time.Now()
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		tick := time.NewTicker(o.ProgressEvery)
		defer tick.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-tick.C:
				if o.Progress != nil {
					r := snapshot()
					r.Elapsed = time.Since(start)
					o.Progress(r)
				}
			}
		}
	}()
	stamp := time.Now().UnixNano()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.Parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.Conns {
					return
				}
				mu.Lock()
				stop := res.Failed >= o.MaxFailures
				mu.Unlock()
				if stop {
					return
				}
				var src netip.Addr
				if len(o.Sources) > 0 {
					src = o.Sources[i%len(o.Sources)]
				}
				c, err := t.dialIdle(ctx, src, fmt.Sprintf("idle-%d-%d", i, stamp), o.Timeout)
				mu.Lock()
				if err != nil {
					if ctx.Err() == nil {
						res.Failed++
						res.Reasons[FailureReason(err)]++
					}
				} else {
					conns[i] = c
					res.Opened++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(stopProgress)
	<-progressDone
	res.Elapsed = time.Since(start)
	if ctx.Err() != nil {
		return res
	}
	// What the handshakes left is garbage: collect it and give it back, so
	// that RSSAfter is what the open connections hold.
	runtime.GC()
	debug.FreeOSMemory()
	res.RSSAfter = ownRSS()
	if o.Ready != nil {
		o.Ready(res)
	}
	<-ctx.Done()
	return res
}

// Idle opens n connections (TLS and CONNECT), parallel at a time, calls
// ready with the number open, and holds them until ctx ends. Unlike
// IdleRun it stops at the first failure and returns it.
func Idle(ctx context.Context, t Target, n, parallel int, ready func(open int)) error {
	var failed error
	ictx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := IdleRun(ictx, t, IdleOptions{Conns: n, Parallel: parallel, MaxFailures: 1, Ready: func(r IdleResult) {
		if r.Failed > 0 {
			failed = fmt.Errorf("%d of %d connections failed (%v)", r.Failed, n, r.Reasons)
			cancel()
			return
		}
		ready(r.Opened)
	}})
	if failed != nil {
		return failed
	}
	if ctx.Err() != nil && r.Opened < n {
		return ctx.Err()
	}
	return nil
}
