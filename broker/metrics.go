package broker

import (
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqttctl/mqttctl/broker/engine"
)

// refusal is why a connection was refused, as a metric label: a small fixed
// set (never a string a client chose), with the codes `mqttctl check`
// prints where there is one.
type refusal uint8

const (
	refusedBadPassword     refusal = iota // unknown user or wrong password
	refusedNotAuthorised                  // anonymous, or no password_file
	refusedNoUsername                     // use_username_as_clientid without a username
	refusedCertIdentity                   // use_identity_as_username: no certificate or no CN
	refusedProtocol                       // CONNECT rules: protocol version, client id, retained will
	refusedMaxConnections                 // max_connections
	refusedRevoked                        // crlfile lists the certificate
	refusedCRLExpired                     // the CRL's nextUpdate has passed
	refusedCRLNotYetValid                 // the CRL's thisUpdate is ahead
	refusedCRLMissing                     // no CRL from the certificate's CA
	refusedCRLUnreadable                  // crlfile cannot be read
	refusedBootstrap                      // a bootstrap certificate (enrolment only)
	refusedCertExpired                    // client certificate expired or not yet valid
	refusedUnknownCA                      // client certificate from a CA not in cafile
	refusedNoCert                         // require_certificate and none given
	refusedTLSTimeout                     // no TLS handshake within --connect-timeout
	refusedTLS                            // any other TLS handshake failure
	refusedNotMQTT                        // no valid CONNECT (garbage, HTTP, TLS on plain)
	refusedConnectTimeout                 // no CONNECT within --connect-timeout
	refusedConnectTooLarge                // CONNECT larger than MaxConnectSize
	refusedNotWebSocket                   // websockets listener: not an upgrade
	refusedOrigin                         // websockets listener: http_origin
	nRefusals
)

// refusalNames are the label values of mqttctl_refusals_total's reason.
var refusalNames = [nRefusals]string{
	"bad-username-or-password", "not-authorised", "no-username", "client-cert-identity", "protocol",
	"max-connections", "revoked", "crl-expired", "crl-not-yet-valid", "crl-missing", "crl-unreadable",
	"bootstrap-cert", "expired", "unknown-client-ca", "client-cert-required", "tls-timeout", "tls-handshake",
	"not-mqtt", "connect-timeout", "connect-too-large", "not-websocket", "origin-refused",
}

// listenerMetrics are one listener's counters. A nil *listenerMetrics (no
// --metrics) counts nothing.
type listenerMetrics struct {
	connects atomic.Uint64
	refused  [nRefusals]atomic.Uint64
}

func (m *listenerMetrics) refuse(r refusal) {
	if m != nil {
		m.refused[r].Add(1)
	}
}

func (m *listenerMetrics) connected() {
	if m != nil {
		m.connects.Add(1)
	}
}

// handshakeBuckets are the upper bounds (seconds) of the TLS handshake
// histogram: a local resumed handshake takes about 0.1 ms, a full one with
// a client certificate about 1 ms, a device on a slow link a second.
var handshakeBuckets = [...]float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// brokerMetrics holds the counters that are not per listener.
type brokerMetrics struct {
	hsCount   [len(handshakeBuckets) + 1]atomic.Uint64 // per bucket, the last one +Inf
	hsSumNano atomic.Uint64
}

func (m *brokerMetrics) handshake(d time.Duration) {
	if m == nil {
		return
	}
	s := d.Seconds()
	i := 0
	for i < len(handshakeBuckets) && s > handshakeBuckets[i] {
		i++
	}
	m.hsCount[i].Add(1)
	m.hsSumNano.Add(uint64(d.Nanoseconds()))
}

// handshakeRefusal sorts a failed TLS handshake into a refusal.
func handshakeRefusal(err error) refusal {
	var ne net.Error
	var crl *crlError
	var inv x509.CertificateInvalidError
	var ua x509.UnknownAuthorityError
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return refusedTLSTimeout
	case errors.Is(err, errRevoked):
		return refusedRevoked
	case errors.Is(err, errCRLBroken):
		return refusedCRLUnreadable
	case errors.Is(err, errBootstrap):
		return refusedBootstrap
	case errors.As(err, &crl):
		return crl.refusal
	case errors.As(err, &inv) && (inv.Reason == x509.Expired):
		return refusedCertExpired
	case errors.As(err, &ua):
		return refusedUnknownCA
	case strings.Contains(err.Error(), "didn't provide a certificate"):
		return refusedNoCert
	}
	return refusedTLS
}

// crlError is a CRL that refuses a client wholesale (expired, not yet
// valid, missing), with its refusal for the metrics.
type crlError struct {
	refusal refusal
	msg     string
}

func (e *crlError) Error() string { return e.msg }

// Days-left buckets of mqttctl_client_certs (upper bounds, in days).
var daysLeftBuckets = []struct {
	label string
	max   float64
}{{"expired", 0}, {"0-7", 7}, {"7-30", 30}, {"30-90", 90}}

const daysLeftRest = "90+"

// collector computes every metric when scraped: the MQTT path only adds to
// atomic counters.
type collector struct {
	b *Broker

	clients, connects, refusals, received, sent, dropped, inflight, queued,
	handshake, earliest, certs, serverCert, caCert, crl *prometheus.Desc
}

