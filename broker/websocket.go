package broker

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"github.com/mqttctl/mqttctl/internal/mqttws"
)

// WebSocket listeners (protocol websockets) take the same path as MQTT
// listeners (accept, max_connections, the connect deadline, TLS with the
// listener's certificate, CRL and session tickets), then an HTTP/1.1
// upgrade to a WebSocket, whose binary messages carry MQTT. Any path is
// accepted, as mosquitto does; the subprotocol must be mqtt (or mqttv3.1).
// The Origin is checked only where the listener lists origins ("# mqttctl:
// http_origin", originAllowed); elsewhere, as in mosquitto, a browser page
// from any site can connect, and the broker's own authentication
// (password, client certificate) decides.

// connQueue is a net.Listener fed with connections that are already
// accepted (and TLS-handshaken): the HTTP server reads the upgrade from
// them.
type connQueue struct {
	conns chan net.Conn
	addr  net.Addr
	once  sync.Once
	done  chan struct{}
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{conns: make(chan net.Conn), addr: addr, done: make(chan struct{})}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.once.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// push hands a connection to the HTTP server; false once closed.
func (q *connQueue) push(c net.Conn) bool {
	select {
	case q.conns <- c:
		return true
	case <-q.done:
		return false
	}
}

// onceCloser runs done once, when the connection is first closed: the
// listener's count of open connections.
type onceCloser struct {
	net.Conn
	once sync.Once
	done func()
}

func (c *onceCloser) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.done)
	return err
}

// notHTTP is what a WebSocket listener answers a client that does not
// start with an HTTP request (an MQTT client on the wrong port, say).
const notHTTP = "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n" +
	"this is an MQTT over WebSocket endpoint (ws:// or wss://), not a plain MQTT port\n"

// firstByteConn gives back the byte read to tell HTTP from other protocols.
type firstByteConn struct {
	net.Conn
	first []byte
}

func (c *firstByteConn) Read(p []byte) (int, error) {
	if len(c.first) > 0 && len(p) > 0 {
		p[0] = c.first[0]
		c.first = nil
		return 1, nil
	}
	return c.Conn.Read(p)
}

// heldConn keeps the connect deadline (set at accept) while the HTTP server
// reads the upgrade: the server moves a connection's deadlines (to none
// while it waits for another request on a kept-alive connection), so
// without this a client that sent one request, answered 400, kept its
// max_connections slot for as long as it liked. Once the upgrade is done,
// release hands the deadline back (still the one set at accept: CONNECT
// must come within it too) and the engine may move it.
type heldConn struct {
	net.Conn
	limit time.Time
	mu    sync.Mutex
	held  bool
}

func (c *heldConn) clamp(t time.Time) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.held && (t.IsZero() || t.After(c.limit)) {
		return c.limit
	}
	return t
}

func (c *heldConn) SetDeadline(t time.Time) error      { return c.Conn.SetDeadline(c.clamp(t)) }
func (c *heldConn) SetReadDeadline(t time.Time) error  { return c.Conn.SetReadDeadline(c.clamp(t)) }
func (c *heldConn) SetWriteDeadline(t time.Time) error { return c.Conn.SetWriteDeadline(c.clamp(t)) }

// release ends the hold, leaving the connect deadline in place.
func (c *heldConn) release() {
	c.mu.Lock()
	c.held = false
	c.mu.Unlock()
	_ = c.Conn.SetDeadline(c.limit)
}

// originAllowed applies "# mqttctl: http_origin": a browser (which always
// sends Origin) must come from one of the listed origins; clients that send
// no Origin (not browsers) and listeners without the option are let
// through, as mosquitto does.
func (l *listener) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if len(l.origins) == 0 || origin == "" {
		return true
	}
	for _, o := range l.origins {
		// Exactly, as mosquitto 2.1 compares (confgen refuses list entries
		// with capitals, which no browser sends).
		if o == origin {
			return true
		}
	}
	return false // refused (HTTP 403) and logged in startWebSocket
}

