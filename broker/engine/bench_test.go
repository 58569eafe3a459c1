package engine_test

import (
	"bufio"
	"fmt"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// memInUse is the heap and stack the process uses, after a GC (which also
// shrinks idle goroutine stacks).
func memInUse() uint64 {
	var ms runtime.MemStats
	for range 3 {
		runtime.GC()
	}
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse + ms.StackInuse
}

// idleConns opens n plain loopback connections to addr; with mqtt each
// sends CONNECT (3.1.1, keepalive 60) and SUBSCRIBE idle/ID at QoS 1 and
// reads CONNACK and SUBACK.
func idleConns(tb testing.TB, addr string, n int, mqtt bool) []net.Conn {
	conns := make([]net.Conn, 0, n)
	for i := range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			tb.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if !mqtt {
			continue
		}
		b := (&mw.Packet{Type: mw.CONNECT, Version: 4, CleanStart: true, Keepalive: 60, ClientID: fmt.Appendf(nil, "idle-%d", i)}).Append(nil)
		b = (&mw.Packet{Type: mw.SUBSCRIBE, Version: 4, ID: 1, Subs: []mw.Subscription{{Filter: fmt.Appendf(nil, "idle/%d", i), QoS: 1}}}).Append(b)
		if _, err := c.Write(b); err != nil {
			tb.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		var got [4 + 5]byte // CONNACK (4 bytes) and SUBACK (5 bytes)
		if _, err := readFull(c, got[:]); err != nil || got[0] != 0x20 || got[4] != 0x90 {
			tb.Fatalf("connection %d: %x %v", i, got, err)
		}
	}
	return conns
}

func readFull(c net.Conn, b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := c.Read(b[n:])
		n += m
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// TestIdleMemory prints the memory the engine holds per idle connection:
// 2000 plain loopback clients connected and subscribed, minus what the
// same number of bare TCP connection pairs (both ends in this process,
// an accepting side without goroutines) cost. It fails only on a leak the
// size of a read buffer (over 16 KiB per connection): the figure itself is
// for the report (go test -run TestIdleMemory -v ./broker/engine).
func TestIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 4000 connections")
	}
	const n = 2000
	// The bare pairs: an accept loop that only keeps the conns.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, n)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	before := memInUse()
	bare := idleConns(t, ln.Addr().String(), n, false)
	var server []net.Conn
	for range n {
		server = append(server, <-accepted)
	}
	bareCost := float64(memInUse()-before) / n
	for _, c := range append(bare, server...) {
		c.Close()
	}
	ln.Close()

	addr, s := startEngine(t, engine.Options{})
	before = memInUse()
	conns := idleConns(t, addr, n, true)
	time.Sleep(200 * time.Millisecond) // let every reader go back to its idle wait
	var ms0 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	total := float64(memInUse()-before) / n
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	engineCost := total - bareCost
	t.Logf("%d idle MQTT 3.1.1 connections (subscribed): %.0f B each in this process, %.0f B for a bare TCP pair, so %.0f B per connection held by the engine (goroutine stacks: %.0f B per goroutine); %d goroutines, %d sessions",
		n, total, bareCost, engineCost, float64(ms.StackInuse)/float64(runtime.NumGoroutine()), runtime.NumGoroutine(), s.Sessions())
	if engineCost > 16<<10 {
		t.Errorf("the engine holds %.0f B per idle connection: a buffer is kept while idle", engineCost)
	}
	// Parked: no goroutine per idle connection (the test's own, the
	// parker's and the listener's remain).
	if g := runtime.NumGoroutine(); g > n/10 {
		t.Errorf("%d goroutines for %d idle connections: idle connections are not parked", g, n)
	}
	runtime.KeepAlive(conns)
	for _, c := range conns {
		c.Close()
	}
}

// BenchmarkQoS1Throughput: one 3.1.1 publisher sends QoS 1 messages of 100
// bytes (up to 500 unacknowledged) to one subscriber that acknowledges
// each, over loopback; msg/s is the rate at which the subscriber receives.
func BenchmarkQoS1Throughput(b *testing.B) {
	b.Run("engine", func(b *testing.B) {
		addr, _ := startEngine(b, engine.Options{MaxInflight: 1000, MaxQueued: 100000})
		qos1Throughput(b, addr)
	})
	b.Run("mosquitto-2.0.11", func(b *testing.B) {
		addr := startMosquittoConf(b, testutil.RequireBinary(b, "mosquitto"), "max_inflight_messages 1000\nmax_queued_messages 100000\n")
		qos1Throughput(b, addr)
	})
}

func qos1Throughput(b *testing.B, addr string) {
	sub := idleConnsV(b, addr, "bench-sub", "bench/t")
	pub := idleConnsV(b, addr, "bench-pub", "")
	payload := make([]byte, 100)
	acks := make(chan struct{}, 500)
	done := make(chan error, 2)
	go func() { // the publisher's acknowledgements
		r := bufio.NewReader(pub)
		for range b.N {
			if _, _, err := mw.ReadPacket(r, nil); err != nil {
				done <- err
				return
			}
			<-acks
		}
		done <- nil
	}()
	go func() { // the subscriber
		r := bufio.NewReaderSize(sub, 64<<10)
		w := bufio.NewWriterSize(sub, 16<<10)
		var buf []byte
		for i := range b.N {
			head, body, err := mw.ReadPacket(r, buf)
			if err != nil {
				done <- err
				return
			}
			buf = body[:0]
			if head>>4 != mw.PUBLISH {
				done <- fmt.Errorf("subscriber got packet type %d", head>>4)
				return
			}
			_, id, _, _ := mw.PublishInfo(head, body, 4)
			w.Write(mw.AppendAck(nil, mw.PUBACK, id))
			if r.Buffered() == 0 || i == b.N-1 {
				w.Flush()
			}
		}
		done <- nil
	}()
	b.ResetTimer()
	start := time.Now()
	w := bufio.NewWriterSize(pub, 16<<10)
	var pkt []byte
	for i := range b.N {
		select {
		case acks <- struct{}{}:
		default:
			w.Flush()
			acks <- struct{}{}
		}
		pkt = mw.AppendPublish(pkt[:0], 4, "bench/t", payload, 1, false, uint16(i%65535+1))
		w.Write(pkt)
	}
	w.Flush()
	for range 2 {
		if err := <-done; err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
}

func idleConnsV(tb testing.TB, addr, id, filter string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	b := (&mw.Packet{Type: mw.CONNECT, Version: 4, CleanStart: true, ClientID: []byte(id)}).Append(nil)
	want := 4
	if filter != "" {
		b = (&mw.Packet{Type: mw.SUBSCRIBE, Version: 4, ID: 1, Subs: []mw.Subscription{{Filter: []byte(filter), QoS: 1}}}).Append(b)
		want += 5
	}
	if _, err := c.Write(b); err != nil {
		tb.Fatal(err)
	}
	got := make([]byte, want)
	if _, err := readFull(c, got); err != nil {
		tb.Fatal(err)
	}
	return c
}
