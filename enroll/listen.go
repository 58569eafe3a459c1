package enroll

import (
	"net"
	"sync"

	"golang.org/x/net/netutil"
)

// Listen listens on addr (TCP), serving at most MaxConns connections at
// once and MaxConnsPerIP from one address: slow or idle clients cannot
// take every file descriptor, and one address cannot take every slot.
func Listen(addr string) (net.Listener, error) {
	return ListenLimits(addr, MaxConns, MaxConnsPerIP)
}

// ListenLimits is Listen with the given bounds.
func ListenLimits(addr string, maxConns, perIP int) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	// The per-address bound is inside the global one: a connection it
	// closes at once never holds a global slot.
	return netutil.LimitListener(&perIPListener{Listener: ln, max: perIP, open: map[string]int{}}, maxConns), nil
}

// perIPListener closes, as soon as it is accepted, a connection from an
// address that already has max open.
type perIPListener struct {
	net.Listener
	max  int
	mu   sync.Mutex
	open map[string]int
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := hostOf(c.RemoteAddr())
		l.mu.Lock()
		if l.open[ip] >= l.max {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.open[ip]++
		l.mu.Unlock()
		return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[ip]--; l.open[ip] <= 0 {
		delete(l.open, ip)
	}
}

type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

func hostOf(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok {
		return t.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
