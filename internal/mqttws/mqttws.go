// Package mqttws carries MQTT over a WebSocket (MQTT 5.0 section 6, 3.1.1
// section 6): an MQTT byte stream in binary messages, subprotocol "mqtt".
// Conn adapts a WebSocket to a net.Conn for the broker and for clients;
// Dial opens one as a client.
package mqttws

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// Subprotocols are the WebSocket subprotocols of MQTT: "mqtt" (3.1.1 and
// 5) and "mqttv3.1" (3.1).
var Subprotocols = []string{"mqtt", "mqttv3.1"}

// ErrNotBinary is returned by Read for a text message: MQTT travels in
// binary messages only.
var ErrNotBinary = errors.New("a WebSocket text message: MQTT travels in binary messages")

// Conn is an MQTT byte stream over a WebSocket: every Write is one binary
// message, reads run across messages. Deadlines and addresses are the
// underlying connection's. Writes must not run concurrently (the MQTT
// engine serialises them).
type Conn struct {
	net.Conn // the TCP or TLS connection underneath
	ws       *websocket.Conn
	r        io.Reader
}

// NewConn adapts an upgraded (or dialled) WebSocket.
func NewConn(ws *websocket.Conn) *Conn { return &Conn{Conn: ws.UnderlyingConn(), ws: ws} }

// Underlying returns the TCP or TLS connection under the WebSocket.
func (c *Conn) Underlying() net.Conn { return c.Conn }

func (c *Conn) Read(p []byte) (int, error) {
	for {
		if c.r == nil {
			op, r, err := c.ws.NextReader()
			if err != nil {
				return 0, err
			}
			if op != websocket.BinaryMessage {
				return 0, ErrNotBinary
			}
			c.r = r
		}
		n, err := c.r.Read(p)
		if errors.Is(err, io.EOF) {
			c.r = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

func (c *Conn) Write(p []byte) (int, error) {
	if err := c.ws.WriteMessage(websocket.BinaryMessage, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Close sends a WebSocket close frame (best effort) and closes the
// connection.
func (c *Conn) Close() error {
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	return c.Conn.Close()
}

// Dial opens a WebSocket to url (ws:// or wss://, with its path) asking for
// the mqtt subprotocol. conf is the TLS configuration for wss (nil: the
// system's roots and the URL's host name).
func Dial(ctx context.Context, url string, conf *tls.Config) (*Conn, error) {
	d := websocket.Dialer{Subprotocols: []string{"mqtt"}, TLSClientConfig: conf, HandshakeTimeout: 10 * time.Second}
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
			return nil, fmt.Errorf("%s answered HTTP %s instead of a WebSocket upgrade (wrong path, or not a WebSocket listener?)", url, resp.Status)
		}
		return nil, err
	}
	return NewConn(ws), nil
}
