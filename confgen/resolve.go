package confgen

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
)

// Security holds the authentication and authorisation options in force for
// a listener.
type Security struct {
	AllowAnonymous          bool
	PasswordFile            string
	ACLFile                 string
	AllowZeroLengthClientID bool   // default true
	AutoIDPrefix            string // default "auto-"
	PasswordFilePos         Pos    // where password_file was set, for errors
	ACLFilePos              Pos    // where acl_file was set
}

// TLS holds a listener's TLS options; nil on a plain listener.
type TLS struct {
	CAFile, CAPath, CertFile, KeyFile, CRLFile string
	TLSVersion                                 string // minimum: tlsv1.2 (default) or tlsv1.3
	Ciphers, CiphersTLS13                      string
	RequireCertificate                         bool
	UseIdentityAsUsername                      bool
	UseSubjectAsUsername                       bool
}

// ListenerSpec is a listener with every option resolved.
type ListenerSpec struct {
	Port           int
	Bind           string
	Protocol       string
	MaxConnections int // -1 unlimited
	MountPoint     string
	// Origins are the page origins a websockets listener accepts (# mqttctl:
	// http_origin); none means any, as mosquitto.
	Origins []string
	// RenewPKI is the pki directory whose CA answers this listener's
	// clients on $mqttctl/renew (# mqttctl: renew_pki); "" serves nothing.
	RenewPKI string
	// Provision lets claim certificates in, to ask on $mqttctl/provision
	// (# mqttctl: provision_by_claim on); it needs RenewPKI.
	Provision    bool
	SocketDomain string // "", ipv4 or ipv6
	// UseUsernameAsClientID makes the username the client id.
	UseUsernameAsClientID bool
	// OptionPos says where each listener option was set, for errors about
	// the files they name.
	OptionPos     map[string]Pos
	MaxTopicAlias int // -1: not set (mosquitto's default is 10)
	TLS           *TLS
	Security      Security
	Pos           Pos
}

// Addr is the listener's host:port (an empty host means all interfaces).
func (l ListenerSpec) Addr() string {
	host := l.Bind
	if host != "" && containsColon(host) {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(l.Port)
}

// Scheme is the URL scheme clients use for the listener: mqtt, mqtts, ws
// or wss.
func (l ListenerSpec) Scheme() string {
	s := "mqtt"
	if l.Protocol == "websockets" {
		s = "ws"
	}
	if l.TLS != nil {
		s += "s"
	}
	return s
}

// Kind describes the listener's transport in words: "plain MQTT", "MQTT
// over mutual TLS (tlsv1.2+)", "MQTT over WebSocket (ws://, no TLS)", ...
func (l ListenerSpec) Kind() string {
	sec := "no TLS"
	if l.TLS != nil {
		v := l.TLS.TLSVersion
		if v == "" {
			v = "tlsv1.2"
		}
		sec = "TLS (" + v + "+)"
		if l.TLS.RequireCertificate {
			sec = "mutual TLS (" + v + "+)"
		}
	}
	switch {
	case l.Protocol == "websockets":
		return "MQTT over WebSocket (" + l.Scheme() + "://, " + sec + ")"
	case l.TLS == nil:
		return "plain MQTT (mqtt://, no TLS)"
	}
	return "MQTT over " + sec + " (mqtts://)"
}

func containsColon(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			return true
		}
	}
	return false
}

// tlsOptions are the listener options that only mean something on a TLS
// listener (one with certfile and keyfile).
var tlsOptions = map[string]bool{
	"cafile": true, "capath": true, "certfile": true, "keyfile": true, "ciphers": true, "ciphers_tls1.3": true,
	"crlfile": true, "dhparamfile": true, "require_certificate": true, "tls_engine": true, "tls_engine_kpass_sha1": true,
	"tls_keyform": true, "tls_version": true, "use_identity_as_username": true, "use_subject_as_username": true,
}

// Resolved is the effective configuration: what a broker runs.
type Resolved struct {
	Listeners           []ListenerSpec
	PerListenerSettings bool
	MaxPacketSize       int
	MaxInflight         int // 0: unlimited
	MaxQueued           int
	MaxKeepalive        int // 0: no limit
	MaxTopicAlias       int // mosquitto's default is 10
	RetainAvailable     bool
	SysInterval         int // seconds; mosquitto's default is 10
	Persistence         bool
	PersistenceLocation string
	PersistenceFile     string // "" means the broker's default name
	PIDFile             string
	User                string
	Bridges             []BridgeSpec
	// GlobalPos says where each global option was last set.
	GlobalPos map[string]Pos
}

// ResolveForServe is Resolve plus CheckServe: everything `mqttctl serve`
// refuses in the file, each at its line.
func (c *Config) ResolveForServe() (*Resolved, []Diagnostic) {
	r, ds := c.Resolve()
	return r, append(ds, c.CheckServe()...)
}

