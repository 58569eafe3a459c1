package engine

import (
	"bufio"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// conn is one client connection. Its one goroutine (serve) reads and
// handles packets; whatever goroutine produces a packet for it (its own,
// or a publisher's) appends it to pend under wmu and then flushes: the
// first to find pend non-empty writes it, with a write deadline, and keeps
// writing until pend is empty, so writes combine under load and nothing is
// kept while idle.
type conn struct {
	s    *Server
	nc   net.Conn
	l    *Listener
	done chan struct{}

	// Reader side, the serve goroutine's. rd reads from a pooled
	// bufio.Reader lent while the connection is busy (none while idle).
	rd       mqttwire.Reader
	rb       *readBuf
	raw      syscall.RawConn // the socket under a TLS connection (waitTLS)
	rdl      time.Time       // the read deadline arm set
	buffered bool            // waitTLS read a byte crypto/tls had buffered
	src      firstByte
	version  byte
	client   *Client
	sess     *session
	ka       time.Duration // read deadline: 1.5 x keepalive, 0 none
	aliases  map[uint16]string
	will     *Message
	delay    uint32 // will delay interval (s)
	maxOut   int    // the client's Maximum Packet Size, 0 none
	normal   bool   // the client sent DISCONNECT 0x00: no will
	// held are PUBACKs waiting for Durable: while a client's QoS 1
	// publishes are already buffered, their acknowledgements wait for one
	// Durable call for the batch (releaseHeld).
	held []heldAck

	wmu      sync.Mutex
	pend     []byte
	flushing bool
	closing  bool // close once pend is written
	closed   bool
	stop     bool  // the reader is to stop (takeover, shutdown)
	stopErr  error // why, once stop is set (nil: the server shuts down)

	takenOver atomic.Bool

	// Parking (park_linux.go): fd is the socket the parker watches (-1:
	// none); parked, under wmu, says no goroutine serves the connection;
	// ptimer wakes it at its keepalive deadline; resumed tells the new
	// goroutine to read on with the deadline set before.
	fd      int32
	parked  bool
	ptimer  *time.Timer
	resumed bool
}

// firstByte is what the pooled bufio.Reader reads from: the byte that
// ended the idle wait, then the connection.
type firstByte struct {
	c   net.Conn
	one [1]byte
	b   byte
	has bool
}

func (f *firstByte) Read(p []byte) (int, error) {
	if f.has && len(p) > 0 {
		p[0], f.has = f.b, false
		return 1, nil
	}
	return f.c.Read(p)
}

// readBuf is what a busy connection borrows: the bufio.Reader and the
// packet body buffer.
type readBuf struct {
	br   *bufio.Reader
	body []byte
	pkt  mqttwire.Packet
}

var readPool = sync.Pool{New: func() any { return &readBuf{br: bufio.NewReaderSize(nil, 2048), body: make([]byte, 0, 1024)} }}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// maxPooled is the largest buffer given back to a pool.
const maxPooled = 64 << 10

func (c *conn) serve() { c.finish(c.run()) }

// resume serves a parked connection again (wake).
func (c *conn) resume() { c.finish(c.loop(false, time.Time{})) }

// finish ends the goroutine, and the connection unless it was parked
// (then the goroutine must not touch the connection: another may serve
// it already).
func (c *conn) finish(err error) {
	s := c.s
	if err == errParked {
		s.wg.Done()
		return
	}
	defer s.wg.Done()
	defer close(c.done)
	c.release()
	c.end(err)
	c.wmu.Lock()
	c.closing = true
	c.wmu.Unlock()
	c.flush()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	if c.l.Closed != nil {
		c.l.Closed()
	}
}

var errTakenOver = errors.New("session taken over")

// run reads packets until the connection ends. Its frame and the wait's
// are kept small: the stack a connection keeps while idle is what the
// wait needs (the GC shrinks the rest).
func (c *conn) run() error {
	c.fd = -1
	deadline := time.Now().Add(c.s.opts.ConnectTimeout)
	if err := c.start(deadline); err != nil {
		return err
	}
	if !c.s.opts.NoParking {
		c.fd = socketFD(c)
	}
	return c.loop(true, deadline)
}

// errParked: the goroutine leaves a parked connection.
var errParked = errors.New("parked")

// loop reads and handles packets until the connection ends or is parked.
func (c *conn) loop(first bool, deadline time.Time) error {
	for {
		// A resumed connection reads first: it was woken because there is
		// something to read (or to end).
		woken := c.resumed
		if woken {
			c.resumed = false
			if err := c.rearm(); err != nil {
				return err
			}
		} else if err := c.arm(first, deadline); err != nil {
			return err
		}
		if c.rb == nil || c.rb.br.Buffered() == 0 {
			c.releaseHeld()
			c.release() // idle: give the buffers back before waiting
			if !first && !woken && c.park() {
				return errParked
			}
			if err := c.wait(); err != nil {
				err = c.readErr(err)
				if first {
					c.refusedBefore(err)
				}
				return err
			}
			c.borrow()
		}
		if err := c.packet(first); err != nil {
			return err
		}
		first = false
	}
}

func (c *conn) start(deadline time.Time) error {
	c.src.c = c.nc
	c.rd.Server = true
	c.rd.MaxSize = c.s.opts.MaxConnectSize
	if m := c.s.opts.MaxPacketSize; m > 0 && m < c.rd.MaxSize {
		c.rd.MaxSize = m
	}
	if tc, ok := c.nc.(*tls.Conn); ok {
		_ = tc.SetDeadline(deadline)
		if err := tc.Handshake(); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		_ = tc.SetWriteDeadline(time.Time{})
		c.raw = rawOf(tc)
	}
	return nil
}

// arm sets the read deadline (CONNECT, then keepalive), unless the reader
// is to stop.
func (c *conn) arm(first bool, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.stopped(); err != nil {
		return err
	}
	switch {
	case first:
		c.rdl = deadline
	case c.ka > 0:
		c.rdl = time.Now().Add(c.ka)
	default:
		c.rdl = time.Time{}
	}
	_ = c.nc.SetReadDeadline(c.rdl)
	return nil
}

// stopped is why the reader is to stop (taken over, or stopReason), nil
// if it is not. wmu held.
func (c *conn) stopped() error {
	if !c.stop {
		return nil
	}
	if c.takenOver.Load() {
		return errTakenOver
	}
	return c.stopReason()
}

// stopReason is why the reader stops, once stop is set.
func (c *conn) stopReason() error {
	if c.stopErr != nil {
		return c.stopErr
	}
	return errShutdown
}

// rearm sets the deadline the last arm set, for a resumed connection.
func (c *conn) rearm() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.stopped(); err != nil {
		return err
	}
	_ = c.nc.SetReadDeadline(c.rdl)
	return nil
}

