package confgen

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// scope is what one option's apply function changes (see ServeSupport):
// the whole configuration, the security options in force where the option
// stands (global, or a listener's with per_listener_settings true), and,
// inside a listener block, that listener and its TLS options.
type scope struct {
	r       *Resolved
	sec     *Security
	anonSet *bool // allow_anonymous was given for sec
	l       *ListenerSpec
	tls     *TLS
	ds      *[]Diagnostic
	// plugins maps the parse order of each plugin_opt_* line to the path of
	// the plugin it configures (mosquitto's latest plugin line).
	plugins map[int]string
}

func (s *scope) errf(p Pos, f string, a ...any) {
	*s.ds = append(*s.ds, Diagnostic{Pos: p, Msg: fmt.Sprintf(f, a...)})
}

func (s *scope) warnf(p Pos, f string, a ...any) {
	*s.ds = append(*s.ds, Diagnostic{Pos: p, Warning: true, Msg: fmt.Sprintf(f, a...)})
}

// applyOption applies d with its row's apply function; options without
// one (logging, refused, structural ones such as port) change nothing.
func applyOption(s *scope, d Directive) {
	if row, ok := optionRow(d.Key); ok && row.apply != nil {
		row.apply(s, d)
	}
}

// optionRow is the table row of a mosquitto option or of one of mqttctl's
// own ("# mqttctl: ...").
func optionRow(key string) (ServeSupport, bool) {
	if row, ok := extensionRows[key]; ok {
		return row, true
	}
	return SupportOf(key)
}

// extensionRows are mqttctl's own options, comments to mosquitto.
var extensionRows = map[string]ServeSupport{
	ExtPrefix + "http_origin":        {Support: Implemented, apply: applyHTTPOrigin, render: renderHTTPOrigin},
	ExtPrefix + "renew_pki":          {Support: Implemented, apply: applyRenewPKI},
	ExtPrefix + "provision_by_claim": {Support: Implemented, apply: applyProvisionByClaim},
	ExtPrefix + "renew_days":         {Support: Implemented, apply: applyRenewDays},
}

// security options: s.sec is the global Security or the listener's.

func applyAllowAnonymous(s *scope, d Directive) {
	s.sec.AllowAnonymous = boolOf(d.Value)
	*s.anonSet = true
}

func applyPasswordFile(s *scope, d Directive) {
	s.sec.PasswordFile, s.sec.PasswordFilePos = d.Value, d.Pos
}

func applyACLFile(s *scope, d Directive) { s.sec.ACLFile, s.sec.ACLFilePos = d.Value, d.Pos }

func applyAllowZeroLengthClientID(s *scope, d Directive) {
	s.sec.AllowZeroLengthClientID = boolOf(d.Value)
}

func applyAutoIDPrefix(s *scope, d Directive) { s.sec.AutoIDPrefix = d.Value }

// applyPluginPasswordFile: mosquitto 2.1's password-file plugin reads the
// file password_file names in 2.0.
func applyPluginPasswordFile(s *scope, d Directive) {
	if s.pluginOptOf(d, PasswordFilePlugin) {
		applyPasswordFile(s, d)
		s.sec.PasswordFilePlugin = true
	}
}

// pluginOptOf reports whether the plugin_opt_* line d belongs to plugin
// (mosquitto gives it to the latest plugin line before it); an error at
// its line if it belongs to mosquitto's other file plugin, which refuses
// the option and stops mosquitto at start (found by the adversarial run:
// serve ran with the first password file).
func (s *scope) pluginOptOf(d Directive, plugin string) bool {
	got := filepath.Base(s.plugins[d.seq])
	if got == plugin {
		return true
	}
	if got == PasswordFilePlugin || got == ACLFilePlugin {
		s.errf(d.Pos, "%s follows plugin %s, which mosquitto gives it to and which refuses it (mosquitto 2.1 does not start): put it after plugin %s", d.Key, got, plugin)
	}
	return false
}