// startWebSocket starts the HTTP server that upgrades the listener's
// connections.
func (l *listener) startWebSocket(establish func(net.Conn, string)) {
	refuse := func(w http.ResponseWriter, r *http.Request, status int, reason error) {
		// One request per connection: a refused one frees its slot.
		w.Header().Set("Connection", "close")
		if status == http.StatusForbidden {
			// The Upgrader's one 403: originAllowed said no. One line, not
			// the Upgrader's "request origin not allowed" as a bad upgrade.
			origin := r.Header.Get("Origin")
			l.m.refuse(refusedOrigin)
			l.log.Info("client refused: WebSocket from a page of another origin (not in this listener's http_origin)", "listener", l.id, "remote", r.RemoteAddr, "origin", origin)
			http.Error(w, "this MQTT over WebSocket endpoint does not accept pages from "+origin, status)
			return
		}
		l.m.refuse(refusedNotWebSocket)
		l.log.Info("client refused: not a WebSocket upgrade", "listener", l.id, "remote", r.RemoteAddr, "reason", reason.Error())
		http.Error(w, "this is an MQTT over WebSocket endpoint: "+reason.Error(), status)
	}
	up := &websocket.Upgrader{
		Subprotocols:    mqttws.Subprotocols,
		CheckOrigin:     l.originAllowed,
		ReadBufferSize:  1024,
		WriteBufferSize: 1024,
		Error:           refuse,
	}
	l.wsq = newConnQueue(l.ln.Addr())
	l.http = &http.Server{
		ReadHeaderTimeout: l.timeout,
		ErrorLog:          nil,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			// mosquitto (libwebsockets) serves MQTT only under the mqtt
			// or mqttv3.1 subprotocol: 2.0.11 drops an upgrade that asks
			// for others, and upgrades one that asks for none but never
			// answers its CONNECT (TestDifferentialOptions). serve refuses
			// both before the upgrade, saying why.
			if websocket.IsWebSocketUpgrade(r) && !slices.ContainsFunc(websocket.Subprotocols(r), func(p string) bool { return slices.Contains(mqttws.Subprotocols, p) }) {
				refuse(w, r, http.StatusBadRequest, errNoMQTTSubprotocol)
				return
			}
			c, err := up.Upgrade(w, r, nil)
			if err != nil {
				return // Error above answered and logged
			}
			if hc, ok := c.UnderlyingConn().(*heldConn); ok {
				hc.release()
			}
			var mc net.Conn = mqttws.NewConn(c)
			if tc, ok := tlsOf(c.UnderlyingConn()); ok {
				mc = &wssConn{Conn: mc, tc: tc} // the engine reads the client's certificate from it
			}
			establish(mc, r.RemoteAddr)
		}),
	}
	go l.http.Serve(l.wsq)
}

// errNoMQTTSubprotocol: the upgrade did not ask for MQTT.
var errNoMQTTSubprotocol = errors.New(`the upgrade does not ask for the "mqtt" subprotocol (Sec-WebSocket-Protocol: mqtt; MQTT 3.1: mqttv3.1), as MQTT over WebSocket requires and mosquitto enforces`)

// tlsOf returns the TLS connection of an MQTT or WebSocket connection.
func tlsOf(c net.Conn) (*tls.Conn, bool) {
	switch v := c.(type) {
	case *tls.Conn:
		return v, true
	case *mqttws.Conn:
		return tlsOf(v.Underlying())
	case *onceCloser:
		return tlsOf(v.Conn)
	case *firstByteConn:
		return tlsOf(v.Conn)
	case *heldConn:
		return tlsOf(v.Conn)
	case *wssConn:
		return v.tc, true
	}
	return nil, false
}

// wssConn is an MQTT over WebSocket connection over TLS: it gives the
// engine the TLS state of the connection under the WebSocket.
type wssConn struct {
	net.Conn
	tc *tls.Conn
}

// ConnectionState is the TLS state of the connection under the WebSocket.
func (c *wssConn) ConnectionState() tls.ConnectionState { return c.tc.ConnectionState() }
