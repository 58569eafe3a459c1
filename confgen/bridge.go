package confgen

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// BridgeSpec is one bridge section (`connection NAME` and the options after
// it) with mosquitto's defaults filled in.
type BridgeSpec struct {
	Name      string
	Pos       Pos      // the connection line
	Addresses []string // host:port, tried in turn
	Topics    []BridgeTopic

	CAFile, CAPath, CertFile, KeyFile string
	Insecure                          bool   // bridge_insecure: no host name check
	TLSVersion                        string // bridge_tls_version; "" means TLS 1.2 or later
	ProtocolVersion                   byte   // 3 (mqttv31) or 4 (mqttv311)

	CleanSession       bool // remote session; mosquitto's default false
	RemoteClientID     string
	LocalClientID      string
	RemoteUsername     string
	RemotePassword     string // a secret: never logged
	Keepalive          time.Duration
	RestartBase        time.Duration // restart_timeout: first wait before a reconnect
	RestartCap         time.Duration // and the longest
	TryPrivate         bool
	Notifications      bool
	NotificationsLocal bool // notifications_local_only
	NotificationTopic  string
	OutgoingRetain     bool

	// OptionPos says where each option of the section was set.
	OptionPos map[string]Pos
}

// TLS reports whether the bridge connects with TLS (a CA to check the
// remote against, as mosquitto decides).
func (b *BridgeSpec) TLS() bool { return b.CAFile != "" || b.CAPath != "" }

// BridgeTopic is one `topic` line: messages matching LocalPrefix+Pattern
// locally go out to RemotePrefix+Pattern remotely (out), the other way
// (in), or both.
type BridgeTopic struct {
	Pattern      string
	Direction    string // out, in or both
	QoS          byte
	LocalPrefix  string
	RemotePrefix string
	Pos          Pos
}

// Out and In report whether the topic carries messages in that direction.
func (t BridgeTopic) Out() bool { return t.Direction == "out" || t.Direction == "both" }
func (t BridgeTopic) In() bool  { return t.Direction == "in" || t.Direction == "both" }

// LocalFilter and RemoteFilter are the subscriptions on each side.
func (t BridgeTopic) LocalFilter() string  { return t.LocalPrefix + t.Pattern }
func (t BridgeTopic) RemoteFilter() string { return t.RemotePrefix + t.Pattern }

// splitTopicLine splits a topic line's value into fields; "" is an empty
// field, as mosquitto reads it.
func splitTopicLine(v string) []string {
	fields := strings.Fields(v)
	for i, f := range fields {
		if f == `""` {
			fields[i] = ""
		}
	}
	return fields
}

// resolveBridges reads the bridge sections of the global options.
func (c *Config) resolveBridges(errf func(Pos, string, ...any)) []BridgeSpec {
	var out []BridgeSpec
	var cur *BridgeSpec
	host, _ := os.Hostname()
	if host == "" {
		host = "mqttctl"
	}
	finish := func() {
		if cur == nil {
			return
		}
		if len(cur.Addresses) == 0 {
			errf(cur.Pos, "bridge %s has no address: add 'address HOST:PORT' after its connection line", cur.Name)
		}
		if len(cur.Topics) == 0 {
			errf(cur.Pos, "bridge %s has no topic line: it would carry nothing (add e.g. 'topic sensors/# out 1')", cur.Name)
		}
		if (cur.CertFile == "") != (cur.KeyFile == "") {
			errf(cur.Pos, "bridge %s: bridge_certfile and bridge_keyfile go together", cur.Name)
		}
		if cur.CertFile != "" && !cur.TLS() {
			errf(cur.Pos, "bridge %s: a client certificate without bridge_cafile or bridge_capath; mosquitto connects without TLS then: add bridge_cafile", cur.Name)
		}
		if cur.RemoteClientID == "" {
			cur.RemoteClientID = host + "." + cur.Name
		}
		if cur.LocalClientID == "" {
			cur.LocalClientID = "local." + cur.RemoteClientID
		}
		if cur.NotificationTopic == "" {
			cur.NotificationTopic = "$SYS/broker/connection/" + cur.RemoteClientID + "/state"
		}
		out = append(out, *cur)
		cur = nil
	}
	names := map[string]Pos{}
	for _, d := range c.Global {
		if d.Key == "connection" {
			finish()
			if err := checkBridgeName(d.Value); err != nil {
				errf(d.Pos, "connection %q: %v", d.Value, err)
			}
			if p, dup := names[d.Value]; dup {
				errf(d.Pos, "bridge %s is already defined at %s", d.Value, p)
			}
			names[d.Value] = d.Pos
			cur = &BridgeSpec{Name: d.Value, Pos: d.Pos, ProtocolVersion: 4, Keepalive: 60 * time.Second,
				RestartBase: 5 * time.Second, RestartCap: 30 * time.Second, TryPrivate: true, Notifications: true,
				OutgoingRetain: true, OptionPos: map[string]Pos{}}
			continue
		}
		if !isBridgeOption(d.Key) {
			continue
		}
		if cur == nil {
			errf(d.Pos, "%s is a bridge option: put it after a 'connection NAME' line", d.Key)
			continue
		}
		cur.OptionPos[d.Key] = d.Pos
		cur.apply(d, errf)
	}
	finish()
	return out
}

func isBridgeOption(key string) bool {
	for _, k := range bridgeOptions {
		if k == key {
			return true
		}
	}
	return false
}

