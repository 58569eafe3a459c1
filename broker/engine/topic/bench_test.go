package topic

import (
	"fmt"
	"runtime"
	"testing"
)

// benchIndex: n subscriptions, of which the ones to "dev/<i>/status" for
// i != 42 cannot match dev/42/status; 4 do (the exact one, two wildcards
// and a share group).
func benchIndex(b *testing.B, n int) {
	var ix Index
	for i := 0; i < n-4; i++ {
		ix.Subscribe(&Subscription{Client: fmt.Sprintf("c%d", i), Filter: fmt.Sprintf("dev/%d/status", i+100)})
	}
	for _, f := range []string{"dev/42/status", "dev/+/status", "dev/#", "$share/g/dev/+/status"} {
		ix.Subscribe(&Subscription{Client: "m", Filter: f})
	}
	var m Matches
	b.ReportAllocs()
	for b.Loop() {
		ix.Match("dev/42/status", &m)
	}
	if len(m.Subs) != 3 || len(m.Shared) != 1 {
		b.Fatalf("%d plain, %d shared", len(m.Subs), len(m.Shared))
	}
}

func BenchmarkMatch100(b *testing.B)  { benchIndex(b, 100) }
func BenchmarkMatch100k(b *testing.B) { benchIndex(b, 100_000) }

func benchRetained(b *testing.B, n int) {
	var st Retained[int]
	for i := 0; i < n; i++ {
		st.Set(fmt.Sprintf("dev/%d/status", i), i)
	}
	b.ReportAllocs()
	for b.Loop() {
		k := 0
		st.Match("dev/42/+", func(string, int) bool { k++; return true })
		if k != 1 {
			b.Fatal(k)
		}
	}
}

func BenchmarkRetainedMatch100(b *testing.B)  { benchRetained(b, 100) }
func BenchmarkRetainedMatch100k(b *testing.B) { benchRetained(b, 100_000) }

// BenchmarkSubscribe100k: the memory of 100k subscriptions to distinct
// filters (reported as B/sub, the Subscription itself included).
func BenchmarkSubscribe100k(b *testing.B) {
	subs := make([]*Subscription, 100_000)
	for i := range subs {
		subs[i] = &Subscription{Client: fmt.Sprintf("c%d", i), Filter: fmt.Sprintf("dev/%d/status", i)}
	}
	b.ReportAllocs()
	var ms0, ms1 runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		var ix Index
		for _, s := range subs {
			ix.Subscribe(&Subscription{Client: s.Client, Filter: s.Filter})
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/float64(len(subs)), "B/sub")
		runtime.KeepAlive(&ix)
	}
}