func newCollector(b *Broker) *collector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("mqttctl_"+name, help, labels, nil)
	}
	return &collector{
		b:          b,
		clients:    d("clients_connected", "MQTT clients connected, per listener.", "listener"),
		connects:   d("connects_total", "Clients that connected (CONNACK accepted), per listener.", "listener"),
		refusals:   d("refusals_total", "Connections refused, per listener and reason.", "listener", "reason"),
		received:   d("messages_received_total", "PUBLISH packets received from clients."),
		sent:       d("messages_sent_total", "PUBLISH packets sent to clients."),
		dropped:    d("messages_dropped_total", "Messages dropped for subscribers whose queue was full."),
		inflight:   d("messages_inflight", "QoS 1 and 2 messages sent to clients and not yet acknowledged."),
		queued:     d("outbound_queued", "QoS 1 and 2 messages waiting for a client's window (Receive Maximum) or for the client to come back."),
		handshake:  d("tls_handshake_seconds", "Time of successful TLS handshakes of MQTT clients."),
		earliest:   d("client_cert_earliest_expiry_timestamp_seconds", "The earliest notAfter of the certificates of connected clients (Unix time)."),
		certs:      d("client_certs", "Connected clients' certificates by days left until notAfter.", "days_left"),
		serverCert: d("server_cert_expiry_timestamp_seconds", "notAfter of each TLS listener's server certificate (Unix time).", "listener", "file"),
		caCert:     d("ca_cert_expiry_timestamp_seconds", "notAfter of each CA certificate in cafile or capath (Unix time).", "listener", "subject"),
		crl:        d("crl_next_update_timestamp_seconds", "nextUpdate of each CRL in a crlfile (Unix time): past it every client of that CA is refused.", "file", "issuer"),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.clients, c.connects, c.refusals, c.received, c.sent, c.dropped, c.inflight,
		c.queued, c.handshake, c.earliest, c.certs, c.serverCert, c.caCert, c.crl} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	b := c.b
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	now := time.Now()
	perListener := map[string]int{}
	var earliest time.Time
	days := make([]int, len(daysLeftBuckets)+1)
	b.srv.Clients(func(cl *engine.Client) bool {
		perListener[cl.Listener]++
		cert := peerCert(cl.TLS)
		if cert == nil {
			return true
		}
		if earliest.IsZero() || cert.NotAfter.Before(earliest) {
			earliest = cert.NotAfter
		}
		left := cert.NotAfter.Sub(now).Hours() / 24
		i := 0
		for i < len(daysLeftBuckets) && left >= daysLeftBuckets[i].max {
			i++
		}
		days[i]++
		return true
	})
	type crlKey struct{ file, issuer string }
	crls := map[crlKey]time.Time{}
	for _, ls := range b.listeners {
		addr := ls.ln.Address()
		gauge(c.clients, float64(perListener[ls.id]), addr)
		if ls.m == nil {
			continue
		}
		counter(c.connects, float64(ls.m.connects.Load()), addr)
		for r := range nRefusals {
			counter(c.refusals, float64(ls.m.refused[r].Load()), addr, refusalNames[r])
		}
		if ls.tls == nil {
			continue
		}
		if cert := ls.tls.cert.Load(); cert != nil && cert.Leaf != nil {
			gauge(c.serverCert, unix(cert.Leaf.NotAfter), addr, ls.spec.TLS.CertFile)
		}
		seen := map[string]bool{}
		for _, ca := range ls.tls.cas {
			if s := ca.Subject.String(); !seen[s] {
				seen[s] = true
				gauge(c.caCert, unix(ca.NotAfter), addr, s)
			}
		}
		if idx := ls.tls.crls.Load(); idx != nil {
			for _, list := range *idx {
				for _, crl := range list {
					crls[crlKey{ls.spec.TLS.CRLFile, crl.issuer}] = crl.nextUpdate
				}
			}
		}
	}
	for k, t := range crls {
		gauge(c.crl, unix(t), k.file, k.issuer)
	}
	st := b.srv.Stats()
	counter(c.received, float64(st.Received))
	counter(c.sent, float64(st.Sent))
	counter(c.dropped, float64(st.Dropped))
	gauge(c.inflight, float64(st.Inflight))
	gauge(c.queued, float64(st.Queued))
	if !earliest.IsZero() {
		gauge(c.earliest, unix(earliest))
	}
	for i, bk := range daysLeftBuckets {
		gauge(c.certs, float64(days[i]), bk.label)
	}
	gauge(c.certs, float64(days[len(daysLeftBuckets)]), daysLeftRest)
	if b.m != nil && b.hasTLS() {
		buckets := make(map[float64]uint64, len(handshakeBuckets))
		var n uint64
		for i, ub := range handshakeBuckets {
			n += b.m.hsCount[i].Load()
			buckets[ub] = n
		}
		n += b.m.hsCount[len(handshakeBuckets)].Load()
		ch <- prometheus.MustNewConstHistogram(c.handshake, n, float64(b.m.hsSumNano.Load())/1e9, buckets)
	}
}

func unix(t time.Time) float64 { return float64(t.Unix()) }
