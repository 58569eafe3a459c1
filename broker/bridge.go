package broker

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// A bridge (a `connection` section) is an MQTT client of a remote broker
// inside serve, as in mosquitto: topics with direction out are taken from
// local publishes (an in-process subscription to LOCAL_PREFIX+PATTERN) and
// published remotely under REMOTE_PREFIX; topics with direction in are
// subscribed remotely and published locally. It reconnects after
// restart_timeout (doubling up to its cap, with jitter), keeps a remote
// session (cleansession false) so that the remote queues for it while it is
// away, and queues what is published locally while the remote is away (up
// to max_queued_messages; then, as mosquitto, it drops). Loop prevention:
// a message a bridge brought in is never sent back out by it, and with
// try_private the remote (mosquitto, or serve) does not echo the bridge's
// own publishes back. Notifications: "1"/"0" retained on the notification
// topic, locally and (with a will) on the remote.
type bridge struct {
	b       *Broker
	spec    confgen.BridgeSpec
	log     *slog.Logger
	client  paho.Client
	queue   chan outMsg
	lost    chan error
	stop    chan struct{}
	done    sync.WaitGroup
	up      atomic.Bool
	started bool
	// dropped counts the messages dropped in the current episode of a
	// full queue (the remote away for long): one line when it starts, one
	// with the count when it ends, not one per message.
	dropped   atomic.Int64
	dropSince atomic.Int64 // unix nanoseconds of the episode's first drop
}

type outMsg struct {
	topic   string
	payload []byte
	qos     byte
	retain  bool
}

func newBridge(b *Broker, spec confgen.BridgeSpec) (*bridge, error) {
	br := &bridge{b: b, spec: spec, log: b.log.With("bridge", spec.Name), queue: make(chan outMsg, max(b.cfg.MaxQueued, 1)),
		lost: make(chan error, 1), stop: make(chan struct{})}
	tlsConf, err := bridgeTLS(spec)
	if err != nil {
		return nil, err
	}
	o := paho.NewClientOptions()
	for _, a := range spec.Addresses {
		scheme := "tcp://"
		if tlsConf != nil {
			scheme = "ssl://"
		}
		o.AddBroker(scheme + a)
	}
	o.SetClientID(spec.RemoteClientID)
	o.SetCleanSession(spec.CleanSession)
	o.SetKeepAlive(spec.Keepalive)
	o.SetAutoReconnect(false)
	o.SetConnectRetry(false)
	o.SetConnectTimeout(10 * time.Second)
	o.SetOrderMatters(true)
	o.SetResumeSubs(true)
	pv := uint(spec.ProtocolVersion)
	if spec.TryPrivate {
		pv |= 0x80 // tells the remote this is a bridge: it does not echo our own publishes
	}
	o.SetProtocolVersion(pv)
	if spec.RemoteUsername != "" {
		o.SetUsername(spec.RemoteUsername)
		o.SetPassword(spec.RemotePassword)
	}
	if tlsConf != nil {
		o.SetTLSConfig(tlsConf)
	}
	if spec.Notifications && !spec.NotificationsLocal {
		o.SetBinaryWill(spec.NotificationTopic, []byte("0"), 1, true)
	}
	o.SetOnConnectHandler(br.onConnect)
	o.SetConnectionLostHandler(func(_ paho.Client, err error) {
		select {
		case br.lost <- err:
		default:
		}
	})
	br.client = paho.NewClient(o)
	return br, nil
}

// bridgeTLS is the bridge's TLS configuration (nil: plain TCP).
func bridgeTLS(spec confgen.BridgeSpec) (*tls.Config, error) {
	if !spec.TLS() {
		return nil, nil
	}
	at := func(key string, err error) error {
		p, ok := spec.OptionPos[key]
		if !ok {
			p = spec.Pos
		}
		return &confgen.ConfigError{Pos: p, Err: err}
	}
	cas, err := readPEMCerts(spec.CAFile)
	if err != nil {
		return nil, at("bridge_cafile", fmt.Errorf("bridge_cafile: %w", err))
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	conf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	if spec.TLSVersion == "tlsv1.3" {
		conf.MinVersion = tls.VersionTLS13
	}
	if spec.CertFile != "" {
		pair, err := tls.LoadX509KeyPair(spec.CertFile, spec.KeyFile)
		if err != nil {
			return nil, at("bridge_keyfile", fmt.Errorf("bridge_certfile/bridge_keyfile: %w", err))
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err == nil && len(leaf.ExtKeyUsage) > 0 && !hasClientAuth(leaf) {
			return nil, at("bridge_certfile", fmt.Errorf("%s has no clientAuth usage: the remote broker refuses it as a client certificate; issue a bridge certificate (mqttctl pki issue bridge NAME)", spec.CertFile))
		}
		conf.Certificates = []tls.Certificate{pair}
	}
	if spec.Insecure {
		// bridge_insecure: the chain is checked, the host name is not.
		conf.InsecureSkipVerify = true
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("the remote sent no certificate")
			}
			inter := x509.NewCertPool()
			for _, c := range cs.PeerCertificates[1:] {
				inter.AddCert(c)
			}
			_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter})
			return err
		}
	}
	return conf, nil
}