// applyPluginACLFile: mosquitto 2.1's acl-file plugin reads the file
// acl_file names in 2.0.
func applyPluginACLFile(s *scope, d Directive) {
	if s.pluginOptOf(d, ACLFilePlugin) {
		applyACLFile(s, d)
		s.sec.ACLFilePlugin = true
	}
}

// global options: s.r.

func applyMaxPacketSize(s *scope, d Directive) { s.r.MaxPacketSize = intOf(d.Value, 0) }

func applyMessageSizeLimit(s *scope, d Directive) {
	s.warnf(d.Pos, "message_size_limit is deprecated: use max_packet_size")
}

func applyMaxInflightMessages(s *scope, d Directive) { s.r.MaxInflight = intOf(d.Value, 20) }

func applyMaxQueuedMessages(s *scope, d Directive) { s.r.MaxQueued = intOf(d.Value, 1000) }

func applyPersistence(s *scope, d Directive) { s.r.Persistence = boolOf(d.Value) }

func applyPersistenceLocation(s *scope, d Directive) { s.r.PersistenceLocation = d.Value }

func applyPersistenceFile(s *scope, d Directive) {
	s.r.PersistenceFile = d.Value
	if strings.ContainsRune(d.Value, '/') {
		s.errf(d.Pos, "persistence_file %s: give a file name; the directory is persistence_location", d.Value)
	}
}

func applyPIDFile(s *scope, d Directive) { s.r.PIDFile = d.Value }

func applyUser(s *scope, d Directive) { s.r.User = d.Value }

func applyMaxKeepalive(s *scope, d Directive) {
	s.r.MaxKeepalive = intOf(d.Value, 0)
	if s.r.MaxKeepalive < 0 || s.r.MaxKeepalive > 65535 {
		s.errf(d.Pos, "max_keepalive %s: use 0 to 65535 seconds", d.Value)
	}
}

func applyRetainAvailable(s *scope, d Directive) { s.r.RetainAvailable = boolOf(d.Value) }

func applySysInterval(s *scope, d Directive) {
	s.r.SysInterval = intOf(d.Value, 10)
	if s.r.SysInterval < 0 {
		s.errf(d.Pos, "sys_interval %s: use a number of seconds", d.Value)
	}
}

// applyGlobalMaxConnections: mosquitto 2.1 closes a new connection at once
// when all listeners have this many; it counts a bridge's own connection
// too, which serve's bridges do not make through a listener.
func applyGlobalMaxConnections(s *scope, d Directive) {
	s.r.GlobalMaxConnections = intOf(d.Value, -1)
}

// listener options: s.l, and s.tls for the TLS ones.

func applyHTTPOrigin(s *scope, d Directive) {
	if !validOrigin(d.Value) {
		s.errf(d.Pos, "http_origin %q: give a page's origin, scheme://host[:port], e.g. https://app.example.com", d.Value)
	}
	checkOriginCase(s, d)
	s.l.Origins = append(s.l.Origins, strings.TrimSuffix(d.Value, "/"))
}

func applyRenewPKI(s *scope, d Directive) {
	if d.Value == "" || strings.ContainsAny(d.Value, " \t") {
		s.errf(d.Pos, "renew_pki %q: give the pki directory (mqttctl pki init --dir DIR), e.g. # mqttctl: renew_pki /etc/mqttctl/pki", d.Value)
	}
	s.l.RenewPKI = d.Value
}

// MaxRenewDays bounds renew_days: pki's limit for a leaf certificate
// (pki.LeafMaxDays, 825 days, the CA/Browser Forum's old maximum).
const MaxRenewDays = 825

func applyRenewDays(s *scope, d Directive) {
	n, err := strconv.Atoi(d.Value)
	if err != nil || n < 1 || n > MaxRenewDays {
		s.errf(d.Pos, "renew_days %q: give a number of days from 1 to %d, e.g. # mqttctl: renew_days 90", d.Value, MaxRenewDays)
		return
	}
	s.l.RenewDays = n
}

func applyProvisionByClaim(s *scope, d Directive) {
	switch d.Value {
	case "on":
		s.l.Provision = true
	case "off":
		s.l.Provision = false
	default:
		s.errf(d.Pos, "provision_by_claim %q: use on or off", d.Value)
	}
}

