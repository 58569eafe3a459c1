package broker

import (
	"testing"
	"time"
)

// BenchmarkHandshakeCounting is what --metrics adds to each TLS handshake:
// two clock reads and the histogram's atomic adds.
func BenchmarkHandshakeCounting(b *testing.B) {
	m := &brokerMetrics{}
	for b.Loop() {
		start := time.Now()
		m.handshake(time.Since(start))
	}
}

// TestHandshakeBuckets: a duration lands in the first bucket whose upper
// bound is at least it, past the last in +Inf.
func TestHandshakeBuckets(t *testing.T) {
	for _, tc := range []struct {
		d      time.Duration
		bucket int
	}{{0, 0}, {500 * time.Microsecond, 0}, {501 * time.Microsecond, 1}, {10 * time.Second, len(handshakeBuckets) - 1}, {11 * time.Second, len(handshakeBuckets)}} {
		m := &brokerMetrics{}
		m.handshake(tc.d)
		if m.hsCount[tc.bucket].Load() != 1 || m.hsSumNano.Load() != uint64(tc.d) {
			t.Errorf("%v: not in bucket %d", tc.d, tc.bucket)
		}
	}
	var nilMetrics *brokerMetrics
	nilMetrics.handshake(time.Second) // off: counts nothing, no panic
}
