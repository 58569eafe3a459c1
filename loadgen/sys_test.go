package loadgen

import (
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
)

func TestSourceAddrs(t *testing.T) {
	for _, c := range []struct {
		n           int
		first, last string
		bad         bool
	}{
		{n: 0},
		{n: 1, first: "127.0.0.2", last: "127.0.0.2"},
		{n: 5, first: "127.0.0.2", last: "127.0.0.6"},
		{n: 300, first: "127.0.0.2", last: "127.0.1.45"}, // carries into the third byte
		{n: MaxSources + 1, bad: true},
		{n: -1, bad: true},
	} {
		got, err := SourceAddrs(c.n)
		if c.bad {
			if err == nil {
				t.Errorf("SourceAddrs(%d): no error", c.n)
			}
			continue
		}
		if err != nil || len(got) != c.n {
			t.Fatalf("SourceAddrs(%d) = %d addresses, %v", c.n, len(got), err)
		}
		seen := map[netip.Addr]bool{}
		for _, a := range got {
			if !a.IsLoopback() || a == netip.MustParseAddr("127.0.0.1") || seen[a] {
				t.Errorf("SourceAddrs(%d): %v is not a new loopback address other than 127.0.0.1", c.n, a)
			}
			seen[a] = true
		}
		if c.n > 0 && (got[0].String() != c.first || got[c.n-1].String() != c.last) {
			t.Errorf("SourceAddrs(%d) = %v ... %v, want %s ... %s", c.n, got[0], got[c.n-1], c.first, c.last)
		}
	}
}

func TestSourcesNeeded(t *testing.T) {
	ports := DefaultPortRange[1] - DefaultPortRange[0] + 1 // 28232: 21174 per address
	for _, c := range []struct{ conns, ports, want int }{
		{5000, ports, 0},
		{21174, ports, 0},
		{21175, ports, 2},
		{50000, ports, 3},
		{100000, ports, 5},
		{100000, 1000, 134},
		{10, 1, 10},
	} {
		if got := SourcesNeeded(c.conns, c.ports); got != c.want {
			t.Errorf("SourcesNeeded(%d, %d) = %d, want %d", c.conns, c.ports, got, c.want)
		}
		if n := SourcesNeeded(c.conns, c.ports); n > 0 && n*max(1, c.ports*3/4) < c.conns {
			t.Errorf("SourcesNeeded(%d, %d) = %d: not enough ports", c.conns, c.ports, n)
		}
	}
}

// fakeLimit is an RLIMIT_NOFILE that a process without CAP_SYS_RESOURCE
// (privileged false) may not raise above its hard limit.
type fakeLimit struct {
	l          syscall.Rlimit
	privileged bool
	sets       int
}

func (f *fakeLimit) get(_ int, l *syscall.Rlimit) error { *l = f.l; return nil }
func (f *fakeLimit) set(_ int, l *syscall.Rlimit) error {
	f.sets++
	if l.Cur > l.Max || (l.Max > f.l.Max && !f.privileged) {
		return syscall.EPERM
	}
	f.l = *l
	return nil
}

func TestRaiseOpenFiles(t *testing.T) {
	for _, c := range []struct {
		name           string
		cur, max, need uint64
		privileged     bool
		want           uint64 // soft limit left
		wantMax        uint64
		fails          bool
	}{
		{name: "soft raised to hard", cur: 1024, max: 20000, need: 5064, want: 20000, wantMax: 20000},
		{name: "soft raised even when enough", cur: 8000, max: 20000, need: 100, want: 20000, wantMax: 20000},
		{name: "hard raised when privileged", cur: 1024, max: 20000, need: 100064, privileged: true, want: 100064, wantMax: 100064},
		{name: "hard not raisable", cur: 1024, max: 20000, need: 100064, want: 20000, wantMax: 20000, fails: true},
		{name: "already there", cur: 1 << 20, max: 1 << 20, need: 100064, want: 1 << 20, wantMax: 1 << 20},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeLimit{l: syscall.Rlimit{Cur: c.cur, Max: c.max}, privileged: c.privileged}
			got, err := raiseOpenFiles(c.need, f.get, f.set)
			if (err != nil) != c.fails || (err != nil && !errors.Is(err, ErrOpenFiles)) {
				t.Fatalf("err = %v, want failure %v wrapping ErrOpenFiles", err, c.fails)
			}
			if got != c.want || f.l.Cur != c.want || f.l.Max != c.wantMax {
				t.Errorf("returned %d, limit now %d/%d; want %d/%d", got, f.l.Cur, f.l.Max, c.want, c.wantMax)
			}
		})
	}
}