func checkBridgeName(n string) error {
	if n == "" || strings.ContainsAny(n, " \t/#+") {
		return fmt.Errorf("a bridge name is one word without / # +")
	}
	return nil
}

func (b *BridgeSpec) apply(d Directive, errf func(Pos, string, ...any)) {
	v := d.Value
	boolv := func() bool {
		x, ok := ParseBool(v)
		if !ok {
			errf(d.Pos, "%s %s: use true or false", d.Key, v)
		}
		return x
	}
	switch d.Key {
	case "address", "addresses":
		for _, a := range strings.Fields(v) {
			if !strings.Contains(a, ":") || strings.HasSuffix(a, "]") {
				a = net.JoinHostPort(strings.Trim(a, "[]"), "1883")
			}
			host, port, err := net.SplitHostPort(a)
			if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
				errf(d.Pos, "%s %s: use HOST[:PORT] (port 1-65535)", d.Key, a)
				continue
			}
			b.Addresses = append(b.Addresses, a)
		}
	case "topic":
		b.addTopic(d, errf)
	case "bridge_cafile":
		b.CAFile = v
	case "bridge_capath":
		b.CAPath = v
	case "bridge_certfile":
		b.CertFile = v
	case "bridge_keyfile":
		b.KeyFile = v
	case "bridge_insecure":
		b.Insecure = boolv()
	case "bridge_tls_version":
		switch v {
		case "tlsv1.2", "tlsv1.3":
			b.TLSVersion = v
		default:
			errf(d.Pos, "bridge_tls_version %s: use tlsv1.2 or tlsv1.3", v)
		}
	case "bridge_protocol_version":
		switch v {
		case "mqttv311":
			b.ProtocolVersion = 4
		case "mqttv31":
			b.ProtocolVersion = 3
		case "mqttv50":
			b.ProtocolVersion = 5
		default:
			errf(d.Pos, "bridge_protocol_version %s: use mqttv311, mqttv31 or mqttv50", v)
		}
	case "cleansession":
		b.CleanSession = boolv()
	case "remote_clientid", "clientid":
		b.RemoteClientID = v
	case "local_clientid":
		b.LocalClientID = v
	case "remote_username", "username":
		b.RemoteUsername = v
	case "remote_password", "password":
		b.RemotePassword = v
	case "keepalive_interval":
		n, err := strconv.Atoi(v)
		if err != nil || n < 5 || n > 65535 {
			errf(d.Pos, "keepalive_interval %s: give seconds, 5-65535", v)
		}
		b.Keepalive = time.Duration(n) * time.Second
	case "restart_timeout":
		f := strings.Fields(v)
		base, err1 := strconv.Atoi(f[0])
		cp := base
		var err2 error
		if len(f) > 1 {
			cp, err2 = strconv.Atoi(f[1])
		}
		if len(f) > 2 || err1 != nil || err2 != nil || base < 1 || cp < base {
			errf(d.Pos, "restart_timeout %s: give seconds, or BASE CAP with CAP >= BASE (e.g. 5 30)", v)
		}
		b.RestartBase, b.RestartCap = time.Duration(base)*time.Second, time.Duration(cp)*time.Second
	case "try_private":
		b.TryPrivate = boolv()
	case "notifications":
		b.Notifications = boolv()
	case "notifications_local_only":
		b.NotificationsLocal = boolv()
	case "notification_topic":
		b.NotificationTopic = v
	case "bridge_outgoing_retain":
		b.OutgoingRetain = boolv()
	}
}

// addTopic reads `topic PATTERN [[[out|in|both] QOS] LOCAL_PREFIX REMOTE_PREFIX]`.
func (b *BridgeSpec) addTopic(d Directive, errf func(Pos, string, ...any)) {
	f := splitTopicLine(d.Value)
	if strings.TrimSpace(d.Value) == "" || len(f) > 5 || len(f) == 4 {
		errf(d.Pos, "topic %s: use 'topic PATTERN [out|in|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]'", d.Value)
		return
	}
	t := BridgeTopic{Pattern: f[0], Direction: "out", Pos: d.Pos}
	if len(f) > 1 {
		t.Direction = f[1]
		if t.Direction != "out" && t.Direction != "in" && t.Direction != "both" {
			errf(d.Pos, "topic %s: direction %q: use out, in or both", d.Value, f[1])
		}
	}
	if len(f) > 2 {
		q, err := strconv.Atoi(f[2])
		if err != nil || q < 0 || q > 2 {
			errf(d.Pos, "topic %s: QoS %q: use 0, 1 or 2", d.Value, f[2])
		}
		t.QoS = byte(q)
	}
	if len(f) == 5 {
		t.LocalPrefix, t.RemotePrefix = f[3], f[4]
	}
	for _, p := range []string{t.LocalPrefix, t.RemotePrefix} {
		if strings.ContainsAny(p, "+#") {
			errf(d.Pos, "topic %s: prefix %q has a wildcard; a prefix is a plain topic beginning", d.Value, p)
		}
	}
	if t.Pattern == "" && (t.LocalPrefix == "" || t.RemotePrefix == "") {
		errf(d.Pos, `topic %s: an empty pattern ("") needs both prefixes, each then a whole topic`, d.Value)
	}
	if t.Pattern != "" {
		if err := ValidateTopicFilter(t.Pattern); err != nil {
			errf(d.Pos, "topic %s: %v", d.Value, err)
		}
	}
	b.Topics = append(b.Topics, t)
}
