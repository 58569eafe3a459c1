package confgen

import (
	"bytes"
	"fmt"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Pos is where a directive was read.
type Pos struct {
	File string
	Line int
}

func (p Pos) String() string {
	if p.File == "" && p.Line == 0 {
		return "(command line)"
	}
	if p.File == "" {
		return fmt.Sprintf("line %d", p.Line)
	}
	return fmt.Sprintf("%s:%d", p.File, p.Line)
}

// Directive is one "key value" line of mosquitto.conf.
type Directive struct {
	Key   string
	Value string
	Pos   Pos
	seq   int // parse order across files, for order-sensitive checks
}

// Listener is a "listener PORT [ADDRESS]" block with the options after it.
type Listener struct {
	Port    int
	Bind    string
	Pos     Pos
	Options []Directive
	seq     int
}

// Config is a mosquitto.conf: global options and listener blocks, in order.
// It is mqttctl's hub: `config` renders it, `serve` runs it.
type Config struct {
	// Header is rendered as comment lines at the top (not parsed back).
	Header   []string
	Global   []Directive
	Listener []*Listener
}

type optKind int

const (
	kString optKind = iota
	kBool
	kInt
	kEnum
	kPath
)

type optSpec struct {
	kind     optKind
	listener bool // belongs to a listener block
	security bool // moves with per_listener_settings
	enum     []string
	multi    bool // may repeat (log_dest, log_type, include_dir, ...)
	// since is the mosquitto version that introduced the option; "" for
	// 2.0 (and earlier).
	since MosquittoTarget
}

// options is mosquitto 2.0's set of configuration variables.
var options = map[string]optSpec{
	// security (global, or per listener with per_listener_settings true)
	"acl_file":                   {kind: kPath, security: true},
	"allow_anonymous":            {kind: kBool, security: true},
	"allow_zero_length_clientid": {kind: kBool, security: true},
	"auto_id_prefix":             {kind: kString, security: true},
	"password_file":              {kind: kPath, security: true},
	"plugin":                     {kind: kPath, security: true, multi: true},
	"auth_plugin":                {kind: kPath, security: true, multi: true},
	"psk_file":                   {kind: kPath, security: true},
	// general
	"allow_duplicate_messages":       {kind: kBool},
	"auth_plugin_deny_special_chars": {kind: kBool},
	"autosave_interval":              {kind: kInt},
	"autosave_on_changes":            {kind: kBool},
	"check_retain_source":            {kind: kBool},
	"clientid_prefixes":              {kind: kString},
	"connection_messages":            {kind: kBool},
	"include_dir":                    {kind: kPath, multi: true},
	"log_dest":                       {kind: kString, multi: true},
	"log_facility":                   {kind: kInt},
	"log_timestamp":                  {kind: kBool},
	"log_timestamp_format":           {kind: kString},
	"log_type":                       {kind: kEnum, multi: true, enum: []string{"debug", "error", "warning", "notice", "information", "subscribe", "unsubscribe", "websockets", "none", "all"}},
	"max_inflight_bytes":             {kind: kInt},
	"max_inflight_messages":          {kind: kInt},
	"max_keepalive":                  {kind: kInt},
	"max_packet_size":                {kind: kInt},
	"max_queued_bytes":               {kind: kInt},
	"max_queued_messages":            {kind: kInt},
	"memory_limit":                   {kind: kInt},
	"message_size_limit":             {kind: kInt},
	"per_listener_settings":          {kind: kBool},
	"persistence":                    {kind: kBool},
	"persistence_file":               {kind: kString},
	"persistence_location":           {kind: kPath},
	"persistent_client_expiration":   {kind: kString},
	"pid_file":                       {kind: kPath},
	"queue_qos0_messages":            {kind: kBool},
	"retain_available":               {kind: kBool},
	"set_tcp_nodelay":                {kind: kBool},
	"sys_interval":                   {kind: kInt},
	"upgrade_outgoing_qos":           {kind: kBool},
	"user":                           {kind: kString},
	"websockets_log_level":           {kind: kInt},
	"websockets_headers_size":        {kind: kInt},
	"port":                           {kind: kInt},
	"bind_address":                   {kind: kString},
	// listener
	"bind_interface":           {kind: kString, listener: true},
	"http_dir":                 {kind: kPath, listener: true},
	"max_connections":          {kind: kInt, listener: true},
	"maximum_qos":              {kind: kEnum, listener: true, enum: []string{"0", "1", "2"}},
	"max_topic_alias":          {kind: kInt, listener: true},
	"mount_point":              {kind: kString, listener: true},
	"protocol":                 {kind: kEnum, listener: true, enum: []string{"mqtt", "websockets"}},
	"socket_domain":            {kind: kEnum, listener: true, enum: []string{"ipv4", "ipv6"}},
	"use_username_as_clientid": {kind: kBool, listener: true},
	"cafile":                   {kind: kPath, listener: true},
	"capath":                   {kind: kPath, listener: true},
	"certfile":                 {kind: kPath, listener: true},
	"keyfile":                  {kind: kPath, listener: true},
	"ciphers":                  {kind: kString, listener: true},
	"ciphers_tls1.3":           {kind: kString, listener: true},
	"crlfile":                  {kind: kPath, listener: true},
	"dhparamfile":              {kind: kPath, listener: true},
	"require_certificate":      {kind: kBool, listener: true},
	"tls_engine":               {kind: kString, listener: true},
	"tls_engine_kpass_sha1":    {kind: kString, listener: true},
	"tls_keyform":              {kind: kEnum, listener: true, enum: []string{"pem", "engine"}},
	"tls_version":              {kind: kEnum, listener: true, enum: []string{"tlsv1.3", "tlsv1.2", "tlsv1.1"}},
	"use_identity_as_username": {kind: kBool, listener: true},
	"use_subject_as_username":  {kind: kBool, listener: true},
	"psk_hint":                 {kind: kString, listener: true},
	// mosquitto 2.1
	"global_plugin":                   {kind: kPath, multi: true, since: Mosquitto21},
	"global_max_clients":              {kind: kInt, since: Mosquitto21},
	"global_max_connections":          {kind: kInt, since: Mosquitto21},
	"accept_protocol_versions":        {kind: kString, listener: true, since: Mosquitto21},
	"disable_client_cert_date_checks": {kind: kBool, listener: true, since: Mosquitto21},
	"listener_allow_anonymous":        {kind: kBool, listener: true, since: Mosquitto21},
	"listener_auto_id_prefix":         {kind: kString, listener: true, since: Mosquitto21},
	"websockets_origin":               {kind: kString, listener: true, multi: true, since: Mosquitto21},
	"enable_proxy_protocol":           {kind: kInt, listener: true, since: Mosquitto21},
	"proxy_protocol_v2_require_tls":   {kind: kBool, listener: true, since: Mosquitto21},
	"max_topic_alias_broker":          {kind: kInt, listener: true, since: Mosquitto21},
	"plugin_load":                     {kind: kString, multi: true, since: Mosquitto21},
	"plugin_use":                      {kind: kString, listener: true, multi: true, since: Mosquitto21},
	"enable_control_api":              {kind: kBool, since: Mosquitto21},
	"packet_buffer_size":              {kind: kInt, since: Mosquitto21},
	"retain_expiry_interval":          {kind: kInt, since: Mosquitto21},
	"retained_persistence":            {kind: kBool, since: Mosquitto21},
}

// bridge options are known to mosquitto; mqttctl parses and renders them but
// does not run bridges.
var bridgeOptions = []string{"connection", "address", "addresses", "topic", "bridge_cafile", "bridge_capath", "bridge_certfile",
	"bridge_keyfile", "bridge_insecure", "bridge_protocol_version", "bridge_tls_version", "bridge_identity", "bridge_psk",
	"bridge_alpn", "bridge_attempt_unsubscribe", "bridge_bind_address", "bridge_max_packet_size", "bridge_outgoing_retain",
	"bridge_require_ocsp", "cleansession", "local_cleansession", "clientid", "local_clientid", "idle_timeout", "keepalive_interval",
	"local_password", "local_username", "notifications", "notifications_local_only", "notification_topic", "password",
	"remote_clientid", "remote_password", "remote_username", "restart_timeout", "round_robin", "start_type", "threshold",
	"try_private", "username"}

// IsSecurityOption reports whether key moves with per_listener_settings.
func IsSecurityOption(key string) bool {
	if strings.HasPrefix(key, "plugin_opt_") || strings.HasPrefix(key, "auth_opt_") {
		return true
	}
	return options[key].security
}

func lookupOption(key string) (optSpec, bool) {
	if s, ok := options[key]; ok {
		return s, true
	}
	if strings.HasPrefix(key, "plugin_opt_") || strings.HasPrefix(key, "auth_opt_") {
		return optSpec{kind: kString, security: true, multi: true}, true
	}
	if slices.Contains(bridgeOptions, key) {
		return optSpec{kind: kString, multi: true}, true
	}
	return optSpec{}, false
}

// ConfigError is a problem at a position in a config file, optionally
// wrapping the error behind it.
type ConfigError struct {
	Pos Pos
	Msg string
	Err error
	// Warning: the file works, but not as its author likely meant (a
	// warning diagnostic, not an error).
	Warning bool
}

func (e *ConfigError) Error() string {
	if e.Err == nil {
		return e.Pos.String() + ": " + e.Msg
	}
	if e.Msg == "" {
		return e.Pos.String() + ": " + e.Err.Error()
	}
	return e.Pos.String() + ": " + e.Msg + ": " + e.Err.Error()
}

func (e *ConfigError) Unwrap() error { return e.Err }

func errAt(p Pos, format string, args ...any) error {
	return &ConfigError{Pos: p, Msg: fmt.Sprintf(format, args...)}
}

// ParseBool reads a mosquitto boolean: true, false, 1 or 0.
func ParseBool(v string) (bool, bool) {
	switch v {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// checkValue validates a value against its option's kind.
func checkValue(d Directive, spec optSpec) error {
	if d.Value == "" {
		return errAt(d.Pos, "%s needs a value", d.Key)
	}
	switch spec.kind {
	case kBool:
		if _, ok := ParseBool(d.Value); !ok {
			return errAt(d.Pos, "%s %q: use true or false", d.Key, d.Value)
		}
	case kInt:
		n, err := strconv.Atoi(d.Value)
		if err != nil {
			return errAt(d.Pos, "%s %q: not a whole number", d.Key, d.Value)
		}
		if n > math.MaxInt32 || n < math.MinInt32 {
			return errAt(d.Pos, "%s %d: out of range (mosquitto 2.1 refuses a value beyond %d)", d.Key, n, math.MaxInt32)
		}
		if digits := strings.TrimLeft(d.Value, "+-"); len(digits) > 1 && digits[0] == '0' {
			// mosquitto 2.1 reads numbers with strtol(..., 0): 010 is 8
			// there and 10 in 2.0.
			return errAt(d.Pos, "%s %q: write it without leading zeros (mosquitto 2.1 reads a leading 0 as octal, 2.0 as decimal)", d.Key, d.Value)
		}
	case kEnum:
		if !slices.Contains(spec.enum, d.Value) {
			return errAt(d.Pos, "%s %q: use one of %s", d.Key, d.Value, strings.Join(spec.enum, ", "))
		}
	}
	return nil
}

type parser struct {
	cfg   *Config
	cur   *Listener
	seq   int
	depth int
}

// Parse reads mosquitto.conf text. name is used in error positions.
// include_dir is kept as a directive, not followed (see Load).
func Parse(data []byte, name string) (*Config, error) {
	p := &parser{cfg: &Config{}}
	if err := p.parse(data, name, false); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

// Load reads a mosquitto.conf file and the files its include_dir lines name
// (*.conf, sorted), as mosquitto does.
func Load(path string) (*Config, error) {
	data, err := fsx.ReadRegular(path, fsx.MaxEditSize)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	p := &parser{cfg: &Config{}}
	if err := p.parse(data, path, true); err != nil {
		return nil, err
	}
	return p.cfg, nil
}

func (p *parser) parse(data []byte, name string, follow bool) error {
	for i, raw := range strings.Split(string(data), "\n") {
		pos := Pos{File: name, Line: i + 1}
		line := strings.TrimSpace(strings.TrimSuffix(raw, "\r"))
		if strings.HasPrefix(line, ExtPrefix) {
			if err := p.extension(line, pos); err != nil {
				return err
			}
			continue
		}
		if looksLikeExtension(line) {
			return errAt(pos, "%q looks like an mqttctl option but is not written as one, so it would be a comment to both brokers and silently do nothing: write it exactly as %q, or reword the comment",
				line, ExtPrefix+"http_origin https://app.example.com")
		}
		if line == "" || line[0] == '#' {
			continue
		}
		key, value := line, ""
		if j := strings.IndexAny(line, " \t"); j >= 0 {
			key, value = line[:j], strings.TrimSpace(line[j+1:])
		}
		p.seq++
		if key == "listener" {
			l, err := parseListenerLine(value, pos)
			if err != nil {
				return err
			}
			l.seq = p.seq
			p.cfg.Listener = append(p.cfg.Listener, l)
			p.cur = l
			continue
		}
		spec, ok := lookupOption(key)
		if !ok {
			return errAt(pos, "unknown option %q (mosquitto: Unknown configuration variable); check the spelling against 'man mosquitto.conf'", key)
		}
		d := Directive{Key: key, Value: value, Pos: pos, seq: p.seq}
		if err := checkValue(d, spec); err != nil {
			return err
		}
		if key == "include_dir" && follow {
			if err := p.include(d); err != nil {
				return err
			}
			continue
		}
		if p.cur != nil && (spec.listener || spec.security) {
			p.cur.Options = append(p.cur.Options, d)
		} else if spec.listener {
			return errAt(pos, "%s belongs to a listener: put it after a 'listener PORT' line", key)
		} else {
			p.cfg.Global = append(p.cfg.Global, d)
		}
	}
	return nil
}

// ExtPrefix starts mqttctl's own options in a mosquitto.conf: comment
// lines to mosquitto, read by mqttctl (e.g. "# mqttctl: http_origin
// https://app.example.com" in a websockets listener).
const ExtPrefix = "# mqttctl: "

// extensions are the mqttctl options a listener may carry.
var extensions = map[string]string{
	"http_origin":        "the Origin a browser page must come from to use a websockets listener (repeatable)",
	"renew_pki":          "the pki directory whose CA renews, over MQTT on $mqttctl/renew, the certificates of this mutual-TLS listener's clients",
	"provision_by_claim": "on: claim certificates may ask on $mqttctl/provision for a device's certificate (needs renew_pki)",
	"renew_days":         "validity in days of the certificates renew_pki issues (default: the pki directory's default for clients)",
}

// extensionNames lists the mqttctl options, for errors.
func extensionNames() string {
	names := make([]string, 0, len(extensions))
	for k := range extensions {
		names = append(names, k)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// looksLikeExtension reports whether a comment line that does not start
// with ExtPrefix was meant as an mqttctl option: "#mqttctl: ...",
// "# MQTTCTL : ...", "# mqttctl http_origin ...", "# http_origin ...".
func looksLikeExtension(line string) bool {
	if !strings.HasPrefix(line, "#") {
		return false
	}
	rest := strings.ToLower(strings.TrimLeft(line, "# \t"))
	if after, ok := strings.CutPrefix(rest, "mqttctl"); ok {
		after = strings.TrimLeft(after, " \t")
		if strings.HasPrefix(after, ":") || strings.HasPrefix(after, "=") {
			return true
		}
		rest = after
	}
	key := strings.FieldsFunc(rest, func(r rune) bool { return r == ' ' || r == '\t' || r == ':' || r == '=' })
	if len(key) == 0 {
		return false
	}
	_, known := extensions[key[0]]
	return known
}

func (p *parser) extension(line string, pos Pos) error {
	rest := strings.TrimSpace(strings.TrimPrefix(line, ExtPrefix))
	key, value, _ := strings.Cut(rest, " ")
	value = strings.TrimSpace(value)
	if _, ok := extensions[key]; !ok {
		return errAt(pos, "unknown mqttctl option %q in %q (known: %s); an ordinary comment must not start with %q", key, line, extensionNames(), strings.TrimSpace(ExtPrefix))
	}
	if p.cur == nil {
		return errAt(pos, "%s belongs to a listener: put it after a 'listener PORT' line", key)
	}
	p.seq++
	p.cur.Options = append(p.cur.Options, Directive{Key: ExtPrefix + key, Value: value, Pos: pos, seq: p.seq})
	return nil
}

func (p *parser) include(d Directive) error {
	if p.depth > 8 {
		return errAt(d.Pos, "include_dir nests too deep")
	}
	matches, err := filepath.Glob(filepath.Join(d.Value, "*.conf"))
	if err != nil {
		return errAt(d.Pos, "include_dir %s: %v", d.Value, err)
	}
	if _, err := os.Stat(d.Value); err != nil {
		return errAt(d.Pos, "include_dir %s: %v", d.Value, err)
	}
	sort.Strings(matches)
	p.depth++
	defer func() { p.depth-- }()
	for _, m := range matches {
		data, err := fsx.ReadRegular(m, fsx.MaxEditSize)
		if err != nil {
			return errAt(d.Pos, "include_dir: %v", err)
		}
		if err := p.parse(data, m, true); err != nil {
			return err
		}
	}
	return nil
}

func parseListenerLine(value string, pos Pos) (*Listener, error) {
	fields := strings.Fields(value)
	if len(fields) == 0 || len(fields) > 2 {
		return nil, errAt(pos, "listener needs a port and optionally an address: listener 8883 [127.0.0.1]")
	}
	port, err := strconv.Atoi(fields[0])
	if err != nil || port < 0 || port > 65535 {
		return nil, errAt(pos, "listener port %q: use a number from 1 to 65535 (0 for a unix socket)", fields[0])
	}
	l := &Listener{Port: port, Pos: pos}
	if len(fields) == 2 {
		l.Bind = fields[1]
	}
	return l, nil
}

// Get returns the last value of key among the listener's options.
func (l *Listener) Get(key string) (string, bool) {
	return lastValue(l.Options, key)
}

// Set replaces (or adds) a listener option.
func (l *Listener) Set(key, value string) {
	l.Options = setValue(l.Options, key, value)
}

// Get returns the last value of a global option.
func (c *Config) Get(key string) (string, bool) {
	return lastValue(c.Global, key)
}

// Set replaces (or adds) a global option.
func (c *Config) Set(key, value string) {
	c.Global = setValue(c.Global, key, value)
}

// Add appends a global option (for repeatable ones such as log_dest).
func (c *Config) Add(key, value string) {
	c.Global = append(c.Global, Directive{Key: key, Value: value})
}

func lastValue(ds []Directive, key string) (string, bool) {
	for i := len(ds) - 1; i >= 0; i-- {
		if ds[i].Key == key {
			return ds[i].Value, true
		}
	}
	return "", false
}

func setValue(ds []Directive, key, value string) []Directive {
	for i := range ds {
		if ds[i].Key == key {
			ds[i].Value = value
			return ds
		}
	}
	return append(ds, Directive{Key: key, Value: value})
}

// Redaction replaces a secret's value in Redacted's output.
const Redaction = "<redacted>"

// IsSecretOption reports whether key's value is a secret (a bridge's
// passwords or pre-shared key; a plugin option that names a password,
// secret, key or token), which printed configs must not show.
func IsSecretOption(key string) bool {
	switch key {
	case "password", "remote_password", "local_password", "bridge_psk", "tls_engine_kpass_sha1":
		return true
	}
	if o, ok := strings.CutPrefix(key, "plugin_opt_"); ok {
		key = o
	} else if o, ok := strings.CutPrefix(key, "auth_opt_"); ok {
		key = o
	} else {
		return false
	}
	for _, w := range []string{"pass", "secret", "psk", "token", "key"} {
		if strings.Contains(key, w) && !strings.HasSuffix(key, "file") {
			return true
		}
	}
	return false
}

// Redacted returns a copy of the config whose secret values (IsSecretOption)
// read Redaction, with a header line that says so: what a printed config
// shows.
func (c *Config) Redacted() *Config {
	out := *c
	var names []string
	redact := func(ds []Directive) []Directive {
		cp := append([]Directive(nil), ds...)
		for i := range cp {
			if IsSecretOption(cp[i].Key) && cp[i].Value != "" {
				cp[i].Value = Redaction
				if !slices.Contains(names, cp[i].Key) {
					names = append(names, cp[i].Key)
				}
			}
		}
		return cp
	}
	out.Global = redact(c.Global)
	out.Listener = nil
	for _, l := range c.Listener {
		cl := *l
		cl.Options = redact(l.Options)
		out.Listener = append(out.Listener, &cl)
	}
	if len(names) > 0 {
		out.Header = append(append([]string(nil), c.Header...),
			"Secrets ("+strings.Join(names, ", ")+") are shown as "+Redaction+": put the real values back before using this file.")
	}
	return &out
}

// Marshal renders the config as mosquitto.conf.
func (c *Config) Marshal() []byte {
	var b bytes.Buffer
	for _, h := range c.Header {
		b.WriteString(strings.TrimRight("# "+h, " ") + "\n")
	}
	if len(c.Header) > 0 {
		b.WriteString("\n")
	}
	// per_listener_settings must come before any security option.
	for _, d := range c.Global {
		if d.Key == "per_listener_settings" {
			fmt.Fprintf(&b, "%s %s\n", d.Key, d.Value)
		}
	}
	for _, d := range c.Global {
		if d.Key != "per_listener_settings" {
			fmt.Fprintf(&b, "%s %s\n", d.Key, d.Value)
		}
	}
	for _, l := range c.Listener {
		b.WriteString("\nlistener " + strconv.Itoa(l.Port))
		if l.Bind != "" {
			b.WriteString(" " + l.Bind)
		}
		b.WriteString("\n")
		for _, d := range l.Options {
			fmt.Fprintf(&b, "%s %s\n", d.Key, d.Value)
		}
	}
	return b.Bytes()
}
