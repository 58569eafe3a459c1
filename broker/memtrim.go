package broker

import (
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// The Go runtime lets the heap grow to twice what is live before it
// collects (GOGC=100), and gives freed pages back to the operating system
// only slowly: after a burst of connections, whose TLS handshakes leave
// much garbage, an idle broker would keep about twice its live memory.
// trimLoop gives it back once the broker is quiet (no connection accepted
// and no message received or sent for trimQuiet), when what the heap
// holds beyond its live objects is more than trimMin and a quarter of
// them, so that an idle broker's RSS is what its connections use. A busy
// broker is left to the runtime's own pacing (a forced collection under
// load would only cost CPU).
const (
	trimEvery = time.Second
	trimQuiet = 2 // ticks
	trimMin   = 16 << 20
)

// shouldTrim decides from the live heap (at the last collection), the
// heap's object bytes (live and garbage) and its free bytes not yet
// released.
func shouldTrim(live, objects, free uint64) bool {
	held := objects + free
	if held <= live {
		return false
	}
	extra := held - live
	return extra > trimMin && extra > live/4
}

// trimLoop runs until stop is closed.
func (b *Broker) trimLoop(stop <-chan struct{}) {
	samples := []metrics.Sample{{Name: "/gc/heap/live:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/free:bytes"}}
	t := time.NewTicker(trimEvery)
	defer t.Stop()
	last, quiet := b.activity(), 0
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if n := b.activity(); n != last {
			last, quiet = n, 0
			continue
		}
		if quiet++; quiet < trimQuiet {
			continue
		}
		metrics.Read(samples)
		if shouldTrim(samples[0].Value.Uint64(), samples[1].Value.Uint64(), samples[2].Value.Uint64()) {
			debug.FreeOSMemory()
		}
	}
}

// activity counts what makes garbage: connections accepted, messages
// received and sent.
func (b *Broker) activity() uint64 {
	n := b.srv.Activity()
	for _, ls := range b.listeners {
		n += ls.ln.accepted.Load()
	}
	return n
}