// applyWebsocketsOrigin: mosquitto 2.1's own list of the page origins a
// websockets listener accepts.
func applyWebsocketsOrigin(s *scope, d Directive) {
	checkOriginCase(s, d)
	s.l.Origins = append(s.l.Origins, strings.TrimSuffix(d.Value, "/"))
}

// checkOriginCase refuses an origin with capitals: browsers send the
// scheme and host in lower case and mosquitto compares case-sensitively,
// so such an entry would refuse every browser under mosquitto (serve
// compares the same way).
func checkOriginCase(s *scope, d Directive) {
	if strings.ToLower(d.Value) != d.Value {
		s.errf(d.Pos, "%s %q: browsers send the origin in lower case and mosquitto compares it exactly, so no browser would match: write %q", strings.TrimPrefix(d.Key, ExtPrefix), d.Value, strings.ToLower(d.Value))
	}
}

// validOrigin reports whether v is a page's origin, scheme://host[:port]
// (a trailing / allowed).
func validOrigin(v string) bool {
	u, err := url.Parse(v)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" && (u.Path == "" || u.Path == "/")
}

// applyAcceptProtocolVersions reads mosquitto 2.1's list, as it does:
// separated by commas, spaces or tabs; other words are ignored; the last
// line of a listener counts.
func applyAcceptProtocolVersions(s *scope, d Directive) {
	accept := []byte{}
	words := strings.FieldsFunc(d.Value, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	for _, w := range words {
		if v := map[string]byte{"3": 3, "4": 4, "5": 5}[w]; v != 0 && !slices.Contains(accept, v) {
			accept = append(accept, v)
		}
	}
	if len(words) == 0 {
		s.errf(d.Pos, "accept_protocol_versions %q: give the protocol levels to accept, e.g. 4, 5 (3 is MQTT 3.1, 4 is 3.1.1, 5 is 5.0)", d.Value)
	}
	s.l.AcceptProtocolVersions = accept
}

func applyProtocol(s *scope, d Directive) { s.l.Protocol = d.Value }

func applyMaxConnections(s *scope, d Directive) { s.l.MaxConnections = intOf(d.Value, -1) }

func applyMountPoint(s *scope, d Directive) {
	s.l.MountPoint = d.Value
	if err := ValidateTopicName(d.Value); err != nil || strings.ContainsAny(d.Value, "+#") {
		s.errf(d.Pos, "mount_point %q: it must be a topic prefix without '+' or '#', e.g. site1/", d.Value)
	}
}

func applySocketDomain(s *scope, d Directive) { s.l.SocketDomain = d.Value }

func applyUseUsernameAsClientID(s *scope, d Directive) { s.l.UseUsernameAsClientID = boolOf(d.Value) }

func applyMaxTopicAlias(s *scope, d Directive) {
	s.l.MaxTopicAlias = intOf(d.Value, 10)
	if s.l.MaxTopicAlias < 0 || s.l.MaxTopicAlias > 65535 {
		s.errf(d.Pos, "max_topic_alias %s: use 0 to 65535", d.Value)
	}
}

func applyCAFile(s *scope, d Directive) { s.tls.CAFile = d.Value }

func applyCAPath(s *scope, d Directive) { s.tls.CAPath = d.Value }

func applyCertFile(s *scope, d Directive) { s.tls.CertFile = d.Value }

func applyKeyFile(s *scope, d Directive) { s.tls.KeyFile = d.Value }

func applyCRLFile(s *scope, d Directive) { s.tls.CRLFile = d.Value }

func applyTLSVersion(s *scope, d Directive) {
	s.tls.TLSVersion = d.Value
	if d.Value == "tlsv1.1" {
		s.errf(d.Pos, "tls_version tlsv1.1 allows an obsolete protocol: use tlsv1.2 (the default) or tlsv1.3")
	}
}

func applyCiphers(s *scope, d Directive) { s.tls.Ciphers = d.Value }

func applyCiphersTLS13(s *scope, d Directive) { s.tls.CiphersTLS13 = d.Value }

func applyRequireCertificate(s *scope, d Directive) { s.tls.RequireCertificate = boolOf(d.Value) }

func applyUseIdentityAsUsername(s *scope, d Directive) { s.tls.UseIdentityAsUsername = boolOf(d.Value) }

func applyUseSubjectAsUsername(s *scope, d Directive) { s.tls.UseSubjectAsUsername = boolOf(d.Value) }

// missingPluginFiles are errors at each password-file or acl-file plugin
// line no plugin_opt_password_file / plugin_opt_acl_file follows:
// mosquitto 2.1 cannot open a password file it is not given.
func (c *Config) missingPluginFiles(plugins map[int]string) []Diagnostic {
	need := map[string]string{PasswordFilePlugin: "plugin_opt_password_file", ACLFilePlugin: "plugin_opt_acl_file"}
	has := map[string]bool{}
	var all []Directive
	all = append(all, c.Global...)
	for _, l := range c.Listener {
		all = append(all, l.Options...)
	}
	for _, d := range all {
		if _, ok := need[filepath.Base(plugins[d.seq])]; ok && need[filepath.Base(plugins[d.seq])] == d.Key {
			has[plugins[d.seq]+"\x00"+d.Key] = true
		}
	}
	var ds []Diagnostic
	for _, d := range all {
		opt, ok := need[filepath.Base(d.Value)]
		if (d.Key == "plugin" || d.Key == "global_plugin") && ok && !has[d.Value+"\x00"+opt] {
			ds = append(ds, Diagnostic{Pos: d.Pos, Msg: fmt.Sprintf("%s %s has no %s line after it: add one with the file it reads", d.Key, d.Value, opt)})
		}
	}
	return ds
}

// pluginLines maps each plugin_opt_* line (by parse order) to the plugin
// line before it: mosquitto gives an option to the latest plugin, wherever
// each stands.
func (c *Config) pluginLines() map[int]string {
	var all []Directive
	all = append(all, c.Global...)
	for _, l := range c.Listener {
		all = append(all, l.Options...)
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].seq < all[j].seq })
	out := map[int]string{}
	cur := ""
	for _, d := range all {
		switch {
		case d.Key == "plugin" || d.Key == "global_plugin" || d.Key == "auth_plugin":
			cur = d.Value
		case d.Key == "plugin_load":
			_, path, _ := strings.Cut(d.Value, " ")
			cur = strings.TrimSpace(path)
		case strings.HasPrefix(d.Key, "plugin_opt_") || strings.HasPrefix(d.Key, "auth_opt_"):
			out[d.seq] = cur
		}
	}
	return out
}

