package confgen

import (
	"errors"
	"fmt"
	"slices"
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
	// PasswordFilePlugin and ACLFilePlugin say the file is mosquitto 2.1's
	// password-file or acl-file plugin's (plugin_opt_password_file,
	// plugin_opt_acl_file): read at start only, a reload keeps it.
	PasswordFilePlugin, ACLFilePlugin bool
}

// TLS holds a listener's TLS options; nil on a plain listener.
type TLS struct {
	CAFile, CAPath, CertFile, KeyFile, CRLFile string
	TLSVersion                                 string // minimum: tlsv1.2 (default) or tlsv1.3
	Ciphers, CiphersTLS13                      string
	RequireCertificate                         bool
	UseIdentityAsUsername                      bool
	UseSubjectAsUsername                       bool
	// DisableClientCertDateChecks lets in client certificates (and their
	// chain) outside their validity period (mosquitto 2.1).
	DisableClientCertDateChecks bool
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
	Provision bool
	// RenewDays is the validity of the certificates RenewPKI issues
	// (# mqttctl: renew_days N); 0: the pki directory's default.
	RenewDays    int
	SocketDomain string // "", ipv4 or ipv6
	// UseUsernameAsClientID makes the username the client id.
	UseUsernameAsClientID bool
	// OptionPos says where each listener option was set, for errors about
	// the files they name.
	OptionPos     map[string]Pos
	MaxTopicAlias int // -1: not set (mosquitto's default is 10)
	// AcceptProtocolVersions are the MQTT protocol levels the listener
	// accepts (mosquitto 2.1's accept_protocol_versions: 3, 4, 5); nil
	// means all three.
	AcceptProtocolVersions []byte
	TLS                    *TLS
	Security               Security
	Pos                    Pos
}

