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
	Duration      time.Duration
	FirstError    error
}

// PerSecond is the rate of completed handshakes.
func (r HandshakeResult) PerSecond() float64 { return float64(r.Count) / r.Duration.Seconds() }

// Handshakes opens fresh connections (full TLS handshakes, no session
// resumption) from workers goroutines for d.
func Handshakes(ctx context.Context, t Target, workers int, d time.Duration) HandshakeResult {
	if t.TLS != nil {
		t.TLS = t.TLS.Clone()
		t.TLS.ClientSessionCache = nil
	}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	end, _ := ctx.Deadline()
	var count, errs atomic.Int64
	var first atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				c, err := t.dial(ctx, fmt.Sprintf("hs-%d-%d", w, i))
				if err != nil {
					// A dial cut by the end of the run is not an error (the
					// socket deadline can fire just before ctx reports it).
					if ctx.Err() == nil && time.Until(end) > 10*time.Millisecond {
						errs.Add(1)
						first.CompareAndSwap(nil, err)
					}
					continue
				}
				c.close()
				count.Add(1)
			}
		}()
	}
	wg.Wait()
	r := HandshakeResult{Count: count.Load(), Errors: errs.Load(), Duration: time.Since(start)}
	if e, ok := first.Load().(error); ok {
		r.FirstError = e
	}
	return r
}

// PubSubOptions shapes a publish/subscribe run.
type PubSubOptions struct {
	Publishers int
	QoS        byte // 0 or 1
	Size       int  // payload bytes
	Duration   time.Duration
	Warmup     time.Duration
	Window     int // unacknowledged QoS 1 messages per publisher
}

// PubSubResult counts messages the subscriber received in the window.
type PubSubResult struct {
	Received int64
	Duration time.Duration
}

// PerSecond is the subscriber's receive rate.
func (r PubSubResult) PerSecond() float64 { return float64(r.Received) / r.Duration.Seconds() }

// PubSub runs o.Publishers publishers against one subscriber on bench/#
// and measures what the subscriber receives after the warm-up.
func PubSub(ctx context.Context, t Target, o PubSubOptions) (PubSubResult, error) {
	if o.Publishers <= 0 {
		o.Publishers = 4
	}
	if o.Window <= 0 {
		o.Window = 64
	}
	if o.QoS > 1 {
		return PubSubResult{}, errors.New("loadgen measures QoS 0 and 1")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sub, err := t.dial(ctx, fmt.Sprintf("bench-sub-%d", time.Now().UnixNano()))
	if err != nil {
		return PubSubResult{}, err
	}
	defer sub.c.Close()
	sub.w.Write(mqttwire.AppendSubscribe(nil, 4, 1, "bench/#", o.QoS))
	sub.w.Flush()
	if head, _, err := mqttwire.ReadPacket(sub.r, nil); err != nil || head>>4 != mqttwire.SUBACK {
		return PubSubResult{}, fmt.Errorf("subscribe: %v", err)
	}
	var received atomic.Int64
	go func() {
		buf := make([]byte, 0, 4096)
		ack := make([]byte, 0, 4)
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
					sub.w.Write(mqttwire.AppendAck(ack[:0], mqttwire.PUBACK, id))
				}
			}
			if sub.r.Buffered() == 0 {
				sub.w.Flush()
			}
		}
	}()

	payload := make([]byte, o.Size)
	var wg sync.WaitGroup
	errc := make(chan error, o.Publishers)
	for p := range o.Publishers {
		c, err := t.dial(ctx, fmt.Sprintf("bench-pub-%d-%d", p, time.Now().UnixNano()))
		if err != nil {
			return PubSubResult{}, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.c.Close()
			errc <- publishLoop(ctx, c, fmt.Sprintf("bench/%d", p), payload, o)
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
	cancel()
	sub.c.Close()
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			return res, err
		}
	}
	return res, nil
}

func publishLoop(ctx context.Context, c *conn, topic string, payload []byte, o PubSubOptions) error {
	window := make(chan struct{}, o.Window)
	if o.QoS == 1 {
		go func() {
			for {
				head, _, err := mqttwire.ReadPacket(c.r, nil)
				if err != nil {
					return
				}
				if head>>4 == mqttwire.PUBACK {
					select {
					case <-window:
					default:
					}
				}
			}
		}()
	}
	go func() { <-ctx.Done(); c.c.Close() }()
	buf := make([]byte, 0, 64+len(payload))
	var id uint16
	for ctx.Err() == nil {
		if o.QoS == 1 {
			select {
			case window <- struct{}{}:
			case <-ctx.Done():
				return nil
			}
			id++
			if id == 0 {
				id = 1
			}
		}
		buf = mqttwire.AppendPublish(buf[:0], 4, topic, payload, o.QoS, false, id)
		if _, err := c.w.Write(buf); err != nil {
			return nilIfDone(ctx, err)
		}
		if (o.QoS == 1 && len(window) == cap(window)) || c.w.Buffered() > 32<<10 {
			if err := c.w.Flush(); err != nil {
				return nilIfDone(ctx, err)
			}
		}
	}
	return nil
}

func nilIfDone(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
