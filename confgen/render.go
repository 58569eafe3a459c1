package confgen

import (
	"path/filepath"
	"strings"
)

// mosqPlan is a checked MosquittoOptions, with its defaults filled in and
// its paths absolute: what the render functions of the option table
// (ServeSupport.render) write a mosquitto.conf from.
type mosqPlan struct {
	o         MosquittoOptions
	pkiDir    string
	passwd    string // absolute; "" for none
	acl       string // absolute; "" for none
	listeners []*planListener
}

// listenerRole is what a generated listener is for.
type listenerRole int

const (
	roleTLS   listenerRole = iota // the TLS listener (Listen)
	rolePlain                     // a plain listener on one address (Plain)
	roleWSS                       // MQTT over WebSocket with the TLS listener's certificate (WebSockets)
)

// planListener is one listener GenerateMosquitto writes.
type planListener struct {
	Port int
	Bind string
	role listenerRole
}

func (l *planListener) tls() bool { return l != nil && l.role != rolePlain }

func (l *planListener) mtls(p *mosqPlan) bool { return l.tls() && p.o.Mode == "mtls" }

// generatedGlobal and generatedListener are the options GenerateMosquitto
// writes, in the order it writes them; each row's render function says
// whether and how.
var (
	generatedGlobal = []string{"per_listener_settings", "allow_anonymous", "password_file", "acl_file", "plugin", "persistence",
		"persistence_location", "autosave_interval", "pid_file", "log_dest", "log_type", "log_timestamp_format",
		"connection_messages", "set_tcp_nodelay"}
	generatedListener = []string{"protocol", "cafile", "certfile", "keyfile", "tls_version", "require_certificate", "crlfile",
		"use_identity_as_username", "use_subject_as_username", "websockets_origin", ExtPrefix + "http_origin"}
)

// render writes the plan as a mosquitto.conf model, one option row at a
// time.
func (p *mosqPlan) render() *Config {
	c := &Config{Header: []string{
		"mosquitto.conf written by mqttctl config mosquitto (mode " + p.o.Mode + ").",
		"Check it with: mqttctl config check FILE",
	}}
	for _, k := range generatedGlobal {
		row, _ := optionRow(k)
		c.Global = append(c.Global, row.render(p, nil)...)
	}
	for _, pl := range p.listeners {
		l := &Listener{Port: pl.Port, Bind: pl.Bind}
		for _, k := range generatedListener {
			row, _ := optionRow(k)
			l.Options = append(l.Options, row.render(p, pl)...)
		}
		c.Listener = append(c.Listener, l)
	}
	c.number()
	return c
}

// number gives the directives of a config built in memory the parse order
// they have in its file (Marshal's order), as Parse would: Resolve gives a
// plugin_opt_* line to the plugin line before it.
func (c *Config) number() {
	seq := 0
	next := func(d *Directive) { seq++; d.seq = seq }
	for pass := 0; pass < 2; pass++ { // per_listener_settings first, as Marshal writes it
		for i := range c.Global {
			if (c.Global[i].Key == "per_listener_settings") == (pass == 0) {
				next(&c.Global[i])
			}
		}
	}
	for _, l := range c.Listener {
		seq++
		l.seq = seq
		for i := range l.Options {
			next(&l.Options[i])
		}
	}
}

func line(key, value string) []Directive { return []Directive{{Key: key, Value: value}} }

// lineIf is line(key, value) when ok, else nothing.
func lineIf(ok bool, key, value string) []Directive {
	if !ok {
		return nil
	}
	return line(key, value)
}

// global options

func (p *mosqPlan) is21() bool { return p.o.Target == Mosquitto21 }

// renderPerListenerSettings: 2.1 deprecates per_listener_settings; false is
// its default, and the files mqttctl writes have no per-listener security.
func renderPerListenerSettings(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(!p.is21(), "per_listener_settings", "false")
}

func renderAllowAnonymous(*mosqPlan, *planListener) []Directive {
	return line("allow_anonymous", "false")
}

func renderPasswordFile(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.passwd != "" && !p.is21(), "password_file", p.passwd)
}

func renderACLFile(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.acl != "" && !p.is21(), "acl_file", p.acl)
}

// renderPlugin: for 2.1, its password-file and acl-file plugins read the
// files password_file and acl_file name in 2.0 (deprecated in 2.1).
func renderPlugin(p *mosqPlan, _ *planListener) []Directive {
	if !p.is21() {
		return nil
	}
	var ds []Directive
	if p.passwd != "" {
		ds = append(ds, line("plugin", pluginPath(p.o.PluginDir, PasswordFilePlugin))...)
		ds = append(ds, line("plugin_opt_password_file", p.passwd)...)
	}
	if p.acl != "" {
		ds = append(ds, line("plugin", pluginPath(p.o.PluginDir, ACLFilePlugin))...)
		ds = append(ds, line("plugin_opt_acl_file", p.acl)...)
	}
	return ds
}