// crossBlockPluginOpts refuses a file plugin's plugin_opt_ line that sits in
// another block (global, or a listener) than its plugin line: mosquitto
// gives it to the latest plugin line wherever that is, so the password
// file would go to the other listener (found by the adversarial run: serve
// and mosquitto 2.1.2 let u1 in on opposite listeners).
func (c *Config) crossBlockPluginOpts() []Diagnostic {
	type placed struct {
		d     Directive
		block int // -1: global
	}
	var all []placed
	for _, d := range c.Global {
		all = append(all, placed{d, -1})
	}
	for i, l := range c.Listener {
		for _, d := range l.Options {
			all = append(all, placed{d, i})
		}
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].d.seq < all[j].d.seq })
	var ds []Diagnostic
	var plugin *placed
	for i := range all {
		p := &all[i]
		switch p.d.Key {
		case "plugin", "global_plugin", "auth_plugin", "plugin_load":
			plugin = p
		case "plugin_opt_password_file", "plugin_opt_acl_file":
			if plugin != nil && plugin.block != p.block {
				ds = append(ds, Diagnostic{Pos: p.d.Pos, Msg: fmt.Sprintf("%s configures the plugin of %s, in another block (mosquitto gives it to the latest plugin line): put it right after a plugin line in its own block", p.d.Key, plugin.d.Pos)})
			}
		}
	}
	return ds
}

func applyDisableClientCertDateChecks(s *scope, d Directive) {
	s.tls.DisableClientCertDateChecks = boolOf(d.Value)
}
