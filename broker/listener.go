package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
)

// listener accepts TCP connections for the engine. It bounds the time
// from accept through the TLS handshake (the engine then bounds the
// CONNECT), enforces max_connections per listener and
// global_max_connections, and runs the handshake in a goroutine of its
// own, so that its deep stack (certificate verification, ECDSA) ends with
// it instead of staying with every idle connection.
type listener struct {
	id      string
	network string // tcp, tcp4 (socket_domain ipv4) or tcp6
	addr    string
	tls     *tlsState
	timeout time.Duration
	max     int64 // <= 0: unlimited
	// global counts the connections of every listener, globalMax bounds
	// them (mosquitto 2.1's global_max_connections; <= 0: unlimited).
	global    *atomic.Int64
	globalMax int64
	log       *slog.Logger
	ws        bool             // protocol websockets (websocket.go)
	origins   []string         // http_origin: allowed page origins (none: any)
	m         *listenerMetrics // nil: no metrics
	bm        *brokerMetrics   // nil: no metrics

	srv *engine.Server
	el  engine.Listener // what the engine serves this listener's connections with

	ln       net.Listener
	wsq      *connQueue   // websockets: connections for the HTTP server
	http     *http.Server // websockets: reads the upgrade
	active   atomic.Int64
	accepted atomic.Uint64 // connections accepted since start
	closed   atomic.Bool
	wg       sync.WaitGroup // the accept loop
}

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// open opens the socket.
func (l *listener) open() error {
	network := l.network
	if network == "" {
		network = "tcp"
	}
	ln, err := net.Listen(network, l.addr)
	if err != nil {
		return err
	}
	l.ln = ln
	return nil
}

// start accepts connections until close.
func (l *listener) start() {
	if l.ws {
		l.startWebSocket(func(c net.Conn, remote string) { l.serve(c, remote, nil) })
	} else {
		l.el.Closed = l.done
	}
	l.wg.Add(1)
	go l.accept()
}

func (l *listener) accept() {
	defer l.wg.Done()
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if l.closed.Load() || errors.Is(err, net.ErrClosed) {
				return
			}
			l.log.Warn("accept failed", "listener", l.id, "error", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		if l.max > 0 && l.active.Load() >= l.max {
			l.m.refuse(refusedMaxConnections)
			l.log.Warn("connection refused: max_connections reached", "listener", l.id, "remote", conn.RemoteAddr().String(), "max_connections", l.max)
			conn.Close()
			continue
		}
		if l.globalMax > 0 && l.global.Add(1) > l.globalMax {
			l.global.Add(-1)
			l.m.refuse(refusedMaxConnections)
			l.log.Warn("connection refused: global_max_connections reached", "listener", l.id, "remote", conn.RemoteAddr().String(), "global_max_connections", l.globalMax)
			conn.Close()
			continue
		}
		l.active.Add(1)
		l.accepted.Add(1)
		go l.handshake(conn)
	}
}

// done counts a connection out (Closed of the engine's listener, or the
// WebSocket connection's close).
func (l *listener) done() {
	l.active.Add(-1)
	if l.globalMax > 0 {
		l.global.Add(-1)
	}
}

// handshake runs the TLS handshake and then hands the connection to a new
// goroutine for the engine: the handshake's deep stack (certificate
// verification, ECDSA) ends with this goroutine instead of staying with
// every idle connection.
func (l *listener) handshake(conn net.Conn) {
	done := l.done
	remote := conn.RemoteAddr().String()
	limit := time.Now().Add(l.timeout)
	_ = conn.SetDeadline(limit)
	if l.tls == nil {
		if l.ws {
			l.toHTTP(conn, limit, done)
			return
		}
		l.serve(conn, remote, done)
		return
	}
	// The connection's deadline bounds the handshake (a context would cost
	// a goroutine per handshake).
	tc := tls.Server(conn, l.tls.conf)
	var start time.Time
	if l.bm != nil {
		start = time.Now()
	}
	err := tc.Handshake()
	if errors.Is(err, io.EOF) {
		// a port probe or health check: nothing was said
		l.log.Debug("connection closed before the TLS handshake", "listener", l.id, "remote", remote)
		tc.Close()
		done()
		return
	}
	if err != nil {
		l.m.refuse(handshakeRefusal(err))
		l.log.Info("client refused: TLS handshake failed", "listener", l.id, "remote", remote, "reason", handshakeReason(err))
		tc.Close()
		done()
		return
	}
	if l.bm != nil {
		l.bm.handshake(time.Since(start))
	}
	if l.ws {
		l.toHTTP(tc, limit, done)
		return
	}
	l.serve(tc, remote, done)
}

// toHTTP hands a WebSocket listener's connection to its HTTP server; done
// runs when the connection is closed.
func (l *listener) toHTTP(c net.Conn, limit time.Time, done func()) {
	oc := &onceCloser{Conn: c, done: done}
	// An HTTP request starts with a method in capitals; anything else (an
	// MQTT CONNECT, 0x10) gets a short answer instead of a wait for headers.
	first := make([]byte, 1)
	if _, err := io.ReadFull(c, first); err != nil {
		oc.Close()
		return
	}
	if first[0] < 'A' || first[0] > 'Z' {
		l.m.refuse(refusedNotWebSocket)
		l.log.Info("client refused: not a WebSocket upgrade", "listener", l.id, "remote", c.RemoteAddr().String(),
			"reason", "it did not start with an HTTP request (an MQTT client on the WebSocket port?)")
		_, _ = io.WriteString(c, notHTTP)
		oc.Close()
		return
	}
	hc := &heldConn{Conn: &firstByteConn{Conn: oc, first: first}, limit: limit, held: true}
	if !l.wsq.push(hc) {
		hc.Close()
	}
}

// serve hands an open (and, for TLS, handshaken) connection to the
// engine, in a goroutine of the engine's. done, when not nil, counts it
// out if the engine has stopped (otherwise Closed does).
func (l *listener) serve(conn net.Conn, _ string, done func()) {
	if !l.srv.ServeConnListener(conn, &l.el) && done != nil {
		done()
	}
}

// handshakeReason turns a handshake error into words for the log.
func handshakeReason(err error) string {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "no TLS handshake within the connect timeout"
	case errors.Is(err, errRevoked):
		return "client certificate is revoked (crlfile)"
	}
	return err.Error()
}

// close stops accepting; the engine closes the connections.
func (l *listener) close() {
	if l.closed.Swap(true) {
		return
	}
	if l.ln != nil {
		l.ln.Close()
	}
	if l.http != nil {
		l.http.Close() // also closes wsq and connections not yet upgraded
	}
	l.wg.Wait()
}