func hasClientAuth(c *x509.Certificate) bool {
	for _, u := range c.ExtKeyUsage {
		if u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny {
			return true
		}
	}
	return false
}

// start subscribes locally and starts the connect loop and the forwarder.
func (br *bridge) start() error {
	for _, t := range br.outTopics() {
		err := br.b.srv.SubscribeFunc(br.spec.LocalClientID, t.LocalFilter(), t.QoS, func(m *engine.Message) {
			br.fromLocal(t, m)
		})
		if err != nil {
			return &confgen.ConfigError{Pos: t.Pos, Err: fmt.Errorf("bridge %s: subscribe to %s: %w", br.spec.Name, t.LocalFilter(), err)}
		}
	}
	br.notifyLocal("0")
	br.done.Add(2)
	go br.connectLoop()
	go br.forward()
	return nil
}

// fromLocal queues a local publish for the remote (in the publisher's
// goroutine: it must not block).
func (br *bridge) fromLocal(t confgen.BridgeTopic, pm *engine.Message) {
	if pm.From == br.spec.LocalClientID || strings.HasPrefix(pm.Topic, "$") && !strings.HasPrefix(t.LocalFilter(), "$") {
		return // brought in by this bridge, or $SYS matched by a wildcard
	}
	qos := min(pm.QoS, t.QoS)
	m := outMsg{topic: t.RemotePrefix + strings.TrimPrefix(pm.Topic, t.LocalPrefix), payload: pm.Payload, qos: qos,
		retain: pm.Retain && br.spec.OutgoingRetain}
	select {
	case br.queue <- m:
		br.endDropEpisode("the queue has room again")
	default:
		if br.dropped.Add(1) == 1 {
			br.dropSince.Store(time.Now().UnixNano())
			br.log.Warn("bridge queue full (max_queued_messages): dropping local messages for the remote until it has room; one line with the count when that ends",
				"max_queued_messages", cap(br.queue), "remote_up", br.up.Load(), "first_topic", pm.Topic)
		}
	}
}

// endDropEpisode logs how many messages a full queue dropped, once, when
// the episode ends (why says how).
func (br *bridge) endDropEpisode(why string) {
	if br.dropped.Load() == 0 {
		return
	}
	n := br.dropped.Swap(0)
	if n == 0 {
		return
	}
	since := time.Unix(0, br.dropSince.Load())
	br.log.Warn("bridge dropped local messages for the remote: its queue was full (max_queued_messages)", "dropped", n,
		"since", since.UTC().Format(time.RFC3339), "for", time.Since(since).Round(time.Second).String(), "ended", why)
}

