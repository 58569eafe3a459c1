// Package loadgen drives an MQTT broker for benchmarks: full TLS+CONNECT
// handshakes per second, and messages per second from several publishers to
// one subscriber. Its clients speak just enough MQTT to stay out of the
// measurement: no per-message goroutines, buffered writes, a window of
// unacknowledged QoS 1 messages per publisher.
package loadgen

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// Target is the broker to drive.
type Target struct {
	Addr     string
	TLS      *tls.Config // nil: plain TCP
	Username *string
	Password *string
}

type conn struct {
	c net.Conn
	r *bufio.Reader
	w *bufio.Writer
}

func (t Target) dial(ctx context.Context, id string) (*conn, error) {
	d := &net.Dialer{Timeout: 10 * time.Second}
	var c net.Conn
	var err error
	if t.TLS != nil {
		td := &tls.Dialer{NetDialer: d, Config: t.TLS}
		c, err = td.DialContext(ctx, "tcp", t.Addr)
	} else {
		c, err = d.DialContext(ctx, "tcp", t.Addr)
	}
	if err != nil {
		return nil, err
	}
	cn := &conn{c: c, r: bufio.NewReaderSize(c, 64<<10), w: bufio.NewWriterSize(c, 64<<10)}
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	cn.w.Write(mqttwire.AppendConnect(nil, mqttwire.Connect{Version: 4, ClientID: id, Clean: true, Username: t.Username, Password: t.Password}))
	if err := cn.w.Flush(); err != nil {
		c.Close()
		return nil, err
	}
	head, body, err := mqttwire.ReadPacket(cn.r, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if head>>4 != mqttwire.CONNACK || len(body) < 2 || body[1] != 0 {
		c.Close()
		return nil, fmt.Errorf("connect refused (CONNACK %v)", body)
	}
	_ = c.SetDeadline(time.Time{})
	return cn, nil
}

func (c *conn) close() {
	c.w.Write([]byte{mqttwire.DISCONNECT << 4, 0})
	c.w.Flush()
	c.c.Close()
}

// HandshakeResult counts completed TCP+TLS+CONNECT+CONNACK+DISCONNECT cycles.
type HandshakeResult struct {
	Count, Errors int64
	// Resumed counts the handshakes that resumed a TLS session (Resume).
	Resumed    int64
	Duration   time.Duration
	FirstError error
}

// PerSecond is the rate of completed handshakes.
func (r HandshakeResult) PerSecond() float64 { return float64(r.Count) / r.Duration.Seconds() }

// Handshakes opens fresh connections from workers goroutines for d: full
// TLS handshakes, or with resume TLS session resumption (each worker keeps
// the tickets the broker sent it, as a device that reconnects does).
func Handshakes(ctx context.Context, t Target, workers int, d time.Duration, resume bool) HandshakeResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	end, _ := ctx.Deadline()
	var count, resumed, errs atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wt := t
		if t.TLS != nil {
			wt.TLS = t.TLS.Clone()
			wt.TLS.ClientSessionCache = nil
			if resume {
				wt.TLS.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				c, err := wt.dial(ctx, fmt.Sprintf("hs-%d-%d", w, i))
				if err != nil {
					// A dial cut by the end of the run is not an error (the
					// socket deadline can fire just before ctx reports it).
					if ctx.Err() == nil && time.Until(end) > 10*time.Millisecond {
						errs.Add(1)
						first.CompareAndSwap(nil, err)
					}
					continue
				}
				if tc, ok := c.c.(*tls.Conn); ok && tc.ConnectionState().DidResume {
					resumed.Add(1)
				}
				c.close()
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	r := HandshakeResult{Count: count.Load(), Resumed: resumed.Load(), Errors: errs.Load(), Duration: time.Since(start)}
	if e, ok := first.Load().(error); ok {
		r.FirstError = e
	}
	return r
}

// Handshake connects once (TCP, TLS, CONNECT, CONNACK) and disconnects.
// With t.TLS.ClientSessionCache set it resumes a session when it can, and
// says whether it did.
func Handshake(ctx context.Context, t Target, id string) (resumed bool, err error) {
	c, err := t.dial(ctx, id)
	if err != nil {
		return false, err
	}
	if tc, ok := c.c.(*tls.Conn); ok {
		resumed = tc.ConnectionState().DidResume
	}
	c.close()
	return resumed, nil
}

// PubSubOptions shapes a publish/subscribe run.
type PubSubOptions struct {
	Publishers  int
	Subscribers int  // each subscribes to every publisher's topic; default 1
	QoS         byte // 0 or 1
	Size        int  // payload bytes
	Duration    time.Duration
	Warmup      time.Duration
	Window      int // unacknowledged QoS 1 messages per publisher
	// AckEvery, when set, makes subscribers send their PUBACKs in batches
	// at this interval while they keep reading: a slow acknowledger.
	AckEvery time.Duration
}

// PubSubResult counts what the subscribers received in the measured window
// and, for QoS 1, what the broker acknowledged but never delivered.
type PubSubResult struct {
	Received int64 // by all subscribers, in the measured window
	Duration time.Duration
	// Acked is how many publishes the broker acknowledged (QoS 1, whole
	// run); Delivered is how many messages the subscribers got in the whole
	// run, counted after the publishers stopped and deliveries went quiet.
	Acked, Delivered int64
	// Lost is Acked * Subscribers - Delivered when positive (QoS 1).
	Lost int64
}

// PerSecond is the subscribers' receive rate.
func (r PubSubResult) PerSecond() float64 { return float64(r.Received) / r.Duration.Seconds() }

// PubSub runs o.Publishers publishers against o.Subscribers subscribers on
// bench/# and measures what the subscribers receive after the warm-up.
func PubSub(ctx context.Context, t Target, o PubSubOptions) (PubSubResult, error) {
	if o.Publishers <= 0 {
		o.Publishers = 4
	}
	if o.Subscribers <= 0 {
		o.Subscribers = 1
	}
	if o.Window <= 0 {
		o.Window = 64
	}
	if o.QoS > 1 {
		return PubSubResult{}, errors.New("loadgen measures QoS 0 and 1")
	}
	var received atomic.Int64
	stamp := time.Now().UnixNano()
	for i := range o.Subscribers {
		sub, err := t.dial(ctx, fmt.Sprintf("bench-sub-%d-%d", i, stamp))
		if err != nil {
			return PubSubResult{}, err
		}
		defer sub.c.Close()
		sub.w.Write(mqttwire.AppendSubscribe(nil, 4, 1, "bench/#", o.QoS))
		sub.w.Flush()
		if head, _, err := mqttwire.ReadPacket(sub.r, nil); err != nil || head>>4 != mqttwire.SUBACK {
			return PubSubResult{}, fmt.Errorf("subscribe: %v", err)
		}
		go subscribeLoop(sub, &received, o.AckEvery)
	}

	pubCtx, stopPub := context.WithCancel(ctx)
	defer stopPub()
	payload := make([]byte, o.Size)
	var acked atomic.Int64
	var wg sync.WaitGroup
	errc := make(chan error, o.Publishers)
	for p := range o.Publishers {
		c, err := t.dial(ctx, fmt.Sprintf("bench-pub-%d-%d", p, stamp))
		if err != nil {
			return PubSubResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.c.Close()
			errc <- publishLoop(pubCtx, c, fmt.Sprintf("bench/%d", p), payload, o, &acked)
		}()
	}
	time.Sleep(o.Warmup)
	before := received.Load()
	start := time.Now()
	select {
	case <-time.After(o.Duration):
	case <-ctx.Done():
	}
	res := PubSubResult{Received: received.Load() - before, Duration: time.Since(start)}
	stopPub()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return res, err
		}
	}
	// Let what the broker still holds arrive: until nothing new came for
	// half a second (at most 10 s).
	for last, quiet, deadline := received.Load(), 0, time.Now().Add(10*time.Second); quiet < 5 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		if n := received.Load(); n != last {
			last, quiet = n, 0
		} else {
			quiet++
		}
	}
	res.Acked, res.Delivered = acked.Load(), received.Load()
	if o.QoS == 1 {
		res.Lost = max(0, res.Acked*int64(o.Subscribers)-res.Delivered)
	}
	return res, nil
}