// Diagnostic is a validation finding with its position.
type Diagnostic struct {
	Pos     Pos
	Warning bool
	Msg     string
	// Kind, when set, is the kind of problem (matched with errors.As)
	// for a command to turn into advice in terms of flags.
	Kind error
}

func (d Diagnostic) String() string {
	kind := "error"
	if d.Warning {
		kind = "warning"
	}
	return fmt.Sprintf("%s: %s: %s", d.Pos, kind, d.Msg)
}

// DiagnosticOf turns an error into an error diagnostic, at its position
// when it is (or wraps) a *ConfigError.
func DiagnosticOf(err error) Diagnostic {
	var ce *ConfigError
	if errors.As(err, &ce) {
		msg := strings.TrimPrefix(ce.Error(), ce.Pos.String()+": ")
		return Diagnostic{Pos: ce.Pos, Msg: msg, Warning: ce.Warning}
	}
	return Diagnostic{Msg: err.Error()}
}

// HasErrors reports whether any diagnostic is an error.
func HasErrors(ds []Diagnostic) bool {
	for _, d := range ds {
		if !d.Warning {
			return true
		}
	}
	return false
}

func boolOf(v string) bool { b, _ := ParseBool(v); return b }

func intOf(v string, def int) int {
	if n, err := strconv.Atoi(v); err == nil {
		return n
	}
	return def
}

