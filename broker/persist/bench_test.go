package persist

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// BenchmarkSaveQueuedDurable is the QoS 1 path with persistence: per
// message a publisher hands SaveQueued, waits in Durable (as the engine
// does before PUBACK), and the subscriber's acknowledgement hands
// DeleteQueued. With more publishers at once, commits are shared: the
// commits/op metric falls below 1.
func BenchmarkSaveQueuedDurable(b *testing.B) {
	for _, publishers := range []int{1, 4, 16, 64} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			s := openStore(b, dbPath(b), nil)
			m := &engine.Message{Topic: "bench/q", Payload: make([]byte, 100), QoS: 1, From: "pub", Created: time.Now()}
			b.ReportAllocs()
			b.ResetTimer()
			var wg sync.WaitGroup
			for p := range publishers {
				client := fmt.Sprintf("sub%d", p)
				n := b.N / publishers
				if p < b.N%publishers {
					n++
				}
				wg.Go(func() {
					for i := range n {
						seq := uint64(i + 1)
						s.SaveQueued(client, seq, engine.Queued{M: m, QoS: m.QoS})
						s.Durable(nil)
						s.DeleteQueued(client, seq)
					}
				})
			}
			wg.Wait()
			s.flush()
			b.StopTimer()
			s.Close()
			b.ReportMetric(float64(s.commits)/float64(b.N), "commits/op")
		})
	}
}

// BenchmarkQoS1Persistent: one publisher (pipelined) to one persistent
// subscriber that acknowledges, 100-byte messages, loopback, through the
// engine with and without the Store: each message is SaveQueued, made
// Durable before its PUBACK, and DeleteQueued at the subscriber's PUBACK.
func BenchmarkQoS1Persistent(b *testing.B) {
	for _, persist := range []bool{false, true} {
		b.Run(map[bool]string{false: "memory", true: "store"}[persist], func(b *testing.B) {
			opts := engine.Options{MaxInflight: 1000, MaxQueued: 100000}
			var s *Store
			if persist {
				s = openStore(b, dbPath(b), nil)
				opts.Hooks = storeHooks{s: s}
			}
			srv := engine.New(opts)
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			defer func() {
				srv.Close()
				if s != nil {
					s.Close()
				}
			}()
			addr := ln.Addr().String()
			sub := dial(b, addr, 4)
			sub.connect("bench-sub", false, 0)
			sub.subscribe("bench/t", 1, 0)
			pub := dial(b, addr, 4)
			pub.connect("bench-pub", true, 0)
			payload := make([]byte, 100)
			window := make(chan struct{}, 500)
			done := make(chan error, 2)
			go func() { // the publisher's acknowledgements
				for range b.N {
					if _, _, err := mqttwire.ReadPacket(pub.r, nil); err != nil {
						done <- err
						return
					}
					<-window
				}
				done <- nil
			}()
			go func() { // the subscriber
				w := bufio.NewWriterSize(sub.nc, 16<<10)
				var buf []byte
				for i := range b.N {
					head, body, err := mqttwire.ReadPacket(sub.r, buf)
					if err != nil {
						done <- err
						return
					}
					buf = body[:0]
					_, id, _, _ := mqttwire.PublishInfo(head, body, 4)
					w.Write(mqttwire.AppendAck(nil, mqttwire.PUBACK, id))
					if sub.r.Buffered() == 0 || i == b.N-1 {
						w.Flush()
					}
				}
				done <- nil
			}()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			w := bufio.NewWriterSize(pub.nc, 16<<10)
			var pkt []byte
			for i := range b.N {
				select {
				case window <- struct{}{}:
				default:
					w.Flush()
					window <- struct{}{}
				}
				pkt = mqttwire.AppendPublish(pkt[:0], 4, "bench/t", payload, 1, false, uint16(i%65535+1))
				w.Write(pkt)
			}
			w.Flush()
			for range 2 {
				if err := <-done; err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msg/s")
			if s != nil {
				s.flush()
				b.ReportMetric(float64(s.commits)/float64(b.N), "commits/op")
			}
		})
	}
}
