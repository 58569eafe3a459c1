package broker

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// listener accepts TCP connections for the engine. Unlike the engine's own
// TCP listener it bounds the time from accept through the TLS handshake to
// CONNECT (the engine replaces the deadline with the keepalive one once
// CONNECT is read), and it enforces max_connections per listener.
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

	// clients is the engine's wait group for its clients, which the engine
	// adds to inside each connection's goroutine. serve adds to it first,
	// under gate, so that no addition races with the engine's Wait at
	// shutdown (the race detector's "Add concurrent with Wait") and Wait
	// covers every connection handed over before stop.
	clients  *sync.WaitGroup
	gate     sync.Mutex
	stopping bool

	ln     net.Listener
	wsq    *connQueue   // websockets: connections for the HTTP server
	http   *http.Server // websockets: reads the upgrade
	active atomic.Int64
	closed atomic.Bool
	wg     sync.WaitGroup
}

var _ listeners.Listener = (*listener)(nil)

func (l *listener) ID() string { return l.id }

func (l *listener) Protocol() string {
	if l.ws {
		return "ws"
	}
	return "tcp"
}

func (l *listener) Address() string {
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init opens the socket.
func (l *listener) Init(*slog.Logger) error {
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

// Serve accepts connections until Close.
func (l *listener) Serve(establish listeners.EstablishFn) {
	if l.ws {
		l.startWebSocket(func(c net.Conn, remote string) { l.serve(c, remote, establish) })
	}
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
		l.wg.Add(1)
		go l.handshake(conn, establish)
	}
}

// handshake runs the TLS handshake and then hands the connection to a new
// goroutine for the engine: the handshake's deep stack (certificate
// verification, ECDSA) ends with this goroutine instead of staying with
// every idle connection.
func (l *listener) handshake(conn net.Conn, establish listeners.EstablishFn) {
	done := func() {
		l.active.Add(-1)
		if l.globalMax > 0 {
			l.global.Add(-1)
		}
		l.wg.Done()
	}
	remote := conn.RemoteAddr().String()
	limit := time.Now().Add(l.timeout)
	_ = conn.SetDeadline(limit)
	if l.tls == nil {
		if l.ws {
			l.toHTTP(conn, limit, done)
			return
		}
		defer done()
		l.serve(conn, remote, establish)
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
	go func() {
		defer done()
		l.serve(tc, remote, establish)
	}()
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

// serve runs the engine on an open (and, for TLS, handshaken) connection.
func (l *listener) serve(conn net.Conn, remote string, establish listeners.EstablishFn) {
	if !l.enter() {
		conn.Close()
		return
	}
	defer l.leave()
	if err := establish(l.id, &connectGuard{Conn: conn}); err != nil && !errors.Is(err, net.ErrClosed) {
		if before, ok := beforeConnect(err); ok {
			// Nothing MQTT was said: a port probe (EOF) stays quiet; a TLS
			// client on a plain port, an HTTP request or garbage is worth
			// a line, as mosquitto logs its protocol errors.
			if errors.Is(err, io.EOF) {
				l.log.Debug("connection closed before CONNECT", "listener", l.id, "remote", remote)
			} else {
				l.m.refuse(connectRefusal(err))
				l.log.Info("client refused: no valid CONNECT", "listener", l.id, "remote", remote, "reason", before)
			}
		} else {
			l.log.Debug("connection ended", "listener", l.id, "remote", remote, "error", err)
		}
	}
	conn.Close()
}

// enter registers a connection with the engine's wait group, or reports
// false once the broker is stopping.
func (l *listener) enter() bool {
	l.gate.Lock()
	defer l.gate.Unlock()
	if l.stopping {
		return false
	}
	if l.clients != nil {
		l.clients.Add(1)
	}
	return true
}

func (l *listener) leave() {
	if l.clients != nil {
		l.clients.Done()
	}
}

// stop hands no more connections to the engine; the broker calls it
// before the engine's Close waits for its clients.
func (l *listener) stop() {
	l.gate.Lock()
	l.stopping = true
	l.gate.Unlock()
}

// beforeConnect reports whether the engine's error came before a CONNECT
// was read, and in words why.
func beforeConnect(err error) (string, bool) {
	msg := err.Error()
	if !strings.HasPrefix(msg, "read connection: ") {
		return "", false
	}
	msg = strings.TrimPrefix(msg, "read connection: ")
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		msg = "no CONNECT within the connect timeout"
	case strings.Contains(msg, "malformed packet"), strings.Contains(msg, "first packet must be a connect"):
		msg = "not MQTT (a TLS client on a plain port, HTTP, or another protocol): " + msg
	}
	return msg, true
}

// connectRefusal sorts a connection that sent no valid CONNECT.
func connectRefusal(err error) refusal {
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return refusedConnectTimeout
	case errors.Is(err, errConnectTooLarge):
		return refusedConnectTooLarge
	}
	return refusedNotMQTT
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

// Close stops accepting and closes the listener's clients.
func (l *listener) Close(closeClients listeners.CloseFn) {
	if l.closed.Swap(true) {
		return
	}
	if l.ln != nil {
		l.ln.Close()
	}
	if l.http != nil {
		l.http.Close() // also closes wsq and connections not yet upgraded
	}
	closeClients(l.id)
}

// MaxConnectSize bounds the remaining length of a CONNECT, the one packet a
// client sends before it is authenticated. The engine allocates a packet's
// whole remaining length before it reads the packet, so without this bound
// a client that has not logged in could make it hold up to 256 MB per
// connection. 100000 bytes is mosquitto 2.1's packet_max_connect: a CONNECT
// carries a client id, a username, a password and a will, a few KB in
// practice. Later packets keep max_packet_size as their only limit.
const MaxConnectSize = 100000

// errConnectTooLarge ends a connection whose CONNECT says it is larger than
// MaxConnectSize.
var errConnectTooLarge = fmt.Errorf("CONNECT larger than %d bytes (the most a client that has not logged in may send)", MaxConnectSize)

// connectGuard reads a connection for the engine and checks the fixed
// header of the first packet as it goes by: a CONNECT whose remaining
// length passes MaxConnectSize is refused before the engine has the byte
// that completes the length (so the engine never allocates it). After the
// first fixed header it only passes reads through.
//
// It also follows the packets' framing, so that a v5 client whose packet
// is larger than max_packet_size gets DISCONNECT 0x95 as from mosquitto
// (the engine only closes the connection): tooLarge, set once the client
// is known to be v5, sends it.
type connectGuard struct {
	net.Conn
	done   bool // the first fixed header has been checked
	seen   int  // bytes of the first fixed header seen
	length int  // remaining length so far

	limit    uint32 // max packet size (the engine's rule: remaining length + 1)
	tooLarge func() // set with limit for v5 clients; called once
	skip     int    // bytes of the current packet's body still to come
	hdr      int    // bytes of the current fixed header seen
	hlen     int    // its remaining length so far
}

// errPacketTooLarge ends a v5 client's connection after DISCONNECT 0x95.
var errPacketTooLarge = errors.New("packet larger than max_packet_size")

// frame follows the framing over b and reports whether a packet header in
// it announces more than limit while tooLarge is set.
func (g *connectGuard) frame(b []byte) bool {
	for len(b) > 0 {
		if g.skip > 0 {
			k := min(g.skip, len(b))
			g.skip, b = g.skip-k, b[k:]
			continue
		}
		c := b[0]
		b = b[1:]
		g.hdr++
		if g.hdr == 1 {
			continue
		}
		g.hlen += int(c&0x7f) << (7 * (g.hdr - 2))
		if c&0x80 != 0 && g.hdr < 5 {
			continue
		}
		if g.tooLarge != nil && uint64(g.hlen)+1 > uint64(g.limit) {
			return true
		}
		g.skip, g.hdr, g.hlen = g.hlen, 0, 0
	}
	return false
}

func (g *connectGuard) Read(p []byte) (int, error) {
	n, err := g.Conn.Read(p)
	if g.frame(p[:n]) {
		g.tooLarge()
		g.tooLarge = nil
		return 0, errPacketTooLarge
	}
	if g.done {
		return n, err
	}
	for _, b := range p[:n] {
		g.seen++
		if g.seen == 1 {
			if b>>4 != 1 {
				g.done = true // not a CONNECT: the engine refuses it without reading on
				break
			}
			continue
		}
		g.length += int(b&0x7f) << (7 * (g.seen - 2))
		if g.length > MaxConnectSize {
			return 0, errConnectTooLarge
		}
		if b&0x80 == 0 || g.seen == 5 {
			g.done = true
			break
		}
	}
	return n, err
}