// Resolve computes the effective listeners and security with mosquitto 2.0's
// rules, and validates the whole: errors for what mosquitto would reject or
// silently get wrong (TLS options without certfile and keyfile,
// require_certificate without a CA, security options before
// per_listener_settings), warnings for risky set-ups.
func (c *Config) Resolve() (*Resolved, []Diagnostic) {
	var ds []Diagnostic
	errf := func(p Pos, f string, a ...any) { ds = append(ds, Diagnostic{Pos: p, Msg: fmt.Sprintf(f, a...)}) }
	warnf := func(p Pos, f string, a ...any) {
		ds = append(ds, Diagnostic{Pos: p, Warning: true, Msg: fmt.Sprintf(f, a...)})
	}
	r := &Resolved{MaxInflight: 20, MaxQueued: 1000, MaxTopicAlias: 10, RetainAvailable: true, SysInterval: 10, GlobalPos: map[string]Pos{}}
	for _, d := range c.Global {
		r.GlobalPos[d.Key] = d.Pos
	}
	perListener := false
	plsSeq := -1
	for _, d := range c.Global {
		if d.Key == "per_listener_settings" {
			perListener = boolOf(d.Value)
			plsSeq = d.seq
		}
	}
	r.PerListenerSettings = perListener
	// Security options before per_listener_settings are applied under the
	// wrong mode by mosquitto.
	if plsSeq >= 0 {
		check := func(d Directive) {
			if IsSecurityOption(d.Key) && d.seq < plsSeq && d.seq > 0 {
				errf(d.Pos, "%s comes before per_listener_settings; mosquitto applies it under the wrong mode: move per_listener_settings to the top", d.Key)
			}
		}
		for _, d := range c.Global {
			check(d)
		}
		for _, l := range c.Listener {
			for _, d := range l.Options {
				check(d)
			}
		}
	}
	global := Security{AllowZeroLengthClientID: true, AutoIDPrefix: "auto-"}
	anonSet := false
	applySec := func(s *Security, d Directive) bool {
		switch d.Key {
		case "allow_anonymous":
			s.AllowAnonymous = boolOf(d.Value)
			return true
		case "password_file":
			s.PasswordFile, s.PasswordFilePos = d.Value, d.Pos
		case "acl_file":
			s.ACLFile, s.ACLFilePos = d.Value, d.Pos
		case "allow_zero_length_clientid":
			s.AllowZeroLengthClientID = boolOf(d.Value)
		case "auto_id_prefix":
			s.AutoIDPrefix = d.Value
		}
		return false
	}
	for _, d := range c.Global {
		if IsSecurityOption(d.Key) {
			if perListener {
				errf(d.Pos, "%s is before the first listener but per_listener_settings is true: put it inside a listener block", d.Key)
			}
			anonSet = applySec(&global, d) || anonSet
		}
		switch d.Key {
		case "max_packet_size":
			r.MaxPacketSize = intOf(d.Value, 0)
		case "message_size_limit":
			warnf(d.Pos, "message_size_limit is deprecated: use max_packet_size")
		case "max_inflight_messages":
			r.MaxInflight = intOf(d.Value, 20)
		case "max_queued_messages":
			r.MaxQueued = intOf(d.Value, 1000)
		case "persistence":
			r.Persistence = boolOf(d.Value)
		case "persistence_location":
			r.PersistenceLocation = d.Value
		case "persistence_file":
			r.PersistenceFile = d.Value
			if strings.ContainsRune(d.Value, '/') {
				errf(d.Pos, "persistence_file %s: give a file name; the directory is persistence_location", d.Value)
			}
		case "pid_file":
			r.PIDFile = d.Value
		case "user":
			r.User = d.Value
		case "max_keepalive":
			r.MaxKeepalive = intOf(d.Value, 0)
			if r.MaxKeepalive < 0 || r.MaxKeepalive > 65535 {
				errf(d.Pos, "max_keepalive %s: use 0 to 65535 seconds", d.Value)
			}
		case "retain_available":
			r.RetainAvailable = boolOf(d.Value)
		case "sys_interval":
			r.SysInterval = intOf(d.Value, 10)
			if r.SysInterval < 0 {
				errf(d.Pos, "sys_interval %s: use a number of seconds", d.Value)
			}
		}
	}
	if !perListener {
		for _, l := range c.Listener {
			for _, d := range l.Options {
				if IsSecurityOption(d.Key) {
					anonSet = applySec(&global, d) || anonSet
				}
			}
		}
	}
	listeners := c.Listener
	if port, ok := c.Get("port"); ok {
		pos := Pos{}
		for _, d := range c.Global {
			if d.Key == "port" {
				pos = d.Pos
			}
		}
		bind, _ := c.Get("bind_address")
		listeners = append([]*Listener{{Port: intOf(port, 1883), Bind: bind, Pos: pos}}, listeners...)
	}
	localOnly := false
	if len(listeners) == 0 {
		// mosquitto 2.0 without listeners: local only mode.
		listeners = []*Listener{{Port: 1883, Bind: "127.0.0.1"}}
		localOnly = true
	}
	seen := map[string]Pos{}
	for _, l := range listeners {
		spec := ListenerSpec{Port: l.Port, Bind: l.Bind, Protocol: "mqtt", MaxConnections: -1, MaxTopicAlias: -1, Pos: l.Pos, OptionPos: map[string]Pos{}}
		if prev, dup := seen[spec.Addr()]; dup {
			errf(l.Pos, "a listener on %s is already defined at %s", spec.Addr(), prev)
		}
		seen[spec.Addr()] = l.Pos
		sec := global
		lAnonSet := anonSet
		t := &TLS{TLSVersion: "tlsv1.2"}
		tlsKeys := map[string]Pos{}
		for _, d := range l.Options {
			if perListener && IsSecurityOption(d.Key) {
				lAnonSet = applySec(&sec, d) || lAnonSet
			}
			spec.OptionPos[d.Key] = d.Pos
			switch d.Key {
			case ExtPrefix + "http_origin":
				u, err := url.Parse(d.Value)
				if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" && u.Path != "/" {
					errf(d.Pos, "http_origin %q: give a page's origin, scheme://host[:port], e.g. https://app.example.com", d.Value)
				}
				spec.Origins = append(spec.Origins, strings.TrimSuffix(d.Value, "/"))
			case ExtPrefix + "renew_pki":
				if d.Value == "" || strings.ContainsAny(d.Value, " \t") {
					errf(d.Pos, "renew_pki %q: give the pki directory (mqttctl pki init --dir DIR), e.g. # mqttctl: renew_pki /etc/mqttctl/pki", d.Value)
				}
				spec.RenewPKI = d.Value
			case ExtPrefix + "provision_by_claim":
				switch d.Value {
				case "on":
					spec.Provision = true
				case "off":
					spec.Provision = false
				default:
					errf(d.Pos, "provision_by_claim %q: use on or off", d.Value)
				}
			case "protocol":
				spec.Protocol = d.Value
			case "max_connections":
				spec.MaxConnections = intOf(d.Value, -1)
			case "mount_point":
				spec.MountPoint = d.Value
				if err := ValidateTopicName(d.Value); err != nil || strings.ContainsAny(d.Value, "+#") {
					errf(d.Pos, "mount_point %q: it must be a topic prefix without '+' or '#', e.g. site1/", d.Value)
				}
			case "socket_domain":
				spec.SocketDomain = d.Value
			case "use_username_as_clientid":
				spec.UseUsernameAsClientID = boolOf(d.Value)
			case "max_topic_alias":
				spec.MaxTopicAlias = intOf(d.Value, 10)
				if spec.MaxTopicAlias < 0 || spec.MaxTopicAlias > 65535 {
					errf(d.Pos, "max_topic_alias %s: use 0 to 65535", d.Value)
				}
			case "cafile":
				t.CAFile = d.Value
			case "capath":
				t.CAPath = d.Value
			case "certfile":
				t.CertFile = d.Value
			case "keyfile":
				t.KeyFile = d.Value
			case "crlfile":
				t.CRLFile = d.Value
			case "tls_version":
				t.TLSVersion = d.Value
				if d.Value == "tlsv1.1" {
					errf(d.Pos, "tls_version tlsv1.1 allows an obsolete protocol: use tlsv1.2 (the default) or tlsv1.3")
				}
			case "ciphers":
				t.Ciphers = d.Value
			case "ciphers_tls1.3":
				t.CiphersTLS13 = d.Value
			case "require_certificate":
				t.RequireCertificate = boolOf(d.Value)
			case "use_identity_as_username":
				t.UseIdentityAsUsername = boolOf(d.Value)
			case "use_subject_as_username":
				t.UseSubjectAsUsername = boolOf(d.Value)
			}
			if tlsOptions[d.Key] {
				tlsKeys[d.Key] = d.Pos
			}
		}
		switch {
		case t.CertFile != "" && t.KeyFile == "":
			errf(tlsKeys["certfile"], "certfile without keyfile: mosquitto would silently serve plain MQTT on port %d; add keyfile", l.Port)
		case t.KeyFile != "" && t.CertFile == "":
			errf(tlsKeys["keyfile"], "keyfile without certfile: add certfile (the server certificate)")
		case t.CertFile == "" && t.KeyFile == "":
			for k, p := range tlsKeys {
				errf(p, "%s is set but the listener on port %d has no certfile/keyfile, so it serves plain MQTT: add certfile and keyfile, or remove %s", k, l.Port, k)
			}
			t = nil
		}
		if t != nil {
			if t.RequireCertificate && t.CAFile == "" && t.CAPath == "" {
				errf(tlsKeys["require_certificate"], "require_certificate true needs cafile or capath (the CA that signs client certificates)")
			}
			if (t.UseIdentityAsUsername || t.UseSubjectAsUsername) && !t.RequireCertificate {
				key := "use_identity_as_username"
				if !t.UseIdentityAsUsername {
					key = "use_subject_as_username"
				}
				warnf(tlsKeys[key], "%s without require_certificate true: clients without a certificate are refused with 'not authorised' instead of a TLS error", key)
			}
		}
		spec.TLS = t
		if !lAnonSet {
			sec.AllowAnonymous = localOnly
		}
		if t != nil && spec.Bind == "" && !t.RequireCertificate && (sec.AllowAnonymous || sec.PasswordFile == "") {
			warnf(l.Pos, "TLS listener on port %d listens on every interface but asks for neither client certificates nor passwords: anyone who can reach it can connect", l.Port)
		}
		if !sec.AllowAnonymous && sec.PasswordFile == "" && (t == nil || !t.UseIdentityAsUsername && !t.UseSubjectAsUsername) {
			warnf(l.Pos, "no client can log in on the listener on port %d: allow_anonymous is false and there is no password_file (nor use_identity_as_username): add password_file, or use client certificates with use_identity_as_username", l.Port)
		}
		if t == nil && spec.Bind == "" && sec.AllowAnonymous && !localOnly {
			warnf(l.Pos, "plain listener on port %d on every interface allows anonymous clients", l.Port)
		}
		if len(spec.Origins) > 0 && spec.Protocol != "websockets" {
			errf(spec.OptionPos[ExtPrefix+"http_origin"], "http_origin applies to a websockets listener (protocol websockets); this one speaks %s", spec.Protocol)
		}
		checkEnrolOptions(spec, errf)
		spec.Security = sec
		r.Listeners = append(r.Listeners, spec)
	}
	r.Bridges = c.resolveBridges(errf)
	return r, ds
}