func renderPIDFile(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.o.PIDFile != "", "pid_file", p.o.PIDFile)
}

func renderPersistence(p *mosqPlan, _ *planListener) []Directive {
	if p.o.DataDir != "" {
		return line("persistence", "true")
	}
	return line("persistence", "false")
}

func renderPersistenceLocation(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.o.DataDir != "", "persistence_location", strings.TrimSuffix(p.o.DataDir, "/")+"/")
}

func renderAutosaveInterval(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.o.DataDir != "", "autosave_interval", "60")
}

func renderLogDest(*mosqPlan, *planListener) []Directive { return line("log_dest", "stderr") }

func renderLogType(*mosqPlan, *planListener) []Directive {
	var ds []Directive
	for _, t := range []string{"error", "warning", "notice", "information"} {
		ds = append(ds, line("log_type", t)...)
	}
	return ds
}

func renderLogTimestampFormat(*mosqPlan, *planListener) []Directive {
	return line("log_timestamp_format", "%Y-%m-%dT%H:%M:%S")
}

func renderConnectionMessages(*mosqPlan, *planListener) []Directive {
	return line("connection_messages", "true")
}

// renderSetTCPNodelay: without it mosquitto's small CONNACK waits on Nagle
// and delayed ACKs (about 40 ms per connection on Linux).
func renderSetTCPNodelay(*mosqPlan, *planListener) []Directive {
	return line("set_tcp_nodelay", "true")
}

// listener options

func renderProtocol(_ *mosqPlan, l *planListener) []Directive {
	if l.role == roleWSS {
		return line("protocol", "websockets")
	}
	return line("protocol", "mqtt")
}

func renderCAFile(p *mosqPlan, l *planListener) []Directive {
	return lineIf(l.tls(), "cafile", filepath.Join(p.pkiDir, "ca.crt"))
}

// renderCertFile: server.crt holds the leaf and its chain.
func renderCertFile(p *mosqPlan, l *planListener) []Directive {
	return lineIf(l.tls(), "certfile", filepath.Join(p.pkiDir, "server.crt"))
}

func renderKeyFile(p *mosqPlan, l *planListener) []Directive {
	return lineIf(l.tls(), "keyfile", filepath.Join(p.pkiDir, "server.key"))
}

func renderTLSVersion(_ *mosqPlan, l *planListener) []Directive {
	return lineIf(l.tls(), "tls_version", "tlsv1.2")
}

func renderRequireCertificate(p *mosqPlan, l *planListener) []Directive {
	return lineIf(l.mtls(p), "require_certificate", "true")
}

// renderCRLFile: the CRL pki init writes and pki revoke rewrites; mosquitto
// reads it at start and on SIGHUP, mqttctl serve whenever it changes.
func renderCRLFile(p *mosqPlan, l *planListener) []Directive {
	crl := filepath.Join(p.pkiDir, "crl.pem")
	return lineIf(l.mtls(p) && fileExists(crl), "crlfile", crl)
}

func renderUseIdentityAsUsername(p *mosqPlan, l *planListener) []Directive {
	return lineIf(l.mtls(p) && p.o.Identity == "cn", "use_identity_as_username", "true")
}

func renderUseSubjectAsUsername(p *mosqPlan, l *planListener) []Directive {
	return lineIf(l.mtls(p) && p.o.Identity == "subject", "use_subject_as_username", "true")
}

// renderWebsocketsOrigin: 2.1 checks the Origin of a WebSocket upgrade
// itself.
func renderWebsocketsOrigin(p *mosqPlan, l *planListener) []Directive {
	var ds []Directive
	for _, o := range p.o.Origins {
		ds = append(ds, lineIf(p.is21() && l.role == roleWSS, "websockets_origin", strings.TrimSuffix(o, "/"))...)
	}
	return ds
}

// renderHTTPOrigin: mosquitto 2.0 cannot check the Origin; mqttctl serve
// does, from its own comment line.
func renderHTTPOrigin(p *mosqPlan, l *planListener) []Directive {
	var ds []Directive
	for _, o := range p.o.Origins {
		ds = append(ds, lineIf(!p.is21() && l.role == roleWSS, ExtPrefix+"http_origin", strings.TrimSuffix(o, "/"))...)
	}
	return ds
}
