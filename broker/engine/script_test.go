package engine_test

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// A script is what named clients send and what they read, run against the
// engine (and, in the differential test, mosquitto). Its transcript, one
// line per packet read, is what is compared.
type step struct {
	who   string
	dial  byte             // open the client's connection at this level
	port  int              // on this listener (index)
	send  *mqttwire.Packet // send this (Version filled in)
	raw   []byte           // or these bytes
	recv  int              // read this many packets
	quiet bool             // read nothing for quietFor (else record it)
	until bool             // read until the connection closes
	drop  bool             // close the connection without DISCONNECT
	sleep time.Duration
	do    func() // run this (engine-only tests)
}

const quietFor = 300 * time.Millisecond

type scriptClient struct {
	c net.Conn
	r *bufio.Reader
	v byte
}

// runScript runs steps against addr and returns the transcript.
func runScript(t *testing.T, addr string, steps []step) []string {
	return runScriptOn(t, []string{addr}, steps)
}

// runScriptOn runs steps against listeners addrs (step.port indexes it).
func runScriptOn(t *testing.T, addrs []string, steps []step) []string {
	t.Helper()
	clients := map[string]*scriptClient{}
	defer func() {
		for _, c := range clients {
			c.c.Close()
		}
	}()
	var out []string
	for i, s := range steps {
		c := clients[s.who]
		switch {
		case s.do != nil:
			s.do()
		case s.sleep > 0:
			time.Sleep(s.sleep)
		case s.dial != 0:
			nc, err := net.DialTimeout("tcp", addrs[s.port], 5*time.Second)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			clients[s.who] = &scriptClient{c: nc, r: bufio.NewReader(nc), v: s.dial}
		case c == nil:
			t.Fatalf("step %d: client %s not dialled", i, s.who)
		case s.send != nil || s.raw != nil:
			b := s.raw
			if s.send != nil {
				p := *s.send
				p.Version = c.v
				b = p.Append(nil)
			}
			_ = c.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.c.Write(b); err != nil {
				out = append(out, s.who+": write failed")
			}
		case s.recv > 0:
			for range s.recv {
				out = append(out, s.who+": "+readOne(c, 3*time.Second))
			}
		case s.quiet:
			if got := readOne(c, quietFor); got != "nothing" {
				out = append(out, s.who+": unexpected "+got)
			}
		case s.until:
			for {
				got := readOne(c, 10*time.Second) // 2.0.11 notices a keepalive timeout up to 5 s late
				out = append(out, s.who+": "+got)
				if got == "closed" || got == "nothing" {
					break
				}
			}
		case s.drop:
			c.c.Close()
			delete(clients, s.who)
		}
	}
	return out
}

func readOne(c *scriptClient, d time.Duration) string {
	_ = c.c.SetReadDeadline(time.Now().Add(d))
	head, body, err := mqttwire.ReadPacket(c.r, nil)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return "nothing"
		}
		return "closed"
	}
	var p mqttwire.Packet
	if err := p.Decode(head, body, c.v); err != nil {
		return fmt.Sprintf("undecodable %x %x: %v", head, body, err)
	}
	return describe(&p)
}

var typeNames = [...]string{"?", "CONNECT", "CONNACK", "PUBLISH", "PUBACK", "PUBREC", "PUBREL", "PUBCOMP",
	"SUBSCRIBE", "SUBACK", "UNSUBSCRIBE", "UNSUBACK", "PINGREQ", "PINGRESP", "DISCONNECT", "AUTH"}

// describe is a packet as the transcript shows it; an assigned client id
// shows as "assigned" (its value is the broker's choice).
func describe(p *mqttwire.Packet) string {
	var b strings.Builder
	b.WriteString(typeNames[p.Type])
	switch p.Type {
	case mqttwire.CONNACK:
		fmt.Fprintf(&b, " sp=%v rc=%#x", p.SessionPresent, byte(p.Reason))
	case mqttwire.PUBLISH:
		fmt.Fprintf(&b, " q%d", p.QoS)
		if p.Retain {
			b.WriteString(" retain")
		}
		if p.Dup {
			b.WriteString(" dup")
		}
		if p.QoS > 0 {
			fmt.Fprintf(&b, " id=%d", p.ID)
		}
		fmt.Fprintf(&b, " %s %q", p.Topic, p.Payload)
	case mqttwire.PUBACK, mqttwire.PUBREC, mqttwire.PUBREL, mqttwire.PUBCOMP:
		fmt.Fprintf(&b, " id=%d rc=%#x", p.ID, byte(p.Reason))
	case mqttwire.SUBACK, mqttwire.UNSUBACK:
		fmt.Fprintf(&b, " id=%d", p.ID)
		if len(p.Reasons) > 0 {
			fmt.Fprintf(&b, " %x", p.Reasons)
		}
	case mqttwire.DISCONNECT:
		fmt.Fprintf(&b, " rc=%#x", byte(p.Reason))
	}
	b.WriteString(props(&p.Props))
	return b.String()
}

