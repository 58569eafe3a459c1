package diagnose

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/mqttctl/mqttctl/internal/mqtturl"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/mqttws"
)

// CrossResult says whether a message published on one node arrived at a
// subscriber on another.
type CrossResult struct {
	From, To string
	OK       bool
}

// Cross proves a cluster: a subscriber on every URL, then a QoS 1 message
// published on each, which must reach the subscribers on every other URL
// within o.Timeout. The credentials of o are used on every node; run Check
// on each URL first for the per-node diagnosis.
func Cross(ctx context.Context, o Options, urls []string) ([]CrossResult, error) {
	if len(urls) < 2 {
		return nil, fmt.Errorf("a cross check needs at least two broker URLs")
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	base := o.Topic
	if base == "" {
		base = "mqttctl/cross/" + hex.EncodeToString(b)
	}
	type node struct {
		c    net.Conn
		r    *bufio.Reader
		mu   sync.Mutex
		seen map[string]bool
	}
	nodes := make([]*node, len(urls))
	for i, u := range urls {
		c, err := dialNode(ctx, o, u, fmt.Sprintf("mqttctl-cross-%s-%d", hex.EncodeToString(b), i))
		if err != nil {
			return nil, fmt.Errorf("%s: %w (run mqttctl check %s for the cause)", u, err, u)
		}
		defer c.Close()
		n := &node{c: c, r: bufio.NewReader(c), seen: map[string]bool{}}
		if _, err := c.Write(mqttwire.AppendSubscribe(nil, 4, 1, base+"/#", 1)); err != nil {
			return nil, err
		}
		nodes[i] = n
	}
	deadline := time.Now().Add(o.Timeout)
	for _, n := range nodes {
		_ = n.c.SetDeadline(deadline)
		if head, _, err := mqttwire.ReadPacket(n.r, nil); err != nil || head>>4 != mqttwire.SUBACK {
			return nil, fmt.Errorf("subscribe to %s/#: %v (the ACL must allow it)", base, err)
		}
	}
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				head, body, err := mqttwire.ReadPacket(n.r, nil)
				if err != nil {
					return
				}
				if head>>4 != mqttwire.PUBLISH {
					continue
				}
				topic, id, _, ok := mqttwire.PublishInfo(head, body, 4)
				if ok && (head>>1)&3 == 1 {
					n.mu.Lock()
					_, _ = n.c.Write(mqttwire.AppendAck(nil, mqttwire.PUBACK, id))
					n.mu.Unlock()
				}
				n.mu.Lock()
				n.seen[topic] = true
				n.mu.Unlock()
			}
		}()
	}
	for i, n := range nodes {
		n.mu.Lock()
		_, err := n.c.Write(mqttwire.AppendPublish(nil, 4, fmt.Sprintf("%s/%d", base, i), []byte("cross"), 1, false, uint16(i+1)))
		n.mu.Unlock()
		if err != nil {
			return nil, fmt.Errorf("publish on %s: %w", urls[i], err)
		}
	}
	var out []CrossResult
	for {
		out = out[:0]
		all := true
		for i := range nodes {
			for j, n := range nodes {
				if i == j {
					continue
				}
				n.mu.Lock()
				ok := n.seen[fmt.Sprintf("%s/%d", base, i)]
				n.mu.Unlock()
				out = append(out, CrossResult{From: urls[i], To: urls[j], OK: ok})
				all = all && ok
			}
		}
		if all || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, n := range nodes {
		n.c.Close()
	}
	wg.Wait()
	return out, nil
}

// dialNode connects and logs in with o's TLS files and credentials.
func dialNode(ctx context.Context, o Options, raw, id string) (net.Conn, error) {
	t, err := mqtturl.Parse(raw)
	if err != nil {
		return nil, err
	}
	var conf *tls.Config
	if t.TLS {
		roots, err := mqtturl.CAPool(o.CAFile)
		if err != nil {
			return nil, err
		}
		conf = &tls.Config{ServerName: t.Host, RootCAs: roots, MinVersion: tls.VersionTLS12}
		if o.CertFile != "" {
			c, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
			if err != nil {
				return nil, err
			}
			conf.Certificates = []tls.Certificate{c}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	var c net.Conn
	switch {
	case t.WebSocket:
		c, err = mqttws.Dial(ctx, t.URL(), conf)
	case conf != nil:
		c, err = (&tls.Dialer{Config: conf}).DialContext(ctx, "tcp", t.Addr)
	default:
		c, err = (&net.Dialer{}).DialContext(ctx, "tcp", t.Addr)
	}
	if err != nil {
		return nil, err
	}
	cn := mqttwire.Connect{Version: 4, ClientID: id, Clean: true, Keepalive: 30}
	if o.Username != "" {
		cn.Username = &o.Username
	}
	if o.Password != nil {
		pw := string(o.Password)
		cn.Password = &pw
	}
	_ = c.SetDeadline(time.Now().Add(o.Timeout))
	if _, err := c.Write(mqttwire.AppendConnect(nil, cn)); err != nil {
		c.Close()
		return nil, err
	}
	head, body, err := mqttwire.ReadPacket(bufio.NewReader(c), nil)
	if err != nil || head>>4 != mqttwire.CONNACK || len(body) < 2 || body[1] != 0 {
		c.Close()
		if err == nil {
			err = fmt.Errorf("CONNACK %v", body)
		}
		return nil, fmt.Errorf("login refused: %v", strings.TrimSpace(err.Error()))
	}
	return c, nil
}