// forward publishes queued messages while the remote is connected.
func (br *bridge) forward() {
	defer br.done.Done()
	for {
		var m outMsg
		select {
		case <-br.stop:
			return
		case m = <-br.queue:
		}
		for {
			if br.up.Load() {
				tok := br.client.Publish(m.topic, m.qos, m.retain, m.payload)
				if m.qos == 0 {
					break
				}
				// QoS 1 and 2: the client keeps the message until the remote
				// acknowledges it, also across a reconnect. Stopping does
				// not wait for the acknowledgement.
				select {
				case <-br.stop:
					return
				case <-tok.Done():
				case <-time.After(30 * time.Second):
				}
				if tok.Error() == nil {
					break // acknowledged, or still in flight in the client's store (resent on reconnect)
				}
			}
			select {
			case <-br.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// onConnect subscribes the in topics and announces the bridge.
func (br *bridge) onConnect(c paho.Client) {
	for _, t := range br.spec.Topics {
		if !t.In() {
			continue
		}
		t := t
		c.Subscribe(t.RemoteFilter(), t.QoS, func(_ paho.Client, m paho.Message) { br.fromRemote(t, m) })
	}
	if br.spec.Notifications && !br.spec.NotificationsLocal {
		c.Publish(br.spec.NotificationTopic, 1, true, "1")
	}
	br.notifyLocal("1")
	br.up.Store(true)
}

// fromRemote publishes a message from the remote locally, as the bridge's
// client (so that fromLocal never sends it back).
func (br *bridge) fromRemote(t confgen.BridgeTopic, m paho.Message) {
	topic := t.LocalPrefix + strings.TrimPrefix(m.Topic(), t.RemotePrefix)
	qos := min(m.Qos(), t.QoS)
	if !mqttwire.ValidTopicName(topic) {
		br.log.Warn("bridge: message from the remote not published locally: not a valid topic name", "topic", topic)
		return
	}
	br.b.srv.Publish(&engine.Message{Topic: topic, Payload: m.Payload(), QoS: qos, Retain: m.Retained(), From: br.spec.LocalClientID})
}

func (br *bridge) notifyLocal(state string) {
	if br.spec.Notifications {
		br.b.srv.Publish(&engine.Message{Topic: br.spec.NotificationTopic, Payload: []byte(state), QoS: 1, Retain: true})
	}
}

// connectLoop connects, waits for the connection to be lost, and
// reconnects after restart_timeout (doubling to its cap, with jitter).
func (br *bridge) connectLoop() {
	defer br.done.Done()
	wait := br.spec.RestartBase
	for {
		tok := br.client.Connect()
		var err error
		select {
		case <-br.stop:
			return
		case <-tok.Done():
			err = tok.Error()
		}
		if err == nil {
			br.log.Info("bridge connected", "remote", strings.Join(br.spec.Addresses, " "), "client_id", br.spec.RemoteClientID)
			wait = br.spec.RestartBase
			select {
			case <-br.stop:
				return
			case err = <-br.lost:
			}
			br.up.Store(false)
			br.notifyLocal("0")
			br.log.Warn("bridge connection lost; reconnecting", "reason", bridgeReason(err), "retry_in", wait.String())
		} else {
			br.log.Warn("bridge cannot connect; retrying", "remote", strings.Join(br.spec.Addresses, " "), "reason", bridgeReason(err), "retry_in", wait.String())
		}
		jitter := time.Duration(rand.Int64N(int64(wait)/4 + 1))
		select {
		case <-br.stop:
			return
		case <-time.After(wait + jitter):
		}
		wait = min(wait*2, br.spec.RestartCap)
	}
}

// bridgeReason says in plain words why a bridge connection failed.
func bridgeReason(err error) string {
	if err == nil {
		return "closed"
	}
	msg := err.Error()
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	var ne net.Error
	switch {
	case errors.As(err, &unknown):
		return "the remote's certificate is not signed by bridge_cafile (" + msg + ")"
	case errors.As(err, &host):
		return "the remote's certificate does not name the address dialled (" + msg + "); use a name from the certificate in address"
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"):
		return "the remote refused the bridge's client certificate (" + msg + "): it must come from a CA the remote trusts and have clientAuth (mqttctl pki issue bridge NAME)"
	case strings.Contains(msg, "not Authorized"), strings.Contains(msg, "bad user name or password"):
		return "the remote refused the login (" + msg + "): check remote_username/remote_password, or the remote's ACL"
	case errors.As(err, &ne) && ne.Timeout():
		return "no answer from the remote (" + msg + ")"
	case strings.Contains(msg, "connection refused"):
		return "nothing listens at the remote address (" + msg + ")"
	}
	return msg
}

// close stops the bridge and disconnects it.
func (br *bridge) close() {
	close(br.stop)
	defer br.endDropEpisode("the broker stopped")
	for _, t := range br.outTopics() {
		br.b.srv.UnsubscribeFunc(br.spec.LocalClientID, t.LocalFilter())
	}
	if br.client.IsConnected() && br.spec.Notifications && !br.spec.NotificationsLocal {
		br.client.Publish(br.spec.NotificationTopic, 1, true, "0").WaitTimeout(time.Second)
	}
	br.client.Disconnect(250)
	br.done.Wait()
}

func (br *bridge) outTopics() []confgen.BridgeTopic {
	var out []confgen.BridgeTopic
	for _, t := range br.spec.Topics {
		if t.Out() {
			out = append(out, t)
		}
	}
	return out
}

// bridgeLoops warns about a bridge whose address is one of this broker's
// own listeners: it would subscribe to itself and republish every message
// it forwards, for ever. Addresses are compared without DNS: loopback
// names and addresses, this host's name and interface addresses, and the
// listener's bind address.
func bridgeLoops(cfg *confgen.Resolved) []error {
	local := map[string]bool{"localhost": true, "": true, "0.0.0.0": true, "::": true}
	if h, err := os.Hostname(); err == nil {
		local[strings.ToLower(h)] = true
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				local[ipn.IP.String()] = true
			}
		}
	}
	isLocal := func(host string) bool {
		if ip := net.ParseIP(host); ip != nil {
			return ip.IsLoopback() || ip.IsUnspecified() || local[ip.String()]
		}
		return local[strings.ToLower(host)]
	}
	var out []error
	for _, br := range cfg.Bridges {
		for _, a := range br.Addresses {
			host, port, err := net.SplitHostPort(a)
			if err != nil {
				continue
			}
			for _, l := range cfg.Listeners {
				if strconv.Itoa(l.Port) != port || !(isLocal(host) && (l.Bind == "" || isLocal(l.Bind)) || strings.EqualFold(host, l.Bind)) {
					continue
				}
				p, ok := br.OptionPos["address"]
				if !ok {
					p = br.Pos
				}
				out = append(out, &confgen.ConfigError{Pos: p, Warning: true, Msg: fmt.Sprintf(
					"bridge %s connects to %s, a listener of this same broker (%s, line %d): it would bridge the broker to itself and send every message round again; give the address of the remote broker",
					br.Name, a, l.Addr(), l.Pos.Line)})
			}
		}
	}
	return out
}