func props(pr *mqttwire.Properties) string {
	var l []string
	add := func(id byte, name string, v any) {
		if pr.Has(id) {
			l = append(l, fmt.Sprintf("%s=%v", name, v))
		}
	}
	add(mqttwire.PropPayloadFormat, "format", pr.PayloadFormat)
	// The remaining expiry depends on where in its second a broker's
	// clock is (mosquitto counts whole seconds): shown by 5 s.
	add(mqttwire.PropMessageExpiry, "expiry", fmt.Sprintf("%d-%d", pr.MessageExpiry/5*5, pr.MessageExpiry/5*5+4))
	add(mqttwire.PropContentType, "content", string(pr.ContentType))
	add(mqttwire.PropResponseTopic, "response", string(pr.ResponseTopic))
	add(mqttwire.PropCorrelationData, "correlation", string(pr.CorrelationData))
	add(mqttwire.PropSubscriptionID, "subid", pr.SubscriptionIDs)
	add(mqttwire.PropSessionExpiry, "session-expiry", pr.SessionExpiry)
	add(mqttwire.PropAssignedClientID, "assigned", "")
	add(mqttwire.PropServerKeepAlive, "server-keepalive", pr.ServerKeepAlive)
	add(mqttwire.PropReceiveMaximum, "receive-max", pr.ReceiveMaximum)
	add(mqttwire.PropTopicAliasMaximum, "alias-max", pr.TopicAliasMaximum)
	add(mqttwire.PropMaximumQoS, "max-qos", pr.MaximumQoS)
	add(mqttwire.PropRetainAvailable, "retain-available", pr.RetainAvailable)
	add(mqttwire.PropMaximumPacketSize, "max-packet", pr.MaximumPacketSize)
	add(mqttwire.PropReasonString, "reason", string(pr.ReasonString))
	for _, u := range pr.User {
		l = append(l, fmt.Sprintf("user:%s=%s", u.Key, u.Value))
	}
	sort.Strings(l)
	if len(l) == 0 {
		return ""
	}
	return " [" + strings.Join(l, " ") + "]"
}

// startEngine serves opts on a loopback port until the test ends.
func startEngine(t testing.TB, opts engine.Options) (string, *engine.Server) {
	t.Helper()
	addrs, s := startEngineOn(t, opts, opts.Listener)
	return addrs[0], s
}

// startEngineOn serves opts on a loopback port per listener.
func startEngineOn(t testing.TB, opts engine.Options, ls ...engine.Listener) ([]string, *engine.Server) {
	t.Helper()
	s := engine.New(opts)
	var addrs []string
	done := make(chan error, len(ls))
	for _, l := range ls {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, ln.Addr().String())
		go func() { done <- s.ServeListener(ln, l) }()
	}
	t.Cleanup(func() {
		s.Close()
		for range ls {
			if err := <-done; !errors.Is(err, engine.ErrClosed) {
				t.Errorf("Serve: %v", err)
			}
		}
	})
	return addrs, s
}

// Packet builders for scripts.

func connect(id string, clean bool, mods ...func(*mqttwire.Packet)) *mqttwire.Packet {
	p := &mqttwire.Packet{Type: mqttwire.CONNECT, ClientID: []byte(id), CleanStart: clean, Keepalive: 60}
	for _, m := range mods {
		m(p)
	}
	return p
}

func will(topic, payload string, qos byte, retain bool) func(*mqttwire.Packet) {
	return func(p *mqttwire.Packet) {
		p.Will, p.WillTopic, p.WillPayload, p.WillQoS, p.WillRetain = true, []byte(topic), []byte(payload), qos, retain
	}
}

func sessionExpiry(s uint32) func(*mqttwire.Packet) {
	return func(p *mqttwire.Packet) {
		p.Props.SessionExpiry = s
		p.Props.Set(mqttwire.PropSessionExpiry)
	}
}

func keepalive(k uint16) func(*mqttwire.Packet) {
	return func(p *mqttwire.Packet) { p.Keepalive = k }
}

func publish(topic, payload string, qos byte, retain bool, id uint16, mods ...func(*mqttwire.Packet)) *mqttwire.Packet {
	p := &mqttwire.Packet{Type: mqttwire.PUBLISH, Topic: []byte(topic), Payload: []byte(payload), QoS: qos, Retain: retain, ID: id}
	for _, m := range mods {
		m(p)
	}
	return p
}

func subscribe(id uint16, filter string, qos byte, mods ...func(*mqttwire.Subscription)) *mqttwire.Packet {
	s := mqttwire.Subscription{Filter: []byte(filter), QoS: qos}
	for _, m := range mods {
		m(&s)
	}
	return &mqttwire.Packet{Type: mqttwire.SUBSCRIBE, ID: id, Subs: []mqttwire.Subscription{s}}
}

func unsubscribe(id uint16, filters ...string) *mqttwire.Packet {
	p := &mqttwire.Packet{Type: mqttwire.UNSUBSCRIBE, ID: id}
	for _, f := range filters {
		p.Subs = append(p.Subs, mqttwire.Subscription{Filter: []byte(f)})
	}
	return p
}

func ack(typ byte, id uint16) *mqttwire.Packet { return &mqttwire.Packet{Type: typ, ID: id} }

var (
	pingreq    = &mqttwire.Packet{Type: mqttwire.PINGREQ}
	disconnect = &mqttwire.Packet{Type: mqttwire.DISCONNECT}
)

// Step builders.
func dial(who string, v byte) step             { return step{who: who, dial: v} }
func send(who string, p *mqttwire.Packet) step { return step{who: who, send: p} }
func recv(who string, n int) step              { return step{who: who, recv: n} }
func quiet(who string) step                    { return step{who: who, quiet: true} }
func until(who string) step                    { return step{who: who, until: true} }
func drop(who string) step                     { return step{who: who, drop: true} }
func pause(d time.Duration) step               { return step{sleep: d} }
func open(who string, v byte, p *mqttwire.Packet) []step {
	return []step{dial(who, v), send(who, p), recv(who, 1)}
}

func steps(parts ...any) []step {
	var out []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			out = append(out, p)
		case []step:
			out = append(out, p...)
		}
	}
	return out
}
