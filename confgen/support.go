package confgen

import (
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// Support says what the bundled broker (`mqttctl serve`) does with a
// mosquitto.conf option.
type Support int

const (
	// Implemented: serve does what mosquitto does with every value.
	Implemented Support = iota
	// Logging: only changes what is logged where (or, for a few, latency);
	// serve logs to standard error with log/slog whatever the value, and
	// says so with a warning.
	Logging
	// DefaultOnly: serve behaves as mosquitto does with the option's default
	// value; any other value is refused.
	DefaultOnly
	// Refused: serve does not implement the option; a config that has it is
	// refused at start-up.
	Refused
)

func (s Support) String() string {
	switch s {
	case Implemented:
		return "implemented"
	case Logging:
		return "logging only (warning)"
	case DefaultOnly:
		return "default value only"
	}
	return "refused"
}

// ServeSupport is one row of the table of every mosquitto 2.0 option.
type ServeSupport struct {
	Support Support
	// Defaults are the values serve accepts for DefaultOnly (mosquitto's
	// default first).
	Defaults []string
	// Note says how serve implements it, or why it refuses.
	Note string
	// Refuse, when set, returns why serve refuses one value of an
	// otherwise implemented option ("" to accept it).
	Refuse func(value string) string
	// apply sets what the option means in the effective configuration
	// (Resolve): on the Resolved, the Security in force, or the listener;
	// nil for an option that changes nothing there.
	apply func(s *scope, d Directive)
	// render returns the lines `config mosquitto` writes for the option
	// (GenerateMosquitto): l is nil for a global option; nil for an option
	// it never writes.
	render func(p *mosqPlan, l *planListener) []Directive
}

// serveSupport is the table of every option mosquitto 2.0 accepts and what
// `mqttctl serve` does with it. TestServeSupportCoversEveryOption keeps it
// complete; the README's table is generated from it (ServeSupportTable).
var serveSupport = map[string]ServeSupport{
	// authentication and authorisation
	"acl_file":                       {Support: Implemented, Note: "mosquitto's matching order; reloaded on SIGHUP", apply: applyACLFile, render: renderACLFile},
	"allow_anonymous":                {Support: Implemented, Note: "false by default when listeners are defined; reloaded on SIGHUP", apply: applyAllowAnonymous, render: renderAllowAnonymous},
	"allow_zero_length_clientid":     {Support: Implemented, Note: "false: CONNACK 2 (v3.1.1) / 0x80 (v5) for an empty client id", apply: applyAllowZeroLengthClientID},
	"auto_id_prefix":                 {Support: Implemented, Note: "prefix of the ids given to clients that send none (default auto-)", apply: applyAutoIDPrefix},
	"password_file":                  {Support: Implemented, Note: "$7$ (12-byte salt: mosquitto 2.0; 64-byte: 2.1), $6$ and $argon2id$ hashes; reloaded on SIGHUP", apply: applyPasswordFile, render: renderPasswordFile},
	"per_listener_settings":          {Support: Implemented, Note: "", render: renderPerListenerSettings},
	"plugin":                         {Support: Implemented, Note: "only mosquitto 2.1's password-file and acl-file plugins (mosquitto_password_file.so with plugin_opt_password_file, mosquitto_acl_file.so with plugin_opt_acl_file), which serve does itself, as password_file and acl_file; other plugins are C shared objects serve cannot load", Refuse: refusePlugin, render: renderPlugin},
	"auth_plugin":                    {Support: Refused, Note: "plugins are C shared objects; serve cannot load them"},
	"auth_plugin_deny_special_chars": {Support: DefaultOnly, Defaults: []string{"true"}, Note: "only matters with plugins"},
	"psk_file":                       {Support: Refused, Note: "TLS-PSK is not supported by Go's crypto/tls"},
	"clientid_prefixes":              {Support: Refused, Note: "not implemented"},
	"check_retain_source":            {Support: DefaultOnly, Defaults: []string{"false"}, Note: "re-checking retained messages against the publisher's ACL is not implemented"},
	// listeners
	"listener":                 {Support: Implemented, Note: "TCP listeners; port 0 (unix sockets) is refused"},
	"port":                     {Support: Implemented, Note: "deprecated default listener"},
	"bind_address":             {Support: Implemented, Note: "deprecated default listener's address"},
	"bind_interface":           {Support: Refused, Note: "binding to an interface name is not implemented: give the address in the listener line"},
	"max_connections":          {Support: Implemented, Note: "per listener; -1 unlimited", apply: applyMaxConnections},
	"mount_point":              {Support: Implemented, Note: "prefixes the topics of publishes, subscriptions and wills, and is stripped from the topics sent to clients, as mosquitto does (differential test)", apply: applyMountPoint},
	"protocol":                 {Support: Implemented, Note: "mqtt or websockets (ws; wss with certfile/keyfile): any path; an upgrade without the mqtt (or mqttv3.1) subprotocol is refused and the Origin is not checked (as mosquitto); upgrade and CONNECT within the connect timeout", apply: applyProtocol, render: renderProtocol},
	"socket_domain":            {Support: Implemented, Note: "ipv4 or ipv6 only", apply: applySocketDomain},
	"use_username_as_clientid": {Support: Implemented, Note: "the username (or certificate identity) becomes the client id", apply: applyUseUsernameAsClientID},
	"http_dir":                 {Support: Refused, Note: "serve has no HTTP server"},
	"websockets_headers_size":  {Support: Logging, Note: "serve reads request headers up to Go's 1 MB limit"},
	"websockets_log_level":     {Support: Logging, Note: ""},
	// TLS
	"cafile":                   {Support: Implemented, Note: "", apply: applyCAFile, render: renderCAFile},
	"capath":                   {Support: Implemented, Note: "every PEM file in the directory", apply: applyCAPath},
	"certfile":                 {Support: Implemented, Note: "watched: a new certificate is served to new handshakes within a second (and on SIGHUP); the served chain includes intermediates from cafile", apply: applyCertFile, render: renderCertFile},
	"keyfile":                  {Support: Implemented, Note: "watched with certfile; a pair that does not match keeps the old one; an encrypted key is refused", apply: applyKeyFile, render: renderKeyFile},
	"ciphers":                  {Support: Implemented, Note: "OpenSSL names of ECDHE AEAD/CBC suites; keywords such as HIGH are refused", apply: applyCiphers},
	"ciphers_tls1.3":           {Support: DefaultOnly, Defaults: []string{"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"}, Note: "Go always offers all three TLS 1.3 suites and cannot restrict them", apply: applyCiphersTLS13},
	"crlfile":                  {Support: Implemented, Note: "checked for every certificate of the client's chain; as mosquitto, a client whose issuer has no CRL in it, or whose CRL expired or is not valid yet, is refused (config check reports both); watched: a change disconnects revoked clients within a second; an unreadable CRL refuses everyone until fixed", apply: applyCRLFile, render: renderCRLFile},
	"dhparamfile":              {Support: Refused, Note: "Go's crypto/tls has no DHE suites"},
	"require_certificate":      {Support: Implemented, Note: "", apply: applyRequireCertificate, render: renderRequireCertificate},
	"tls_engine":               {Support: Refused, Note: "OpenSSL engines are not available in Go"},
	"tls_engine_kpass_sha1":    {Support: Refused, Note: "OpenSSL engines are not available in Go"},
	"tls_keyform":              {Support: DefaultOnly, Defaults: []string{"pem"}, Note: "keys are read from PEM files only"},
	"tls_version":              {Support: Implemented, Note: "a minimum: tlsv1.2 (default) or tlsv1.3", apply: applyTLSVersion, render: renderTLSVersion},
	"use_identity_as_username": {Support: Implemented, Note: "", apply: applyUseIdentityAsUsername, render: renderUseIdentityAsUsername},
	"use_subject_as_username":  {Support: Implemented, Note: "RFC 2253 subject, as mosquitto", apply: applyUseSubjectAsUsername, render: renderUseSubjectAsUsername},
	"psk_hint":                 {Support: Refused, Note: "TLS-PSK is not supported by Go's crypto/tls"},
	// limits and protocol
	"max_inflight_bytes":           {Support: DefaultOnly, Defaults: []string{"0"}, Note: "byte limits on in-flight messages are not implemented"},
	"max_inflight_messages":        {Support: Implemented, Note: "per client; also the v5 Receive Maximum (default 20)", apply: applyMaxInflightMessages},
	"max_keepalive":                {Support: Implemented, Note: "v5 clients asking for more (or 0) are told the Server Keep Alive; v3.1.1 clients asking for more (or 0) get CONNACK 2, as mosquitto 2.1.2 does (2.0.11 let them in)", apply: applyMaxKeepalive},
	"max_packet_size":              {Support: Implemented, Note: "default 2000000 and advertised in the v5 CONNACK, as mosquitto 2.1.2 (2.0.11: no limit); a v5 packet over it gets DISCONNECT 0x95", apply: applyMaxPacketSize},
	"max_queued_bytes":             {Support: DefaultOnly, Defaults: []string{"0"}, Note: "byte limits on queues are not implemented"},
	"max_queued_messages":          {Support: Implemented, Note: "per client; a connected subscriber's write queue is 256 packets, publishers wait up to 1 s for it", apply: applyMaxQueuedMessages},
	"max_topic_alias":              {Support: Implemented, Note: "must be the same on every listener (serve has one limit)", apply: applyMaxTopicAlias},
	"maximum_qos":                  {Support: DefaultOnly, Defaults: []string{"2"}, Note: "per-listener QoS limits are not implemented"},
	"memory_limit":                 {Support: DefaultOnly, Defaults: []string{"0"}, Note: "not implemented"},
	"message_size_limit":           {Support: DefaultOnly, Defaults: []string{"0"}, Note: "deprecated in mosquitto: use max_packet_size", apply: applyMessageSizeLimit},
	"retain_available":             {Support: Implemented, Note: "false: a retained publish closes a v3.1.1 connection and gets DISCONNECT 0x9A on v5", apply: applyRetainAvailable},
	"upgrade_outgoing_qos":         {Support: DefaultOnly, Defaults: []string{"false"}, Note: "not implemented"},
	"queue_qos0_messages":          {Support: DefaultOnly, Defaults: []string{"false"}, Note: "QoS 0 messages are not queued for offline clients"},
	"allow_duplicate_messages":     {Support: Logging, Note: "mosquitto 2.0 ignores it too"},
	"persistent_client_expiration": {Support: Refused, Note: "session expiry for persistent v3.1.1 sessions is not implemented"},
	"sys_interval": {Support: Implemented, Note: "seconds between $SYS updates; 0 is refused (serve cannot turn $SYS off)", Refuse: func(v string) string {
		if v == "0" {
			return "serve cannot turn $SYS updates off; give a number of seconds"
		}
		return ""
	}, apply: applySysInterval},
	"set_tcp_nodelay": {Support: Logging, Note: "Go always sets TCP_NODELAY (false only changes latency)", render: renderSetTCPNodelay},
	// persistence and process
	"persistence":          {Support: Implemented, Note: "every acknowledged message is journalled before the acknowledgement", apply: applyPersistence, render: renderPersistence},
	"persistence_file":     {Support: Implemented, Note: "the name of serve's database in persistence_location (its format is not mosquitto's)", apply: applyPersistenceFile},
	"persistence_location": {Support: Implemented, Note: "also holds the TLS session ticket keys (PERSISTENCE_FILE.tickets, 0600)", apply: applyPersistenceLocation, render: renderPersistenceLocation},
	"autosave_interval":    {Support: Implemented, Note: "serve writes on every change and fsyncs each second, which is at least as safe", render: renderAutosaveInterval},
	"autosave_on_changes":  {Support: Implemented, Note: "serve writes on every change"},
	"pid_file":             {Support: Implemented, Note: "written at start, removed at exit", apply: applyPIDFile, render: renderPIDFile},
	"user":                 {Support: Implemented, Note: "serve does not switch users; started as root it refuses a user other than root (run it as that user)", apply: applyUser},
	"include_dir":          {Support: Implemented, Note: "*.conf in sorted order"},
	// logging
	"connection_messages":  {Support: Logging, Note: "serve always logs connections and refusals", render: renderConnectionMessages},
	"log_dest":             {Support: Logging, Note: "serve logs to standard error", render: renderLogDest},
	"log_facility":         {Support: Logging, Note: ""},
	"log_timestamp":        {Support: Logging, Note: ""},
	"log_timestamp_format": {Support: Logging, Note: "", render: renderLogTimestampFormat},
	// mosquitto 2.1
	"plugin_opt_password_file":        {Support: Implemented, Note: "the file of mosquitto 2.1's password-file plugin, as password_file, except that a reload keeps the file named at start (2.1 skips plugin lines on reload; differential tests)", apply: applyPluginPasswordFile},
	"plugin_opt_acl_file":             {Support: Implemented, Note: "the file of mosquitto 2.1's acl-file plugin, as acl_file, except that a reload keeps the file named at start (2.1 skips plugin lines on reload; differential tests)", apply: applyPluginACLFile},
	"websockets_origin":               {Support: Implemented, Note: "the page origins a websockets listener accepts (repeatable), as mosquitto 2.1.2 (differential test), except that serve compares the whole Origin: 2.1.2 compares only the length of the header, so it also lets in a page whose origin is the beginning of a listed one; an upgrade without Origin (not a browser) is let through, as mosquitto", apply: applyWebsocketsOrigin, render: renderWebsocketsOrigin},
	"global_plugin":                   {Support: Refused, Note: "plugins are C shared objects; serve cannot load them"},
	"plugin_load":                     {Support: Refused, Note: "plugins are C shared objects; serve cannot load them"},
	"plugin_use":                      {Support: Refused, Note: "plugins are C shared objects; serve cannot load them"},
	"global_max_clients":              {Support: Refused, Note: "not implemented"},
	"global_max_connections":          {Support: Implemented, Note: "the connections of all listeners together (-1 or 0: unlimited): one more is closed at accept, as mosquitto 2.1.2 (differential test); refused with a bridge, whose outgoing connection mosquitto counts and serve does not", apply: applyGlobalMaxConnections},
	"accept_protocol_versions":        {Support: Implemented, Note: "a CONNECT of another level gets CONNACK 1 (3, 4) or 0x84 (otherwise), before anything else is read, as mosquitto 2.1.2 (differential test)", apply: applyAcceptProtocolVersions},
	"disable_client_cert_date_checks": {Support: Implemented, Note: "client certificates (and their chain) outside their validity period are let in, as mosquitto 2.1.2 (differential test); the CRL's dates still count; a chain whose certificates were never valid at the same time is refused (mosquitto lets it in)", apply: applyDisableClientCertDateChecks},
	"listener_allow_anonymous":        {Support: Refused, Note: "not implemented: use allow_anonymous"},
	"listener_auto_id_prefix":         {Support: Refused, Note: "not implemented: use auto_id_prefix"},
	"enable_proxy_protocol":           {Support: Refused, Note: "the PROXY protocol is not implemented"},
	"proxy_protocol_v2_require_tls":   {Support: Refused, Note: "the PROXY protocol is not implemented"},
	"max_topic_alias_broker":          {Support: Refused, Note: "serve creates no topic aliases"},
	"enable_control_api":              {Support: Refused, Note: "not implemented"},
	"packet_buffer_size":              {Support: Refused, Note: "not implemented"},
	"retain_expiry_interval":          {Support: Refused, Note: "not implemented"},
	"retained_persistence":            {Support: Refused, Note: "not implemented"},
	"log_type":                        {Support: Logging, Note: "serve logs connections, refusals and errors (-v: debug)", render: renderLogType},
}

// refusePlugin accepts the plugins serve implements itself.
func refusePlugin(v string) string {
	if b := filepath.Base(v); b == PasswordFilePlugin || b == ACLFilePlugin {
		return ""
	}
	return "plugins are C shared objects and serve cannot load them; it implements only mosquitto 2.1's " + PasswordFilePlugin + " and " + ACLFilePlugin + ": run mosquitto for this file, or remove the line"
}

// bridgeRefused are the bridge options serve does not implement; every
// other bridge option is implemented (see BridgeSpec).
var bridgeRefused = map[string]string{
	"bridge_capath": "give the CA file (bridge_cafile)", "bridge_identity": "TLS-PSK is not supported", "bridge_psk": "TLS-PSK is not supported",
	"bridge_alpn": "", "bridge_require_ocsp": "", "bridge_attempt_unsubscribe": "", "bridge_bind_address": "",
	"bridge_max_packet_size": "", "local_cleansession": "the local side is in-process", "local_username": "the local side is in-process",
	"local_password": "the local side is in-process", "idle_timeout": "only start_type automatic", "round_robin": "",
	"start_type": "only automatic (the default) is implemented", "threshold": "",
}

func bridgeSupport(key string) ServeSupport {
	if note, ok := bridgeRefused[key]; ok {
		return ServeSupport{Support: Refused, Note: note}
	}
	if key == "bridge_protocol_version" {
		return ServeSupport{Support: Implemented, Refuse: func(v string) string {
			if v == "mqttv50" {
				return "serve's bridges speak MQTT 3.1.1 and 3.1: use mqttv311"
			}
			return ""
		}}
	}
	return ServeSupport{Support: Implemented}
}

// SupportOf returns what serve does with an option.
func SupportOf(key string) (ServeSupport, bool) {
	if s, ok := serveSupport[key]; ok {
		return s, true
	}
	if strings.HasPrefix(key, "plugin_opt_") || strings.HasPrefix(key, "auth_opt_") {
		return ServeSupport{Support: Refused, Note: "plugins are C shared objects; serve cannot load them"}, true
	}
	if slices.Contains(bridgeOptions, key) {
		return bridgeSupport(key), true
	}
	return ServeSupport{}, false
}

// CheckServe reports every option the bundled broker would not honour
// exactly: errors for refused options and values, warnings for logging
// options it handles its own way. Each names the option and its line.
func (c *Config) CheckServe() []Diagnostic {
	var ds []Diagnostic
	check := func(d Directive) {
		if strings.HasPrefix(d.Key, ExtPrefix) {
			return // mqttctl's own, read by Resolve
		}
		s, ok := SupportOf(d.Key)
		if !ok {
			ds = append(ds, Diagnostic{Pos: d.Pos, Msg: fmt.Sprintf("%s: unknown option", d.Key)})
			return
		}
		if s.Refuse != nil {
			if why := s.Refuse(d.Value); why != "" {
				ds = append(ds, Diagnostic{Pos: d.Pos, Msg: fmt.Sprintf("%s %s: %s", d.Key, d.Value, why)})
			}
		}
		switch s.Support {
		case Refused:
			ds = append(ds, Diagnostic{Pos: d.Pos, Msg: fmt.Sprintf("mqttctl serve does not implement %s (%s): run mosquitto for this file, or remove the line", d.Key, s.Note)})
		case DefaultOnly:
			if !slices.Contains(s.Defaults, d.Value) {
				ds = append(ds, Diagnostic{Pos: d.Pos, Msg: fmt.Sprintf("mqttctl serve implements %s only as %s (%s): run mosquitto for this file, or remove the line", d.Key, strings.Join(s.Defaults, " or "), s.Note)})
			}
		case Logging:
			if d.Key == "log_dest" && d.Value == "stderr" || d.Key == "set_tcp_nodelay" && boolOf(d.Value) ||
				d.Key == "log_type" || d.Key == "connection_messages" || d.Key == "log_timestamp" || d.Key == "log_timestamp_format" {
				return // what serve does anyway
			}
			note := s.Note
			if note == "" {
				note = "serve logs with its own format"
			}
			ds = append(ds, Diagnostic{Pos: d.Pos, Warning: true, Msg: fmt.Sprintf("%s %s is ignored by mqttctl serve: %s", d.Key, d.Value, note)})
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
	return append(ds, c.refuseBridgedGlobalMax()...)
}

// refuseBridgedGlobalMax refuses global_max_connections beside a bridge:
// mosquitto counts the bridge's own connection, serve's in-process bridges
// make none through a listener.
func (c *Config) refuseBridgedGlobalMax() []Diagnostic {
	if _, bridged := c.Get("connection"); !bridged {
		return nil
	}
	var ds []Diagnostic
	for _, d := range c.Global {
		if d.Key == "global_max_connections" && intOf(d.Value, -1) > 0 {
			ds = append(ds, Diagnostic{Pos: d.Pos, Msg: "mqttctl serve does not implement global_max_connections with a bridge (mosquitto counts the bridge's own connection, serve does not): run mosquitto for this file, or remove the line"})
		}
	}
	return ds
}

// sinceOf is the first of the mosquitto versions mqttctl targets that has
// the option: 2.0 (there or earlier) or 2.1.
func sinceOf(key string) MosquittoTarget {
	if strings.HasPrefix(key, "plugin_opt_") && key != "plugin_opt_" {
		if _, ok := serveSupport[key]; ok { // the files of 2.1's plugins
			return Mosquitto21
		}
	}
	if spec, ok := lookupOption(key); ok && spec.since != "" {
		return spec.since
	}
	return Mosquitto20
}

// ServeSupportTable renders the whole table as Markdown rows (option,
// support, note), sorted by option, for the README.
func ServeSupportTable() string {
	keys := make([]string, 0, len(serveSupport))
	for k := range serveSupport {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("| option | mqttctl serve | mosquitto | note |\n|---|---|---|---|\n")
	for _, k := range keys {
		s := serveSupport[k]
		sup := s.Support.String()
		if s.Support == DefaultOnly {
			sup = "only `" + strings.Join(s.Defaults, "` or `") + "`"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", k, sup, sinceOf(k), s.Note)
	}
	fmt.Fprintf(&b, "| `plugin_opt_*`, `auth_opt_*` (others) | refused | 2.0 | plugins are C shared objects |\n")
	fmt.Fprintf(&b, "| `# mqttctl: http_origin ORIGIN` | mqttctl's own | - | a comment to mosquitto; in a websockets listener, browsers from other origins are refused (repeatable); a comment that looks like it but is not written exactly so is refused |\n")
	fmt.Fprintf(&b, "| `# mqttctl: renew_pki DIR` | mqttctl's own | - | a comment to mosquitto; in a listener with `require_certificate true`, clients renew their certificate over MQTT v5 on `$mqttctl/renew`, issued by the pki directory DIR's CA (see \"Devices renew themselves\") |\n")
	fmt.Fprintf(&b, "| `# mqttctl: renew_days N` | mqttctl's own | - | a comment to mosquitto; with `renew_pki`, the validity in days (1 to 825) of the certificates it issues; default the pki directory's for clients |\n")
	fmt.Fprintf(&b, "| `# mqttctl: provision_by_claim on` | mqttctl's own | - | a comment to mosquitto; with `renew_pki`, claim certificates (`pki issue claim`) connect and may only ask on `$mqttctl/provision` for a device's certificate |\n")
	var refused []string
	for k := range bridgeRefused {
		refused = append(refused, "`"+k+"`")
	}
	sort.Strings(refused)
	fmt.Fprintf(&b, "| bridge options (`connection`, `address`, `topic`, `bridge_cafile`, `bridge_certfile`, `bridge_keyfile`, `bridge_insecure`, `bridge_tls_version`, `bridge_protocol_version` (mqttv311, mqttv31), `cleansession`, `remote_clientid`, `local_clientid`, `remote_username`, `remote_password`, `keepalive_interval`, `restart_timeout`, `try_private`, `notifications`, `notifications_local_only`, `notification_topic`, `bridge_outgoing_retain`) | implemented | 2.0 | see \"bridge to a central broker\"; refused: %s |\n", strings.Join(refused, ", "))
	return b.String()
}
