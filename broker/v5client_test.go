package broker_test

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/pki"
)

// v5 is a bare MQTT v5 client on the project's codec (internal/mqttwire):
// it sends what a test says and reads every packet the broker sends, so
// that a refusal's reason code is seen. What it reads is decoded as
// strictly as the engine decodes a client's packets, so a malformed packet
// from the broker fails the test.
type v5 struct {
	t    *testing.T
	conn net.Conn
	r    *mqttwire.Reader
	id   uint16
	// connack is the broker's CONNACK.
	connack mqttwire.Packet
}

func (c *v5) send(pk mqttwire.Packet) {
	c.t.Helper()
	pk.Version = 5
	if _, err := c.conn.Write(pk.Append(nil)); err != nil {
		c.t.Fatal(err)
	}
}

// read returns the next packet, or an error after wait. The packet is the
// caller's: nothing of it is reused by the next read.
func (c *v5) read(wait time.Duration) (mqttwire.Packet, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(wait))
	var pk mqttwire.Packet
	c.r.Release() // a new buffer: pk's bytes outlive the next read
	err := c.r.Read(&pk)
	return pk, err
}

// expect reads until a packet of type typ (others are skipped).
func (c *v5) expect(typ byte) mqttwire.Packet {
	c.t.Helper()
	for {
		pk, err := c.read(10 * time.Second)
		if err != nil {
			c.t.Fatalf("waiting for packet type %d: %v (last: type %d %q)", typ, err, pk.Type, pk.Topic)
		}
		if pk.Type == typ {
			return pk
		}
	}
}

// dialV5 connects with the certificate and returns the client, or the TLS
// or CONNACK refusal.
func dialV5(t *testing.T, port int, ca *x509.CertPool, cert tls.Certificate) (*v5, error) {
	t.Helper()
	return dialV5With(t, port, ca, cert, nil)
}

// dialV5With is dialV5 whose CONNECT (clean start, keepalive 30, no client
// id) is first changed by with: client id, session and its expiry, will and
// its properties.
func dialV5With(t *testing.T, port int, ca *x509.CertPool, cert tls.Certificate, with func(*mqttwire.Packet)) (*v5, error) {
	t.Helper()
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{RootCAs: ca, ServerName: "localhost", Certificates: []tls.Certificate{cert}})
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { conn.Close() })
	r := mqttwire.NewReader(bufio.NewReader(conn), 0)
	r.Version = 5
	c := &v5{t: t, conn: conn, r: r}
	connect := mqttwire.Packet{Type: mqttwire.CONNECT, ProtocolName: []byte("MQTT"), CleanStart: true, Keepalive: 30}
	if with != nil {
		with(&connect)
	}
	c.send(connect)
	pk, err := c.read(10 * time.Second)
	if err != nil {
		return nil, err // a TLS 1.3 refusal arrives here
	}
	if pk.Type != mqttwire.CONNACK || pk.Reason != 0 {
		return nil, fmt.Errorf("CONNACK %d", byte(pk.Reason))
	}
	c.connack = pk
	return c, nil
}

// willTo gives a CONNECT a will of QoS qos to topic.
func willTo(topic string, payload []byte, qos byte, retain bool) func(*mqttwire.Packet) {
	return func(p *mqttwire.Packet) {
		p.Will, p.WillTopic, p.WillPayload, p.WillQoS, p.WillRetain = true, []byte(topic), payload, qos, retain
	}
}

// withSession gives a CONNECT a client id and, with clean false, a
// persistent session.
func withSession(id string, clean bool) func(*mqttwire.Packet) {
	return func(p *mqttwire.Packet) { p.ClientID, p.CleanStart = []byte(id), clean }
}

// requestProps returns the properties of a request: its response topic and its
// correlation data, each left out when empty.
func requestProps(responseTopic string, corr []byte) mqttwire.Properties {
	var pr mqttwire.Properties
	if responseTopic != "" {
		pr.ResponseTopic = []byte(responseTopic)
		pr.Set(mqttwire.PropResponseTopic)
	}
	if len(corr) > 0 {
		pr.CorrelationData = corr
		pr.Set(mqttwire.PropCorrelationData)
	}
	return pr
}

// userValue returns the value of the user property key ("" if absent).
func userValue(pr *mqttwire.Properties, key string) string {
	v := ""
	for _, u := range pr.User {
		if string(u.Key) == key {
			v = string(u.Value)
		}
	}
	return v
}

// subscribe returns the SUBACK's reason code for one filter.
func (c *v5) subscribe(filter string) byte {
	c.t.Helper()
	c.id++
	c.send(mqttwire.Packet{Type: mqttwire.SUBSCRIBE, ID: c.id,
		Subs: []mqttwire.Subscription{{Filter: []byte(filter), QoS: 1}}})
	ack := c.expect(mqttwire.SUBACK)
	return byte(ack.Reasons[0])
}

// publish sends a QoS 1 publish and returns its PUBACK.
func (c *v5) publish(topic string, payload []byte, props mqttwire.Properties) mqttwire.Packet {
	c.t.Helper()
	c.id++
	c.send(mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 1, ID: c.id, Topic: []byte(topic), Payload: payload, Props: props})
	for {
		if ack := c.expect(mqttwire.PUBACK); ack.ID == c.id {
			return ack
		}
	}
}

// request publishes payload to topic as an MQTT v5 request and returns the
// answer on reply.
func (c *v5) request(topic, reply string, payload []byte) (chain []*x509.Certificate, refusal string) {
	c.t.Helper()
	if code := c.subscribe(reply); code > 2 {
		c.t.Fatalf("subscribe %s: reason %#x", reply, code)
	}
	corr := []byte(fmt.Sprintf("req-%d", c.id))
	c.id++
	c.send(mqttwire.Packet{Type: mqttwire.PUBLISH, QoS: 1, ID: c.id, Topic: []byte(topic), Payload: payload,
		Props: requestProps(reply, corr)})
	for {
		pk := c.expect(mqttwire.PUBLISH)
		if string(pk.Topic) != reply {
			continue
		}
		if !bytes.Equal(pk.Props.CorrelationData, corr) {
			c.t.Fatalf("the answer's correlation data is %q, want %q", pk.Props.CorrelationData, corr)
		}
		status, reason := userValue(&pk.Props, broker.StatusProperty), userValue(&pk.Props, broker.ReasonProperty)
		if status != "ok" {
			if status != "refused" || reason == "" || !strings.Contains(string(pk.Payload), reason) {
				c.t.Fatalf("a refusal without its reason: status %q reason %q payload %q", status, reason, pk.Payload)
			}
			return nil, reason
		}
		certs, err := pki.ParseCerts(pk.Payload, "answer")
		if err != nil {
			c.t.Fatal(err)
		}
		return certs, ""
	}
}

// quiet reports whether nothing at all arrives within wait.
func (c *v5) quiet(wait time.Duration) bool {
	pk, err := c.read(wait)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	c.t.Logf("got packet type %d topic %q (%v)", pk.Type, pk.Topic, err)
	return false
}

// withSessionExpiry gives a CONNECT a session expiry interval (none for 0).
func withSessionExpiry(seconds uint32) func(*mqttwire.Packet) {
	return func(p *mqttwire.Packet) {
		if seconds > 0 {
			p.Props.SessionExpiry = seconds
			p.Props.Set(mqttwire.PropSessionExpiry)
		}
	}
}
