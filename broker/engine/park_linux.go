package engine

import (
	"sync"
	"syscall"
	"time"
)

// Parking: an idle connection keeps no goroutine. When a connection has
// nothing buffered to read, its goroutine registers the socket with the
// server's parker (an epoll instance of its own, level-triggered and
// one-shot) and a timer for its keepalive deadline, and exits; the first
// of readiness, the timer or a shutdown starts a new goroutine, which
// reads on where the last one stopped. An idle connection then costs its
// state only: no 4 KiB goroutine stack. Go's own poller still owns the
// socket; the parker only watches it.
type parker struct {
	epfd  int
	pipe  [2]int // written to stop the loop
	mu    sync.Mutex
	conns map[int32]*conn
}

func newParker() *parker {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil // no parking: connections wait in their goroutines
	}
	p := &parker{epfd: fd, conns: map[int32]*conn{}}
	if err := syscall.Pipe2(p.pipe[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(fd)
		return nil
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.pipe[0])}
	if err := syscall.EpollCtl(fd, syscall.EPOLL_CTL_ADD, p.pipe[0], &ev); err != nil {
		p.closeFDs()
		return nil
	}
	go p.loop()
	return p
}

func (p *parker) closeFDs() {
	syscall.Close(p.epfd)
	syscall.Close(p.pipe[0])
	syscall.Close(p.pipe[1])
}

// stop ends the loop (Server.Close, once no connection is parked).
func (p *parker) stop() { _, _ = syscall.Write(p.pipe[1], []byte{1}) }

// parkEvents: readable, peer closed, error.
const parkEvents = syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLHUP | syscall.EPOLLERR | syscall.EPOLLONESHOT

// arm (re-)registers c's socket for one readiness event.
func (p *parker) arm(c *conn) bool {
	ev := syscall.EpollEvent{Events: parkEvents, Fd: c.fd}
	p.mu.Lock()
	defer p.mu.Unlock()
	op := syscall.EPOLL_CTL_MOD
	if p.conns[c.fd] != c {
		op = syscall.EPOLL_CTL_ADD
	}
	if err := syscall.EpollCtl(p.epfd, op, int(c.fd), &ev); err != nil {
		return false
	}
	p.conns[c.fd] = c
	return true
}

// forget unregisters c's socket; it runs before the socket is closed, so
// its number cannot belong to another connection yet.
func (p *parker) forget(c *conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conns[c.fd] == c {
		_ = syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, int(c.fd), nil)
		delete(p.conns, c.fd)
	}
}

func (p *parker) loop() {
	events := make([]syscall.EpollEvent, 128)
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			return
		}
		for i := range events[:n] {
			if events[i].Fd == int32(p.pipe[0]) {
				p.closeFDs()
				return
			}
			p.mu.Lock()
			c := p.conns[events[i].Fd]
			p.mu.Unlock()
			if c != nil {
				c.wake() // outside p.mu: wake takes the connection's lock
			}
		}
	}
}

// socketFD returns the connection's socket number, or -1 when it has none
// to watch (a WebSocket connection).
func socketFD(c *conn) int32 {
	rc := c.raw
	if rc == nil {
		sc, ok := c.nc.(syscall.Conn)
		if !ok {
			return -1
		}
		var err error
		if rc, err = sc.SyscallConn(); err != nil {
			return -1
		}
	}
	fd := int32(-1)
	_ = rc.Control(func(u uintptr) { fd = int32(u) })
	return fd
}

// parkTimer arms the keepalive timer of a parked connection. wmu held.
func (c *conn) parkTimer(d time.Duration) {
	if c.ptimer == nil {
		c.ptimer = time.AfterFunc(d, c.wake)
		return
	}
	c.ptimer.Reset(d)
}
