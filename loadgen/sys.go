package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ErrOpenFiles: the process may not open as many files as the run needs.
var ErrOpenFiles = errors.New("not enough open files allowed")

// FilesPerRun is what a run needs beyond one file per connection: the
// binary, certificates, standard streams, the runtime's poller.
const FilesPerRun = 64

// RaiseOpenFiles raises this process's RLIMIT_NOFILE soft limit to the
// hard limit and, when need is more than that, the hard limit to need
// (which takes CAP_SYS_RESOURCE). It returns the soft limit it leaves; an
// error wrapping ErrOpenFiles when that is below need.
func RaiseOpenFiles(need uint64) (uint64, error) {
	return raiseOpenFiles(need, syscall.Getrlimit, syscall.Setrlimit)
}

func raiseOpenFiles(need uint64, get, set func(int, *syscall.Rlimit) error) (uint64, error) {
	var l syscall.Rlimit
	if err := get(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, fmt.Errorf("read the open files limit: %w", err)
	}
	if l.Cur < l.Max {
		up := syscall.Rlimit{Cur: l.Max, Max: l.Max}
		if err := set(syscall.RLIMIT_NOFILE, &up); err != nil {
			return l.Cur, fmt.Errorf("raise the open files limit from %d to its hard limit %d: %w", l.Cur, l.Max, err)
		}
		l = up
	}
	if l.Cur >= need {
		return l.Cur, nil
	}
	up := syscall.Rlimit{Cur: need, Max: need}
	if err := set(syscall.RLIMIT_NOFILE, &up); err != nil {
		return l.Cur, fmt.Errorf("%w: the run needs %d open files, the hard limit is %d and raising it was refused (%v): raise it for the user or the shell (ulimit -Hn %d as root with CAP_SYS_RESOURCE, LimitNOFILE= in a unit, /etc/security/limits.conf), or open fewer connections", ErrOpenFiles, need, l.Max, err, need)
	}
	return need, nil
}

// DefaultPortRange is Linux's default ephemeral port range, for where
// /proc/sys/net/ipv4/ip_local_port_range is not readable.
var DefaultPortRange = [2]int{32768, 60999}

// ParsePortRange reads ip_local_port_range's "LOW HIGH".
func ParsePortRange(data []byte) (lo, hi int, err error) {
	f := strings.Fields(string(data))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("ip_local_port_range %q: want two numbers", data)
	}
	if lo, err = strconv.Atoi(f[0]); err == nil {
		hi, err = strconv.Atoi(f[1])
	}
	if err != nil || lo < 1 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("ip_local_port_range %q: want LOW HIGH with 1 <= LOW <= HIGH <= 65535", data)
	}
	return lo, hi, nil
}

// EphemeralPorts is how many local ports one source address has for
// outgoing connections on this machine.
func EphemeralPorts() int {
	lo, hi := DefaultPortRange[0], DefaultPortRange[1]
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if l, h, err := ParsePortRange(b); err == nil {
			lo, hi = l, h
		}
	}
	return hi - lo + 1
}

// SourcesNeeded is how many source addresses conns connections to one
// broker address need when each address may use three quarters of ports
// local ports (the rest is left to the machine's other connections): 0
// when the system's choice of source is enough.
func SourcesNeeded(conns, ports int) int {
	per := ports * 3 / 4
	if per < 1 {
		per = 1
	}
	if conns <= per {
		return 0
	}
	return (conns + per - 1) / per
}

// MaxSources is the most loopback source addresses SourceAddrs gives:
// 127.0.0.2 up to 127.255.255.254.
const MaxSources = 1<<24 - 3

// SourceAddrs gives n loopback source addresses from 127.0.0.2 on (Linux
// routes all of 127.0.0.0/8 to the loopback interface, and each address
// has the whole ephemeral port range). It leaves out 127.0.0.1, which the
// machine's other connections use.
func SourceAddrs(n int) ([]netip.Addr, error) {
	if n < 0 || n > MaxSources {
		return nil, fmt.Errorf("%d source addresses: want 0 to %d (127.0.0.2 to 127.255.255.254)", n, MaxSources)
	}
	out := make([]netip.Addr, n)
	a := netip.AddrFrom4([4]byte{127, 0, 0, 1})
	for i := range out {
		a = a.Next()
		out[i] = a
	}
	return out, nil
}

// ParseVmRSS reads VmRSS (in bytes) from /proc/PID/status text.
func ParseVmRSS(status []byte) (int64, error) {
	for line := range bytes.Lines(status) {
		rest, ok := bytes.CutPrefix(line, []byte("VmRSS:"))
		if !ok {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("VmRSS line %q: want N kB", line)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 || kb > 1<<40 {
			return 0, fmt.Errorf("VmRSS line %q: want N kB", line)
		}
		return kb << 10, nil
	}
	return 0, errors.New("no VmRSS line")
}

// ownRSS is this process's resident memory in bytes, 0 if unknown.
func ownRSS() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	n, _ := ParseVmRSS(b)
	return n
}

// Sources picks the source addresses for conns connections to addr
// (HOST:PORT): n of them when n > 0, which needs addr on loopback; with
// n == 0 as many as SourcesNeeded says for this machine's ephemeral port
// range when addr is on loopback, none otherwise (the system chooses).
func Sources(ctx context.Context, addr string, conns, n int) ([]netip.Addr, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	loopback := false
	if a, err := netip.ParseAddr(host); err == nil {
		loopback = a.Unmap().Is4() && a.IsLoopback()
	} else if as, err := net.DefaultResolver.LookupNetIP(ctx, "ip4", host); err == nil {
		for _, a := range as {
			loopback = loopback || a.Unmap().IsLoopback()
		}
	}
	if n == 0 {
		if !loopback {
			return nil, nil
		}
		n = SourcesNeeded(conns, EphemeralPorts())
	} else if !loopback {
		return nil, fmt.Errorf("%d source addresses from 127.0.0.2 on: the broker %s is not on IPv4 loopback (127.0.0.0/8), which is the only place those addresses reach", n, addr)
	}
	return SourceAddrs(n)
}
