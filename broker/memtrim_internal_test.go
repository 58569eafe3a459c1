package broker

import "testing"

func TestShouldTrim(t *testing.T) {
	const mb = 1 << 20
	for _, c := range []struct {
		live, objects, free uint64
		want                bool
	}{
		{live: 100 * mb, objects: 100 * mb, free: 0, want: false},          // nothing held beyond live
		{live: 100 * mb, objects: 180 * mb, free: 20 * mb, want: true},     // twice live after a burst
		{live: 100 * mb, objects: 110 * mb, free: 10 * mb, want: false},    // 20% beyond: not worth a collection
		{live: 10 * mb, objects: 12 * mb, free: 10 * mb, want: false},      // 12 MB beyond: under trimMin
		{live: 10 * mb, objects: 20 * mb, free: 10 * mb, want: true},       // 20 MB beyond a small heap
		{live: 2000 * mb, objects: 2100 * mb, free: 300 * mb, want: false}, // 20% of a big heap
		{live: 2000 * mb, objects: 2000 * mb, free: 1200 * mb, want: true}, // 60% of a big heap
		{live: 100 * mb, objects: 90 * mb, free: 0, want: false},           // live read before a collection
	} {
		if got := shouldTrim(c.live, c.objects, c.free); got != c.want {
			t.Errorf("shouldTrim(live %d MB, objects %d MB, free %d MB) = %v, want %v", c.live/mb, c.objects/mb, c.free/mb, got, c.want)
		}
	}
}
