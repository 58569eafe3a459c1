package loadgen

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// fakeBroker accepts on 127.0.0.1, reads a CONNECT's fixed header and
// answers with connack (nil: never answers), recording each client's
// source address.
type fakeBroker struct {
	ln      net.Listener
	mu      sync.Mutex
	sources map[netip.Addr]int
	conns   []net.Conn
}

func startFake(t *testing.T, connack []byte) *fakeBroker {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBroker{ln: ln, sources: map[netip.Addr]int{}}
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.sources[c.RemoteAddr().(*net.TCPAddr).AddrPort().Addr().Unmap()]++
			f.mu.Unlock()
			go func() {
				var head [2]byte
				if _, err := io.ReadFull(c, head[:]); err != nil || connack == nil {
					return
				}
				io.CopyN(io.Discard, c, int64(head[1]))
				c.Write(connack)
			}()
		}
	}()
	return f
}

// TestIdleRunSpreadsSources: connections go out from each source address in
// turn, and all are held until the context ends.
func TestIdleRunSpreadsSources(t *testing.T) {
	f := startFake(t, []byte{0x20, 2, 0, 0})
	src, _ := SourceAddrs(3)
	ctx, cancel := context.WithCancel(context.Background())
	var ready IdleResult
	res := IdleRun(ctx, Target{Addr: f.ln.Addr().String()}, IdleOptions{Conns: 30, Parallel: 4, Sources: src, Ready: func(r IdleResult) {
		ready = r
		cancel()
	}})
	if ready.Opened != 30 || ready.Failed != 0 || res.Opened != 30 {
		t.Fatalf("ready %+v, result %+v", ready, res)
	}
	if ready.RSSBefore <= 0 || ready.RSSAfter <= 0 {
		t.Errorf("RSS not read: %+v", ready)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range src {
		if f.sources[a] != 10 {
			t.Errorf("connections by source: %v, want 10 from each of %v", f.sources, src)
			break
		}
	}
}

// TestIdleRunFailures: failures are counted by reason, never hang (a
// broker that does not answer is cut at the timeout), and the opening
// stops after MaxFailures; Ready still reports them.
func TestIdleRunFailures(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	silent := startFake(t, nil)
	refuses := startFake(t, []byte{0x20, 2, 0, 5})
	plain := startFake(t, []byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
	for _, c := range []struct {
		name   string
		target Target
		reason string
	}{
		{"nothing listens", Target{Addr: closedAddr}, ReasonRefused},
		{"no CONNACK", Target{Addr: silent.ln.Addr().String()}, ReasonTimeout},
		{"CONNACK refusal", Target{Addr: refuses.ln.Addr().String()}, ReasonMQTT},
		{"TLS to a plain listener", Target{Addr: plain.ln.Addr().String(), TLS: &tls.Config{InsecureSkipVerify: true}}, ReasonTLS},
	} {
		t.Run(c.name, func(t *testing.T) {
			start := time.Now()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var res IdleResult
			IdleRun(ctx, c.target, IdleOptions{Conns: 50, Parallel: 2, Timeout: 300 * time.Millisecond, MaxFailures: 4, Ready: func(r IdleResult) {
				res = r
				cancel()
			}})
			if res.Opened != 0 || res.Failed < 4 || res.Failed > 5 || res.Reasons[c.reason] != res.Failed {
				t.Errorf("got %+v, want 4-5 failures, all %q", res, c.reason)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %v", time.Since(start))
			}
		})
	}
}