// park hands an idle connection to the parker and reports whether the
// goroutine is to leave it. Not when crypto/tls holds bytes already read
// (then they are in src for wait), nor while the connection is stopping.
func (c *conn) park() bool {
	if c.fd < 0 {
		return false
	}
	p := c.s.parker()
	if p == nil {
		return false
	}
	if c.raw != nil {
		// crypto/tls may hold decrypted bytes the socket no longer shows:
		// a read with a deadline already past takes them, or times out
		// without reading the socket.
		c.wmu.Lock()
		if c.stop {
			c.wmu.Unlock()
			return false
		}
		_ = c.nc.SetReadDeadline(time.Unix(1, 0))
		c.wmu.Unlock()
		n, err := c.nc.Read(c.src.one[:])
		if n == 1 {
			c.src.b, c.src.has = c.src.one[0], true
		}
		var ne net.Error
		if n == 1 || !errors.As(err, &ne) || !ne.Timeout() {
			_ = c.rearm()
			return false // wait has the byte, or reads the error again
		}
	}
	c.wmu.Lock()
	if c.stop || c.closing {
		c.wmu.Unlock()
		return false
	}
	c.parked = true
	if !c.rdl.IsZero() {
		c.parkTimer(time.Until(c.rdl))
	}
	c.wmu.Unlock()
	if p.arm(c) {
		return true
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if !c.parked {
		return true // woken meanwhile: another goroutine serves it
	}
	c.parked = false
	if c.ptimer != nil {
		c.ptimer.Stop()
	}
	_ = c.nc.SetReadDeadline(c.rdl)
	return false
}

// wake starts a goroutine for a parked connection (readiness, its
// keepalive timer, a shutdown); the first caller does, the rest find it
// awake.
func (c *conn) wake() {
	c.wmu.Lock()
	c.wakeLocked()
	c.wmu.Unlock()
}

// wakeLocked is wake with wmu held. The WaitGroup is added to under wmu,
// so that Close, which stops every connection under its wmu before it
// waits, never waits while a parked connection could still be woken.
func (c *conn) wakeLocked() {
	if !c.parked {
		return
	}
	c.parked = false
	if c.ptimer != nil {
		c.ptimer.Stop()
	}
	c.resumed = true
	c.s.wg.Add(1)
	go c.resume()
}

// wait reads the next packet's first byte with no buffer of the
// connection's own.
func (c *conn) wait() error {
	if c.src.has {
		return nil // park read it from crypto/tls
	}
	if c.raw != nil {
		if err := c.waitTLS(); err != nil || c.buffered {
			c.buffered = false
			return err
		}
	}
	for {
		n, err := c.nc.Read(c.src.one[:])
		if n == 1 {
			c.src.b, c.src.has = c.src.one[0], true
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// waitTLS waits for the next record of an idle TLS connection on its
// socket, with a shallow stack: first it asks crypto/tls, with a deadline
// already past, whether it has bytes buffered (a timeout leaves a
// crypto/tls connection usable: only write timeouts break it); if not, it
// waits until the socket is readable. The read after it is crypto/tls's.
func (c *conn) waitTLS() error {
	c.wmu.Lock()
	if c.stop {
		c.wmu.Unlock()
		return c.stopReason()
	}
	_ = c.nc.SetReadDeadline(time.Unix(1, 0))
	c.wmu.Unlock()
	n, err := c.nc.Read(c.src.one[:])
	c.wmu.Lock()
	if !c.stop {
		_ = c.nc.SetReadDeadline(c.rdl)
	}
	stop := c.stop
	c.wmu.Unlock()
	if n == 1 {
		c.src.b, c.src.has = c.src.one[0], true
		c.buffered = true
		return nil
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	if stop {
		return c.stopReason()
	}
	return waitReadable(c.raw)
}

func (c *conn) borrow() {
	rb := readPool.Get().(*readBuf)
	rb.br.Reset(&c.src)
	c.rd.Reset(rb.br)
	rb.body = c.rd.SwapBuffer(rb.body)
	c.rb = rb
}

// release gives the read buffers back to the pool, keeping none while
// idle.
func (c *conn) release() {
	rb := c.rb
	if rb == nil {
		return
	}
	c.rb = nil
	rb.body = c.rd.SwapBuffer(nil)
	if cap(rb.body) > maxPooled {
		rb.body = make([]byte, 0, 1024)
	}
	rb.br.Reset(nil)
	c.rd.Reset(nil)
	readPool.Put(rb)
}

// packet reads and handles one packet.
func (c *conn) packet(first bool) error {
	p := &c.rb.pkt
	if first {
		// Not a CONNECT: refused at its first byte, without waiting for
		// the length it announces (HTTP, TLS on a plain port).
		if b, err := c.rb.br.Peek(1); err == nil && b[0]>>4 != mqttwire.CONNECT {
			err := fmt.Errorf("%w: the first packet is not CONNECT", ErrNotMQTT)
			c.refusedBefore(err)
			return err
		}
	}
	if err := c.rd.Read(p); err != nil {
		if first && p.Type == mqttwire.CONNECT {
			c.refuseConnect(p, err)
		}
		err = c.readErr(err)
		if first {
			c.refusedBefore(err)
		}
		return err
	}
	if first {
		c.rd.MaxSize = c.s.opts.MaxPacketSize
		return c.connect(p)
	}
	return c.handle(p)
}

var errShutdown = errors.New("server shutting down")

func (c *conn) readErr(err error) error {
	if c.takenOver.Load() {
		return errTakenOver
	}
	c.wmu.Lock()
	stop := c.stop
	c.wmu.Unlock()
	if stop {
		return c.stopReason()
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		if c.version == 0 {
			return ErrConnectTimeout
		}
		return errors.New("keepalive timeout") // mosquitto 2.0 and 2.1 send no DISCONNECT 0x8D
	}
	var pe *mqttwire.Error
	if errors.As(err, &pe) && c.version != 0 {
		c.disconnect(pe.Code)
	}
	return err
}

type heldAck struct {
	id   uint16
	code mqttwire.ReasonCode
}

// maxHeld bounds the acknowledgements one Durable call covers.
const maxHeld = 64

// hold keeps a QoS 1 publish's PUBACK until the batch is durable.
func (c *conn) hold(id uint16, code mqttwire.ReasonCode) {
	c.held = append(c.held, heldAck{id, code})
	if len(c.held) >= maxHeld {
		c.releaseHeld()
	}
}

// releaseHeld makes the batch durable and sends its PUBACKs, in order.
func (c *conn) releaseHeld() {
	if len(c.held) == 0 {
		return
	}
	c.s.opt.durable.Durable(c.client)
	for _, a := range c.held {
		c.sendAck(mqttwire.PUBACK, a.id, a.code)
	}
	c.held = nil
	c.flush()
}

// ErrConnectTimeout: no CONNECT within Options.ConnectTimeout.
var ErrConnectTimeout = errors.New("no CONNECT within the connect timeout")

// ErrNotMQTT: the first packet was not a CONNECT, or not one the decoder
// could read.
var ErrNotMQTT = errors.New("not MQTT (a TLS client on a plain port, HTTP, or another protocol)")

// refusedBefore reports a connection that ended before its CONNECT was
// read (Refused with code 0), but a port probe's silent close.
func (c *conn) refusedBefore(err error) {
	if c.s.opt.refused == nil || errors.Is(err, io.EOF) || errors.Is(err, errShutdown) {
		return
	}
	var pe *mqttwire.Error
	if errors.As(err, &pe) && pe.Code != mqttwire.PacketTooLarge && !errors.Is(err, ErrNotMQTT) {
		err = fmt.Errorf("%w: %w", ErrNotMQTT, err)
	}
	c.s.opt.refused.Refused(&ConnectRequest{Listener: c.l.Name, Remote: c.nc.RemoteAddr()}, 0, err)
}

// refuseConnect answers a CONNECT the decoder refused, as mosquitto 2.1
// does: an unsupported level with CONNACK 1 (or MQTT 5's 0x84 above 5);
// any other bad CONNECT just closes the connection, at every level.
func (c *conn) refuseConnect(p *mqttwire.Packet, err error) {
	if mqttwire.CodeOf(err) != mqttwire.UnsupportedProtocolVersion {
		return
	}
	if p.Version <= 4 || c.s.opts.Mosquitto20 {
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.CONNACK, Version: 4, Reason: 1})
	} else {
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.CONNACK, Version: 5, Reason: mqttwire.UnsupportedProtocolVersion})
	}
	c.flush()
}

// disconnect tells an MQTT 5 client why it is being closed (after the
// PUBACKs held for it).
func (c *conn) disconnect(code mqttwire.ReasonCode) {
	c.releaseHeld()
	if c.version == 5 {
		c.sendRaw(&mqttwire.Packet{Type: mqttwire.DISCONNECT, Version: 5, Reason: code})
		c.flush()
	}
}

// shutdown closes the connection from another goroutine: an MQTT 5 client
// first gets DISCONNECT with code; the reader stops at once.
func (c *conn) shutdown(code mqttwire.ReasonCode) {
	c.wmu.Lock()
	if c.stop {
		c.wmu.Unlock()
		return
	}
	c.stop = true
	if code != 0 && code != mqttwire.ServerShuttingDown {
		c.stopErr = fmt.Errorf("disconnected by the broker (reason code 0x%02X)", byte(code))
	}
	if c.version == 5 && !c.closed && code != 0 {
		c.pend = (&mqttwire.Packet{Type: mqttwire.DISCONNECT, Version: 5, Reason: code}).Append(c.getPend())
	}
	c.closing = true
	_ = c.nc.SetReadDeadline(time.Now())
	c.wakeLocked() // a parked connection needs a goroutine to end
	c.wmu.Unlock()
	c.flush()
}

func (c *conn) getPend() []byte {
	if c.pend == nil {
		c.pend = (*bufPool.Get().(*[]byte))[:0]
	}
	return c.pend
}

// sendRaw appends p (at the connection's version) to pend. false: the
// connection is closed.
func (c *conn) sendRaw(p *mqttwire.Packet) bool {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || c.closing {
		return false
	}
	c.pend = p.Append(c.getPend())
	return true
}

func (c *conn) sendAck(typ byte, id uint16, code mqttwire.ReasonCode) {
	p := mqttwire.Packet{Type: typ, Version: c.version, ID: id, Reason: code}
	c.sendRaw(&p)
}

// errTooBig: a PUBLISH over the client's Maximum Packet Size, which is
// not sent (MQTT 5 3.1.2.11.4) but dropped.
var errTooBig = errors.New("message larger than the client's Maximum Packet Size")

// sendPublish appends d's PUBLISH. qos0 makes it droppable when pend is
// over MaxPending. The caller holds the session's mu and flushes.
func (c *conn) sendPublish(d *delivery, dup, qos0 bool) bool {
	return c.appendPublish(d, dup, qos0) == nil
}

// appendPublish is sendPublish telling why it did not: errTooBig, or
// errNotSent (closing, or over MaxPending).
func (c *conn) appendPublish(d *delivery, dup, qos0 bool) error {
	m := d.m
	p := mqttwire.Packet{Type: mqttwire.PUBLISH, Version: c.version, Dup: dup, QoS: d.qos, Retain: d.retain, ID: d.id}
	t := m.Topic
	if !c.s.opts.Mosquitto20 { // 2.0.11 leaves the mount point on
		t = strings.TrimPrefix(t, c.l.MountPoint)
	}
	p.Topic = unsafeBytes(t)
	p.Payload = m.Payload
	if c.version == 5 {
		var up [4]mqttwire.UserProperty
		var ids [1]uint32
		p.Props.User = up[:0]
		if mp := m.Props; mp != nil {
			if mp.HasPayloadFormat {
				p.Props.PayloadFormat = mp.PayloadFormat
				p.Props.Set(mqttwire.PropPayloadFormat)
			}
			if mp.MessageExpiry > 0 {
				left := time.Duration(mp.MessageExpiry)*time.Second - c.s.now().Sub(m.Created)
				p.Props.MessageExpiry = uint32(max(1, (left+time.Second-1)/time.Second))
				p.Props.Set(mqttwire.PropMessageExpiry)
			}
			if mp.ContentType != "" {
				p.Props.ContentType = unsafeBytes(mp.ContentType)
				p.Props.Set(mqttwire.PropContentType)
			}
			if mp.ResponseTopic != "" {
				p.Props.ResponseTopic = unsafeBytes(mp.ResponseTopic)
				p.Props.Set(mqttwire.PropResponseTopic)
			}
			if mp.CorrelationData != nil {
				p.Props.CorrelationData = mp.CorrelationData
				p.Props.Set(mqttwire.PropCorrelationData)
			}
			for _, u := range mp.User {
				p.Props.User = append(p.Props.User, mqttwire.UserProperty{Key: unsafeBytes(u.Key), Value: unsafeBytes(u.Value)})
			}
		}
		if d.subID != 0 {
			ids[0] = d.subID
			p.Props.SubscriptionIDs = ids[:]
		}
	}
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closed || c.closing || qos0 && len(c.pend) > c.s.opts.MaxPending {
		if qos0 {
			c.s.count.dropped.Add(1)
		}
		return errNotSent
	}
	start := len(c.pend)
	c.pend = p.Append(c.getPend())
	if c.maxOut > 0 && len(c.pend)-start > c.maxOut {
		c.pend = c.pend[:start]
		c.s.count.dropped.Add(1)
		return errTooBig
	}
	c.s.count.sent.Add(1)
	return nil
}

var errNotSent = errors.New("connection closing or its queue full")

// flush writes pend unless another goroutine is writing it already (it
// will write what was appended meanwhile too).
func (c *conn) flush() {
	c.wmu.Lock()
	if c.flushing {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	c.writeOut()
}

// kick is flush for a producer that is not the connection's own goroutine
// (a publisher delivering to a subscriber): the write runs in a goroutine
// of its own, so that no publisher waits on a subscriber's full socket
// (its QoS 0 messages beyond MaxPending are dropped meanwhile, its QoS 1/2
// wait behind the window). None is started while one is writing.
func (c *conn) kick() {
	c.wmu.Lock()
	if c.flushing || len(c.pend) == 0 || c.closed {
		c.wmu.Unlock()
		return
	}
	c.flushing = true
	c.wmu.Unlock()
	go func() {
		c.wmu.Lock()
		c.writeOut()
	}()
}

// writeOut writes pend until it is empty; wmu is held and flushing set,
// and both are given up on return.
func (c *conn) writeOut() {
	for len(c.pend) > 0 && !c.closed {
		buf := c.pend
		c.pend = nil
		c.wmu.Unlock()
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.s.opts.WriteTimeout))
		_, err := c.nc.Write(buf)
		if cap(buf) <= maxPooled {
			buf = buf[:0]
			bufPool.Put(&buf)
		}
		c.wmu.Lock()
		if err != nil {
			c.closing = true
			if !c.stop {
				c.stopErr = fmt.Errorf("write to the client failed: %w", err)
			}
			c.stop = true
			_ = c.nc.SetReadDeadline(time.Now())
			break
		}
	}
	if c.closing && !c.closed {
		c.closed = true
		if c.pend != nil {
			c.pend = nil
		}
		if c.fd >= 0 {
			if p := c.s.parker(); p != nil {
				p.forget(c) // before the socket's number can be another's
			}
		}
		c.nc.Close()
		c.wakeLocked()
	}
	c.flushing = false
	c.wmu.Unlock()
}