// TestRaiseOpenFilesForReal: this process's soft limit ends at its hard
// limit.
func TestRaiseOpenFilesForReal(t *testing.T) {
	var before syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &before); err != nil {
		t.Fatal(err)
	}
	got, err := RaiseOpenFiles(10)
	if err != nil {
		t.Fatal(err)
	}
	var after syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &after); err != nil {
		t.Fatal(err)
	}
	if got != before.Max || after.Cur != before.Max {
		t.Errorf("soft limit %d (returned %d), want the hard limit %d", after.Cur, got, before.Max)
	}
}

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in     string
		lo, hi int
		bad    bool
	}{
		{in: "32768\t60999\n", lo: 32768, hi: 60999},
		{in: "1024 65535", lo: 1024, hi: 65535},
		{in: "60999 32768", bad: true},
		{in: "0 100", bad: true},
		{in: "1024 70000", bad: true},
		{in: "1024", bad: true},
		{in: "a b", bad: true},
	} {
		lo, hi, err := ParsePortRange([]byte(c.in))
		if (err != nil) != c.bad || (!c.bad && (lo != c.lo || hi != c.hi)) {
			t.Errorf("ParsePortRange(%q) = %d, %d, %v", c.in, lo, hi, err)
		}
	}
}

func FuzzParsePortRange(f *testing.F) {
	for _, s := range []string{"32768\t60999\n", "1 1", "65535 1", "-1 5", "  9 99  ", "1 2 3"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		lo, hi, err := ParsePortRange(b)
		if err == nil && (lo < 1 || hi > 65535 || lo > hi) {
			t.Fatalf("ParsePortRange(%q) = %d, %d", b, lo, hi)
		}
	})
}

func TestParseVmRSS(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int64
		bad  bool
	}{
		{in: "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t    2048 kB\nRssAnon: 1 kB\n", want: 2048 << 10},
		{in: "VmRSS: 12 MB\n", bad: true},
		{in: "VmRSS:\n", bad: true},
		{in: "Name: x\n", bad: true},
	} {
		got, err := ParseVmRSS([]byte(c.in))
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("ParseVmRSS(%q) = %d, %v", c.in, got, err)
		}
	}
	if ownRSS() <= 0 {
		t.Error("ownRSS() found no VmRSS in /proc/self/status")
	}
}

func FuzzParseVmRSS(f *testing.F) {
	for _, s := range []string{"VmRSS:\t 2048 kB\n", "VmRSS: 1 MB", "VmRSS:", "VmRSS: -5 kB", "x\nVmRSS: 99999999999999999 kB"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if n, err := ParseVmRSS(b); err == nil && n < 0 {
			t.Fatalf("ParseVmRSS(%q) = %d", b, n)
		}
	})
}

func TestSources(t *testing.T) {
	auto := SourcesNeeded(100000, EphemeralPorts())
	for _, c := range []struct {
		addr     string
		conns, n int
		want     int
		bad      bool
	}{
		{addr: "127.0.0.1:1883", conns: 100000, want: auto},
		{addr: "localhost:1883", conns: 100000, want: auto},
		{addr: "127.0.0.1:1883", conns: 10},
		{addr: "127.0.0.1:1883", conns: 10, n: 3, want: 3},
		{addr: "192.0.2.1:1883", conns: 100000},
		{addr: "192.0.2.1:1883", conns: 10, n: 3, bad: true},
		{addr: "[::1]:1883", conns: 10, n: 3, bad: true},
		{addr: "no-port", conns: 10, bad: true},
	} {
		got, err := Sources(context.Background(), c.addr, c.conns, c.n)
		if (err != nil) != c.bad || len(got) != c.want {
			t.Errorf("Sources(%s, %d, %d) = %v, %v; want %d addresses (error %v)", c.addr, c.conns, c.n, got, err, c.want, c.bad)
		}
	}
	if auto < 2 {
		t.Errorf("100000 connections from one address: the port range has %d ports", EphemeralPorts())
	}
}
