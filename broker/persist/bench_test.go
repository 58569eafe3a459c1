package persist

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
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
						s.SaveQueued(client, seq, m)
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