// checkEnrolOptions refuses renew_pki and provision_by_claim where serve cannot
// apply them: the answer is decided by the client's verified certificate,
// so the listener must require one; on an mqtt listener without a mount
// point (the $mqttctl topics are the broker's own).
func checkEnrolOptions(spec ListenerSpec, errf func(Pos, string, ...any)) {
	renew, hasRenew := spec.OptionPos[ExtPrefix+"renew_pki"]
	prov, hasProv := spec.OptionPos[ExtPrefix+"provision_by_claim"]
	if hasProv && spec.Provision && !hasRenew {
		errf(prov, "provision_by_claim on needs renew_pki in the same listener (the pki directory whose CA issues the devices' certificates): add # mqttctl: renew_pki DIR")
	}
	if !hasRenew {
		return
	}
	switch {
	case spec.TLS == nil || !spec.TLS.RequireCertificate:
		errf(renew, "renew_pki needs a listener that requires client certificates (certfile, keyfile, cafile and require_certificate true): a renewal is authorised by the client's certificate")
	case spec.Protocol != "mqtt":
		errf(renew, "renew_pki applies to an mqtt listener; this one speaks %s", spec.Protocol)
	case spec.MountPoint != "":
		errf(renew, "renew_pki cannot apply on a listener with mount_point %s ($mqttctl/renew is the broker's own topic, not the mount point's): remove one of the two", spec.MountPoint)
	}
}