// subscribeLoop counts the messages a subscriber gets and acknowledges
// QoS 1 ones: at once, or in batches every ackEvery.
func subscribeLoop(sub *conn, received *atomic.Int64, ackEvery time.Duration) {
	buf := make([]byte, 0, 4096)
	ack := make([]byte, 0, 4)
	var mu sync.Mutex // sub.w, with ackEvery
	if ackEvery > 0 {
		done := make(chan struct{})
		defer close(done)
		go func() {
			tick := time.NewTicker(ackEvery)
			defer tick.Stop()
			for {
				select {
				case <-done:
					return
				case <-tick.C:
					mu.Lock()
					sub.w.Flush()
					mu.Unlock()
				}
			}
		}()
	}
	for {
		head, body, err := mqttwire.ReadPacket(sub.r, buf)
		if err != nil {
			return
		}
		buf = body[:0]
		if head>>4 != mqttwire.PUBLISH {
			continue
		}
		received.Add(1)
		if (head>>1)&3 == 1 && len(body) >= 2 {
			tl := int(body[0])<<8 | int(body[1])
			if len(body) >= 4+tl {
				id := uint16(body[2+tl])<<8 | uint16(body[3+tl])
				mu.Lock()
				sub.w.Write(mqttwire.AppendAck(ack[:0], mqttwire.PUBACK, id))
				mu.Unlock()
			}
		}
		if ackEvery == 0 && sub.r.Buffered() == 0 {
			sub.w.Flush()
		}
	}
}

// publishLoop publishes until ctx ends; for QoS 1 it keeps at most
// o.Window unacknowledged, counts the PUBACKs in acked, and at the end
// waits (up to 2 s) for the outstanding ones.
func publishLoop(ctx context.Context, c *conn, topic string, payload []byte, o PubSubOptions, acked *atomic.Int64) error {
	window := make(chan struct{}, o.Window)
	readDone := make(chan struct{})
	if o.QoS == 1 {
		go func() {
			defer close(readDone)
			for {
				head, _, err := mqttwire.ReadPacket(c.r, nil)
				if err != nil {
					return
				}
				if head>>4 == mqttwire.PUBACK {
					acked.Add(1)
					select {
					case <-window:
					default:
					}
				}
			}
		}()
	} else {
		close(readDone)
	}
	buf := make([]byte, 0, 64+len(payload))
	var id uint16
	var err error
	for ctx.Err() == nil {
		if o.QoS == 1 {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			id++
			if id == 0 {
				id = 1
			}
		}
		buf = mqttwire.AppendPublish(buf[:0], 4, topic, payload, o.QoS, false, id)
		if _, err = c.w.Write(buf); err != nil {
			break
		}
		if (o.QoS == 1 && len(window) == cap(window)) || c.w.Buffered() > 32<<10 {
			if err = c.w.Flush(); err != nil {
				break
			}
		}
	}
	if err == nil {
		err = c.w.Flush()
	}
	// Wait for the acknowledgements of what is in flight.
	for deadline := time.Now().Add(2 * time.Second); o.QoS == 1 && len(window) > 0 && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	c.c.Close()
	<-readDone
	return err
}