// AcceptsProtocol reports whether the listener accepts protocol level v.
func (l ListenerSpec) AcceptsProtocol(v byte) bool {
	// A bridge's try_private sets the top bit; mosquitto 2.1 masks it
	// (src/handle_connect.c check_protocol_version).
	return l.AcceptProtocolVersions == nil || slices.Contains(l.AcceptProtocolVersions, v&0x7f)
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
	"disable_client_cert_date_checks": true,
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
	// GlobalMaxConnections bounds the connections of all listeners
	// together (mosquitto 2.1); <= 0: unlimited.
	GlobalMaxConnections int
	Bridges              []BridgeSpec
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
// per_listener_settings), warnings for risky set-ups. Each option is applied
// by its row of the option table (ServeSupport.apply).
func (c *Config) Resolve() (*Resolved, []Diagnostic) {
	var ds []Diagnostic
	r := &Resolved{MaxInflight: 20, MaxQueued: 1000, MaxTopicAlias: 10, RetainAvailable: true, SysInterval: 10, GlobalPos: map[string]Pos{}}
	for _, d := range c.Global {
		r.GlobalPos[d.Key] = d.Pos
	}
	r.PerListenerSettings = c.perListenerSettings(&ds)
	global := Security{AllowZeroLengthClientID: true, AutoIDPrefix: "auto-"}
	anonSet := false
	plugins := c.pluginLines()
	gs := &scope{r: r, sec: &global, anonSet: &anonSet, ds: &ds, plugins: plugins}
	for _, d := range c.Global {
		if IsSecurityOption(d.Key) && r.PerListenerSettings {
			gs.errf(d.Pos, "%s is before the first listener but per_listener_settings is true: put it inside a listener block", d.Key)
		}
		applyOption(gs, d)
	}
	if !r.PerListenerSettings {
		for _, l := range c.Listener {
			for _, d := range l.Options {
				if IsSecurityOption(d.Key) {
					applyOption(gs, d)
				}
			}
		}
	}
	listeners, localOnly := c.effectiveListeners()
	seen := map[string]Pos{}
	for _, l := range listeners {
		ls := &scope{r: r, ds: &ds, plugins: plugins}
		sec, lAnonSet := global, anonSet
		ls.sec, ls.anonSet = &sec, &lAnonSet
		r.Listeners = append(r.Listeners, ls.listener(l, localOnly, seen))
	}
	ds = append(ds, c.missingPluginFiles(plugins)...)
	ds = append(ds, c.crossBlockPluginOpts()...)
	errf := func(p Pos, f string, a ...any) { ds = append(ds, Diagnostic{Pos: p, Msg: fmt.Sprintf(f, a...)}) }
	r.Bridges = c.resolveBridges(errf)
	return r, ds
}

// perListenerSettings returns the value of per_listener_settings, with an
// error for each security option before it (mosquitto applies those under
// the wrong mode).
func (c *Config) perListenerSettings(ds *[]Diagnostic) bool {
	perListener := false
	plsSeq := -1
	for _, d := range c.Global {
		if d.Key == "per_listener_settings" {
			perListener = boolOf(d.Value)
			plsSeq = d.seq
		}
	}
	if plsSeq < 0 {
		return perListener
	}
	check := func(d Directive) {
		if IsSecurityOption(d.Key) && d.seq < plsSeq && d.seq > 0 {
			*ds = append(*ds, Diagnostic{Pos: d.Pos, Msg: fmt.Sprintf("%s comes before per_listener_settings; mosquitto applies it under the wrong mode: move per_listener_settings to the top", d.Key)})
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
	return perListener
}

// effectiveListeners are the listener blocks, after the deprecated default
// listener (port, bind_address) if there is one; without any, mosquitto
// 2.0's local only mode (1883 on 127.0.0.1).
func (c *Config) effectiveListeners() (listeners []*Listener, localOnly bool) {
	listeners = c.Listener
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
	if len(listeners) == 0 {
		return []*Listener{{Port: 1883, Bind: "127.0.0.1"}}, true
	}
	return listeners, false
}

// listener resolves one listener block in s (whose sec and anonSet start as
// copies of the global ones).
func (s *scope) listener(l *Listener, localOnly bool, seen map[string]Pos) ListenerSpec {
	spec := ListenerSpec{Port: l.Port, Bind: l.Bind, Protocol: "mqtt", MaxConnections: -1, MaxTopicAlias: -1, Pos: l.Pos, OptionPos: map[string]Pos{}}
	if prev, dup := seen[spec.Addr()]; dup {
		s.errf(l.Pos, "a listener on %s is already defined at %s", spec.Addr(), prev)
	}
	seen[spec.Addr()] = l.Pos
	s.l, s.tls = &spec, &TLS{TLSVersion: "tlsv1.2"}
	tlsKeys := map[string]Pos{}
	for _, d := range l.Options {
		spec.OptionPos[d.Key] = d.Pos
		if tlsOptions[d.Key] {
			tlsKeys[d.Key] = d.Pos
		}
		if !IsSecurityOption(d.Key) || s.r.PerListenerSettings {
			applyOption(s, d)
		}
	}
	spec.TLS = s.checkTLS(l.Port, tlsKeys)
	if !*s.anonSet {
		s.sec.AllowAnonymous = localOnly
	}
	spec.Security = *s.sec
	s.warnAccess(spec, localOnly)
	if len(spec.Origins) > 0 && spec.Protocol != "websockets" {
		s.errf(spec.OptionPos[ExtPrefix+"http_origin"], "http_origin applies to a websockets listener (protocol websockets); this one speaks %s", spec.Protocol)
	}
	checkEnrolOptions(spec, s.errf)
	return spec
}

// checkTLS returns the listener's TLS options, nil when it has no certfile
// and keyfile, with an error for each option that then means nothing.
func (s *scope) checkTLS(port int, tlsKeys map[string]Pos) *TLS {
	t := s.tls
	switch {
	case t.CertFile != "" && t.KeyFile == "":
		s.errf(tlsKeys["certfile"], "certfile without keyfile: mosquitto would silently serve plain MQTT on port %d; add keyfile", port)
	case t.KeyFile != "" && t.CertFile == "":
		s.errf(tlsKeys["keyfile"], "keyfile without certfile: add certfile (the server certificate)")
	case t.CertFile == "" && t.KeyFile == "":
		for k, p := range tlsKeys {
			s.errf(p, "%s is set but the listener on port %d has no certfile/keyfile, so it serves plain MQTT: add certfile and keyfile, or remove %s", k, port, k)
		}
		return nil
	}
	if t.RequireCertificate && t.CAFile == "" && t.CAPath == "" {
		s.errf(tlsKeys["require_certificate"], "require_certificate true needs cafile or capath (the CA that signs client certificates)")
	}
	if (t.UseIdentityAsUsername || t.UseSubjectAsUsername) && !t.RequireCertificate {
		key := "use_identity_as_username"
		if !t.UseIdentityAsUsername {
			key = "use_subject_as_username"
		}
		s.warnf(tlsKeys[key], "%s without require_certificate true: clients without a certificate are refused with 'not authorised' instead of a TLS error", key)
	}
	return t
}

// warnAccess warns about a listener anyone can use, or no one.
func (s *scope) warnAccess(spec ListenerSpec, localOnly bool) {
	t, sec := spec.TLS, spec.Security
	if t != nil && spec.Bind == "" && !t.RequireCertificate && (sec.AllowAnonymous || sec.PasswordFile == "") {
		s.warnf(spec.Pos, "TLS listener on port %d listens on every interface but asks for neither client certificates nor passwords: anyone who can reach it can connect", spec.Port)
	}
	if !sec.AllowAnonymous && sec.PasswordFile == "" && (t == nil || !t.UseIdentityAsUsername && !t.UseSubjectAsUsername) {
		s.warnf(spec.Pos, "no client can log in on the listener on port %d: allow_anonymous is false and there is no password_file (nor use_identity_as_username): add password_file, or use client certificates with use_identity_as_username", spec.Port)
	}
	if t == nil && spec.Bind == "" && sec.AllowAnonymous && !localOnly {
		s.warnf(spec.Pos, "plain listener on port %d on every interface allows anonymous clients", spec.Port)
	}
}

// checkEnrolOptions refuses renew_pki and provision_by_claim where serve cannot
// apply them: the answer is decided by the client's verified certificate,
// so the listener must require one; on an mqtt listener without a mount
// point (the $mqttctl topics are the broker's own).
func checkEnrolOptions(spec ListenerSpec, errf func(Pos, string, ...any)) {
	renew, hasRenew := spec.OptionPos[ExtPrefix+"renew_pki"]
	prov, hasProv := spec.OptionPos[ExtPrefix+"provision_by_claim"]
	if days, has := spec.OptionPos[ExtPrefix+"renew_days"]; has && !hasRenew {
		errf(days, "renew_days needs renew_pki in the same listener: add # mqttctl: renew_pki DIR")
	}
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
