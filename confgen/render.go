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
	roleTLS   listenerRole = iota // the TLS listener (--listen)
	rolePlain                     // a plain listener on one address (--plain)
	roleWSS                       // MQTT over WebSocket with the TLS listener's certificate (--websockets)
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
	generatedGlobal = []string{"per_listener_settings", "allow_anonymous", "password_file", "acl_file", "persistence",
		"persistence_location", "autosave_interval", "log_dest", "log_type", "log_timestamp_format", "connection_messages",
		"set_tcp_nodelay"}
	generatedListener = []string{"protocol", "cafile", "certfile", "keyfile", "tls_version", "require_certificate", "crlfile",
		"use_identity_as_username", "use_subject_as_username"}
)

// render writes the plan as a mosquitto.conf model, one option row at a
// time.
func (p *mosqPlan) render() *Config {
	c := &Config{Header: []string{
		"mosquitto.conf written by mqttctl config mosquitto (mode " + p.o.Mode + ").",
		"Check it with: mqttctl config check FILE",
	}}
	for _, k := range generatedGlobal {
		c.Global = append(c.Global, serveSupport[k].render(p, nil)...)
	}
	for _, pl := range p.listeners {
		l := &Listener{Port: pl.Port, Bind: pl.Bind}
		for _, k := range generatedListener {
			l.Options = append(l.Options, serveSupport[k].render(p, pl)...)
		}
		c.Listener = append(c.Listener, l)
	}
	return c
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

func renderPerListenerSettings(*mosqPlan, *planListener) []Directive {
	return line("per_listener_settings", "false")
}

func renderAllowAnonymous(*mosqPlan, *planListener) []Directive {
	return line("allow_anonymous", "false")
}

func renderPasswordFile(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.passwd != "", "password_file", p.passwd)
}

func renderACLFile(p *mosqPlan, _ *planListener) []Directive {
	return lineIf(p.acl != "", "acl_file", p.acl)
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
