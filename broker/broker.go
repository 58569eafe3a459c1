package broker

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/pki"
)

// DefaultPersistenceFile is the database's name in persistence_location
// when persistence_file does not name it. It differs from mosquitto's
// mosquitto.db: the formats differ, and neither broker must read the other's.
const DefaultPersistenceFile = "mqttctl.db"

// DefaultConnectTimeout bounds the time from TCP accept through the TLS
// handshake to the CONNECT packet.
const DefaultConnectTimeout = 10 * time.Second

// DefaultMaxPacketSize is the largest packet accepted when the config sets
// no max_packet_size: mosquitto 2.1's default (2.0 had no limit).
const DefaultMaxPacketSize = 2_000_000

// Options tunes a Broker beyond what the config says.
type Options struct {
	Logger         *slog.Logger
	ConnectTimeout time.Duration // 0: DefaultConnectTimeout
	SysInterval    time.Duration // $SYS update interval; 0: 10 s
	// WatchInterval is how often certificate, key and CRL files are looked
	// at (0: DefaultWatchInterval).
	WatchInterval time.Duration
	// Metrics counts connects, refusals and TLS handshake times for
	// MetricsHandler (the other metrics are read when scraped).
	Metrics bool
}

// security is a listener's authentication and ACL state, swapped whole on
// reload.
type security struct {
	allowAnon    bool
	allowZeroID  bool
	autoIDPrefix string
	passwords    map[string]confgen.Hash // nil: no password_file
	acl          *confgen.ACL            // nil: no acl_file, everything allowed
}

type listenerState struct {
	id   string
	spec confgen.ListenerSpec
	tls  *tlsState
	sec  atomic.Pointer[security]
	ln   *listener
	m    *listenerMetrics // nil: Options.Metrics is off
	// renew is the pki directory that answers $mqttctl/renew (and, with
	// spec.Provision, $mqttctl/provision) on this listener; nil: none.
	renew *pki.Dir
}

// Broker is a running (or ready) MQTT broker.
type Broker struct {
	cfg       *confgen.Resolved
	conns     atomic.Int64 // connections of every listener, for global_max_connections
	opts      Options
	log       *slog.Logger
	srv       *engine.Server
	hooks     *hooks
	listeners []*listenerState
	byID      map[string]*listenerState
	store     stateStore // nil: persistence false
	storePath string
	stopSync  chan struct{}
	syncDone  chan struct{}
	sys       *sysTopics
	wrotePID  bool
	stopWatch chan struct{}
	closeOnce sync.Once // Close runs once; a second call returns its error
	closeErr  error
	tickets   *ticketKeys // nil: Go's in-memory ticket keys
	bridges   []*bridge
	m         *brokerMetrics // nil: Options.Metrics is off
	// enrol answers the $mqttctl/ requests; nil when no listener asks for
	// them (the $mqttctl/ topics are then ordinary topics, as in mosquitto).
	enrol *enrolHook
}

func (b *Broker) listener(id string) *listenerState { return b.byID[id] }

// loadSecurity reads a listener's password and ACL files; each error is
// placed at the line that names the file.
func loadSecurity(s confgen.Security) (*security, error) {
	sec := &security{allowAnon: s.AllowAnonymous, allowZeroID: s.AllowZeroLengthClientID, autoIDPrefix: s.AutoIDPrefix}
	var errs []error
	if s.PasswordFile != "" {
		pf, err := confgen.ReadPasswordFile(s.PasswordFile)
		if err != nil {
			errs = append(errs, &confgen.ConfigError{Pos: s.PasswordFilePos, Msg: "password_file", Err: err})
		} else {
			sec.passwords = map[string]confgen.Hash{}
			for _, l := range pf.Lines {
				if errors.Is(l.Err, confgen.ErrEmptyUsername) {
					errs = append(errs, &confgen.ConfigError{Pos: s.PasswordFilePos, Msg: "password_file",
						Err: fmt.Errorf("%s:%d: %w", s.PasswordFile, l.Line, l.Err)})
					continue
				}
				if l.User == "" {
					continue
				}
				h, err := confgen.ParseHash(l.Hash)
				if err != nil {
					// As mosquitto 2.1, which refuses a password file with a
					// line it cannot decode, at start and on reload
					// (plugins/password-file/password_parse.c:101-106 of 2.1.2;
					// 2.0.11 dropped the entry). The line number, not the text
					// before its ':', which in a mangled file may be anything,
					// a pasted secret too.
					errs = append(errs, &confgen.ConfigError{Pos: s.PasswordFilePos, Msg: "password_file",
						Err: fmt.Errorf("%s:%d: unusable hash: %w (mosquitto 2.1 refuses the whole file; set that user's password again with mqttctl passwd add)", s.PasswordFile, l.Line, err)})
					continue
				}
				sec.passwords[l.User] = h
			}
		}
	}
	if s.ACLFile != "" {
		acl, err := confgen.ReadACL(s.ACLFile)
		if err != nil {
			errs = append(errs, &confgen.ConfigError{Pos: s.ACLFilePos, Msg: "acl_file", Err: err})
		}
		sec.acl = acl
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return sec, nil
}

// Check does what New does with every file the config names (certificates,
// keys, CA and CRL files, password and ACL files) and every listener,
// without opening sockets or the persistence store. It returns every
// problem, each at the file:line of the option behind it: what `mqttctl
// config check` reports, so that it never says ok for a file serve refuses.
func Check(cfg *confgen.Resolved) []error {
	b := &Broker{cfg: cfg, byID: map[string]*listenerState{}}
	var errs []error
	if err := b.buildListeners(); err != nil {
		errs = append(errs, unjoin(err)...)
	}
	for _, ls := range b.listeners {
		if ls.tls != nil {
			errs = append(errs, ls.tls.crlProblems()...)
		}
	}
	if _, err := topicAliasMax(cfg); err != nil {
		errs = append(errs, err)
	}
	if err := checkUser(cfg); err != nil {
		errs = append(errs, err)
	}
	if cfg.Persistence && b.hasTLS() {
		if _, err := loadTicketKeys(ticketKeyPath(cfg)); err != nil {
			errs = append(errs, err)
		}
	}
	for _, spec := range cfg.Bridges {
		if _, err := bridgeTLS(spec); err != nil {
			errs = append(errs, err)
		}
	}
	errs = append(errs, bridgeLoops(cfg)...)
	return errs
}

// hasTLS reports whether any listener speaks TLS.
func (b *Broker) hasTLS() bool {
	for _, ls := range b.listeners {
		if ls.tls != nil {
			return true
		}
	}
	return false
}

// tlsConfs returns every TLS listener's configuration.
func (b *Broker) tlsConfs() []*tls.Config {
	var out []*tls.Config
	for _, ls := range b.listeners {
		if ls.tls != nil {
			out = append(out, ls.tls.conf)
		}
	}
	return out
}

// persistencePath is the persistence database's path.
func persistencePath(cfg *confgen.Resolved) string {
	dir := cfg.PersistenceLocation
	if dir == "" {
		dir = "."
	}
	name := cfg.PersistenceFile
	if name == "" {
		name = DefaultPersistenceFile
	}
	return filepath.Join(dir, name)
}

// ticketKeyPath is where the TLS session ticket keys are kept (tickets.go).
func ticketKeyPath(cfg *confgen.Resolved) string { return persistencePath(cfg) + ".tickets" }

// unjoin splits an errors.Join tree into its leaves.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, unjoin(e)...)
		}
		return out
	}
	return []error{err}
}

// checkUser refuses to run as root when the config asks mosquitto to drop
// to another user: serve does not switch users.
func checkUser(cfg *confgen.Resolved) error {
	if os.Geteuid() != 0 || cfg.User == "" || cfg.User == "root" {
		return nil
	}
	return &confgen.ConfigError{Pos: cfg.GlobalPos["user"], Msg: fmt.Sprintf(
		"user %s: mosquitto started as root drops to that user; mqttctl serve does not switch users: start it as %s (e.g. systemd User=%s), or remove the line", cfg.User, cfg.User, cfg.User)}
}

// WriteTimeout is the slow-subscriber rule: a client that takes no bytes
// for this long while the broker has some for it is disconnected (its
// persistent session keeps what it is owed, up to max_queued_messages).
// Until then nothing a publisher sent is dropped for it but QoS 0 beyond
// 256 KiB waiting (as mosquitto drops QoS 0 first); QoS 1/2 messages wait
// in its session behind its window (max_inflight_messages, or its MQTT 5
// Receive Maximum), up to max_queued_messages, and only beyond are
// dropped, as mosquitto does. A publisher whose subscriber's socket is full
// waits in that write for at most this long.
const WriteTimeout = 10 * time.Second

// MaxConnectSize bounds the remaining length of a CONNECT, the one packet a
// client sends before it is authenticated: 100000 bytes, mosquitto 2.1's
// packet_max_connect (a CONNECT carries a client id, a username, a
// password and a will, a few KB in practice). Later packets have
// max_packet_size as their limit.
const MaxConnectSize = 100000

// New builds a broker from a resolved config. It reads every certificate,
// key, password and ACL file now, so a bad file is an error before any
// socket is opened.
func New(cfg *confgen.Resolved, o Options) (*Broker, error) {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.SysInterval == 0 {
		o.SysInterval = 10 * time.Second
	}
	b := &Broker{cfg: cfg, opts: o, log: o.Logger, byID: map[string]*listenerState{}}
	if o.Metrics {
		b.m = &brokerMetrics{}
	}
	alias, err := topicAliasMax(cfg)
	if err != nil {
		return nil, err
	}
	topicAlias := int(alias)
	if topicAlias == 0 {
		topicAlias = -1 // max_topic_alias 0: none
	}
	// mosquitto 2.1's default max_packet_size (src/conf.c:338 of 2.1.2;
	// 2.0.11 had none), advertised to v5 clients in the CONNACK.
	maxPacket := DefaultMaxPacketSize
	if cfg.MaxPacketSize > 0 {
		maxPacket = cfg.MaxPacketSize
	}
	if enrols(cfg) {
		b.enrol = newEnrolHook(b)
	}
	b.hooks = &hooks{b: b, verifying: make(chan struct{}, runtime.GOMAXPROCS(0))}
	b.srv = engine.New(engine.Options{
		Hooks:              b.hooks,
		Logger:             engineLogger(o.Logger),
		RetainNotAvailable: !cfg.RetainAvailable,
		ConnectTimeout:     o.ConnectTimeout,
		WriteTimeout:       WriteTimeout,
		MaxPacketSize:      maxPacket,
		MaxInflight:        cfg.MaxInflight,
		MaxQueued:          cfg.MaxQueued,
		MaxKeepalive:       uint16(min(max(cfg.MaxKeepalive, 0), 65535)),
		TopicAliasMaximum:  topicAlias,
		MaxConnectSize:     MaxConnectSize,
	})
	if err := checkUser(cfg); err != nil {
		return nil, err
	}
	if err := b.buildListeners(); err != nil {
		return nil, err
	}
	var berrs []error
	for _, spec := range cfg.Bridges {
		br, err := newBridge(b, spec)
		if err != nil {
			berrs = append(berrs, err)
			continue
		}
		b.bridges = append(b.bridges, br)
	}
	if len(berrs) > 0 {
		return nil, errors.Join(berrs...)
	}
	if cfg.Persistence {
		if err := preparePersistence(b, persistencePath(cfg)); err != nil {
			return nil, err
		}
		b.storePath = persistencePath(cfg)
	}
	return b, nil
}

// topicAliasMax is the one Topic Alias Maximum for every listener: the
// engine has a single limit, so listeners that differ are refused.
func topicAliasMax(cfg *confgen.Resolved) (uint16, error) {
	v, at := cfg.MaxTopicAlias, confgen.Pos{}
	for _, l := range cfg.Listeners {
		if l.MaxTopicAlias < 0 {
			continue
		}
		if at.Line != 0 && l.MaxTopicAlias != v {
			return 0, fmt.Errorf("%s: max_topic_alias differs between listeners (%d at %s): mqttctl serve has one limit for all; make them equal", l.Pos, v, at)
		}
		v, at = l.MaxTopicAlias, l.Pos
	}
	return uint16(v), nil
}

// acceptedVersions is the engine's mask of a listener's
// accept_protocol_versions (0: all).
func acceptedVersions(spec confgen.ListenerSpec) uint8 {
	var m uint8
	for v := byte(3); v <= 5; v++ {
		if spec.AcceptsProtocol(v) {
			m |= 1 << v
		}
	}
	if m == 1<<3|1<<4|1<<5 {
		return 0
	}
	return m
}

// engineLogger keeps the engine's own messages at warning level and above
// unless debugging: mqttctl logs connections itself.
func engineLogger(l *slog.Logger) *slog.Logger {
	return slog.New(engineHandler{l.Handler()}).With("component", "engine")
}

// buildListeners reads every listener's files and reports every problem.
func (b *Broker) buildListeners() error {
	var shared *security
	var errs []error
	for i, spec := range b.cfg.Listeners {
		if spec.Protocol != "mqtt" && spec.Protocol != "websockets" {
			errs = append(errs, &confgen.ConfigError{Pos: spec.Pos, Msg: fmt.Sprintf("listener %s: protocol %s is not supported by mqttctl serve (mqtt or websockets)", spec.Addr(), spec.Protocol)})
			continue
		}
		if spec.Port == 0 {
			errs = append(errs, &confgen.ConfigError{Pos: spec.Pos, Msg: "mqttctl serve does not implement unix socket listeners (listener 0): run mosquitto for this file, or use a TCP port"})
			continue
		}
		ls := &listenerState{id: "l" + strconv.Itoa(i) + "-" + spec.Addr(), spec: spec}
		if b.m != nil {
			ls.m = &listenerMetrics{}
		}
		if spec.TLS != nil {
			t, err := newTLSState(spec)
			if err != nil {
				errs = append(errs, err)
			} else if spec.Protocol == "websockets" {
				t.conf.NextProtos = []string{"http/1.1"} // never HTTP/2: the upgrade is HTTP/1.1
			}
			ls.tls = t
		}
		var sec *security
		if !b.cfg.PerListenerSettings && shared != nil {
			sec = shared
		} else {
			s, err := loadSecurity(spec.Security)
			if err != nil {
				errs = append(errs, err)
				s = &security{}
			}
			sec, shared = s, s
		}
		ls.sec.Store(sec)
		if spec.RenewPKI != "" {
			d := &pki.Dir{Path: spec.RenewPKI}
			if err := d.CheckIssuer(); err != nil {
				errs = append(errs, &confgen.ConfigError{Pos: spec.OptionPos[confgen.ExtPrefix+"renew_pki"],
					Msg: fmt.Sprintf("renew_pki %s: serve issues the renewed certificates with this directory's CA, and cannot", spec.RenewPKI), Err: err})
			} else if err := trustsRoot(ls.tls, d); err != nil {
				errs = append(errs, &confgen.ConfigError{Pos: spec.OptionPos[confgen.ExtPrefix+"renew_pki"],
					Msg: fmt.Sprintf("renew_pki %s: the certificates it would issue could not connect here", spec.RenewPKI), Err: err})
			}
			ls.renew = d
		}
		network := "tcp"
		switch spec.SocketDomain {
		case "ipv4":
			network = "tcp4"
		case "ipv6":
			network = "tcp6"
		}
		ls.ln = &listener{id: ls.id, network: network, addr: spec.Addr(), tls: ls.tls, timeout: b.opts.ConnectTimeout,
			max: int64(spec.MaxConnections), log: b.log, ws: spec.Protocol == "websockets", origins: spec.Origins,
			m: ls.m, bm: b.m, global: &b.conns, globalMax: int64(b.cfg.GlobalMaxConnections), srv: b.srv,
			el: engine.Listener{Name: ls.id, MountPoint: spec.MountPoint, Versions: acceptedVersions(spec)}}
		b.listeners = append(b.listeners, ls)
		b.byID[ls.id] = ls
	}
	return errors.Join(errs...)
}

// Start opens every listener and starts serving; it returns once they are
// open.
func (b *Broker) Start() error {
	// Bind first: a port in use is the likelier mistake, and it must not
	// wait for the store's lock.
	for _, ls := range b.listeners {
		if err := ls.ln.open(); err != nil {
			b.Close()
			return fmt.Errorf("listen on %s: %w", ls.spec.Addr(), err)
		}
	}
	if b.storePath != "" {
		if err := b.openStore(); err != nil {
			b.Close()
			return err
		}
		if b.hasTLS() {
			tk, ignored := loadTicketKeys(ticketKeyPath(b.cfg))
			if ignored != nil {
				b.log.Error("REFUSED TLS ticket keys", "problem", ignored.Error())
			}
			if _, err := tk.rotate(time.Now()); err != nil {
				b.Close()
				return err
			}
			tk.apply(b.tlsConfs())
			b.tickets = tk
		}
	}
	for _, ls := range b.listeners {
		ls.ln.start()
	}
	b.sys = startSys(b)
	for _, err := range bridgeLoops(b.cfg) {
		b.log.Warn("bridge loop", "problem", err.Error())
	}
	for _, br := range b.bridges {
		if err := br.start(); err != nil {
			b.Close()
			return err
		}
		br.started = true
	}
	if b.cfg.PIDFile != "" {
		if err := os.WriteFile(b.cfg.PIDFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			b.Close()
			return &confgen.ConfigError{Pos: b.cfg.GlobalPos["pid_file"], Msg: "pid_file", Err: err}
		}
		b.wrotePID = true
	}
	b.stopWatch = make(chan struct{})
	every := b.opts.WatchInterval
	if every <= 0 {
		every = DefaultWatchInterval
	}
	go b.watch(every, b.stopWatch)
	go b.trimLoop(b.stopWatch)
	for _, ls := range b.listeners {
		if ls.tls != nil {
			b.warnCRL(ls)
		}
	}
	for _, ls := range b.listeners {
		kind := "plain"
		if ls.spec.TLS != nil {
			kind = "tls"
			if ls.spec.TLS.RequireCertificate {
				kind = "mtls"
			}
		}
		b.log.Info("listening", "address", ls.ln.Address(), "mode", kind, "protocol", ls.spec.Scheme())
	}
	return nil
}

// Addrs returns the listeners' addresses in config order (useful with port 0).
func (b *Broker) Addrs() []string {
	out := make([]string, len(b.listeners))
	for i, ls := range b.listeners {
		out[i] = ls.ln.Address()
	}
	return out
}

// Reload applies a re-read config as mosquitto's SIGHUP does: certificate,
// key and CRL files, password_file, acl_file and allow_anonymous are
// reloaded; password clients whose password no longer verifies are
// disconnected. Listener options (ports, CA files, tls_version,
// require_certificate) are not reloaded. On error the old state stays.
func (b *Broker) Reload(cfg *confgen.Resolved) error {
	if len(cfg.Listeners) != len(b.listeners) {
		return errors.New("reload: the listeners changed; restart the broker to apply that")
	}
	secs := make([]*security, len(b.listeners))
	var shared *security
	for i, spec := range cfg.Listeners {
		if !cfg.PerListenerSettings && shared != nil {
			secs[i] = shared
			continue
		}
		s, err := loadSecurity(keepPluginFiles(b.listeners[i].spec.Security, spec.Security))
		if err != nil {
			return fmt.Errorf("reload: %w", err)
		}
		secs[i], shared = s, s
	}
	var errs []error
	for i, ls := range b.listeners {
		if ls.tls != nil {
			if err := ls.tls.reload(); err != nil {
				errs = append(errs, fmt.Errorf("reload certificate or CRL of %s: %w", ls.spec.Addr(), err))
			}
			b.warnCRL(ls)
			b.dropRevoked(ls)
			if (ls.spec.TLS.CAFile != "" || ls.spec.TLS.CAPath != "") && ls.tls.casChanged() {
				b.log.Warn("cafile or capath changed, but a reload does not apply it: clients are still checked against the CAs read at start; restart the broker to apply it",
					"listener", ls.id, "cafile", ls.spec.TLS.CAFile, "capath", ls.spec.TLS.CAPath)
			}
		}
		ls.sec.Store(secs[i])
	}
	n := b.hooks.recheck()
	b.log.Info("configuration reloaded (certificate, key and CRL files, password_file, acl_file, allow_anonymous; not cafile or capath)", "disconnected", n)
	if changed := notReloaded(b.cfg, cfg); len(changed) > 0 {
		b.log.Warn("these changes need a restart (a reload applies certificate, key and CRL files, password_file, acl_file and allow_anonymous)",
			"changed", strings.Join(changed, ", "))
	}
	return errors.Join(errs...)
}

// keepPluginFiles keeps the files of mosquitto 2.1's password-file and
// acl-file plugins as they were at start: 2.1 reads plugin lines at start
// only (a reload skips them; the plugin re-reads the same file).
func keepPluginFiles(start, cur confgen.Security) confgen.Security {
	if start.PasswordFilePlugin || cur.PasswordFilePlugin {
		cur.PasswordFile, cur.PasswordFilePos, cur.PasswordFilePlugin = start.PasswordFile, start.PasswordFilePos, start.PasswordFilePlugin
	}
	if start.ACLFilePlugin || cur.ACLFilePlugin {
		cur.ACLFile, cur.ACLFilePos, cur.ACLFilePlugin = start.ACLFile, start.ACLFilePos, start.ACLFilePlugin
	}
	return cur
}

// notReloaded names what differs between the running config and a
// re-read one that Reload does not apply, so that an operator is told
// instead of left believing the change is live.
func notReloaded(old, cur *confgen.Resolved) []string {
	var out []string
	diff := func(name string, a, b any) {
		if a != b {
			out = append(out, name)
		}
	}
	diff("max_packet_size", old.MaxPacketSize, cur.MaxPacketSize)
	diff("max_inflight_messages", old.MaxInflight, cur.MaxInflight)
	diff("max_queued_messages", old.MaxQueued, cur.MaxQueued)
	diff("max_keepalive", old.MaxKeepalive, cur.MaxKeepalive)
	diff("max_topic_alias", old.MaxTopicAlias, cur.MaxTopicAlias)
	diff("retain_available", old.RetainAvailable, cur.RetainAvailable)
	diff("sys_interval", old.SysInterval, cur.SysInterval)
	diff("persistence", old.Persistence, cur.Persistence)
	diff("persistence_location", old.PersistenceLocation, cur.PersistenceLocation)
	diff("persistence_file", old.PersistenceFile, cur.PersistenceFile)
	diff("pid_file", old.PIDFile, cur.PIDFile)
	diff("per_listener_settings", old.PerListenerSettings, cur.PerListenerSettings)
	for i, l := range old.Listeners {
		if i >= len(cur.Listeners) {
			break
		}
		n := cur.Listeners[i]
		at := " (listener " + l.Addr() + ")"
		diff("listener address"+at, l.Addr(), n.Addr())
		diff("mount_point"+at, l.MountPoint, n.MountPoint)
		diff("max_connections"+at, l.MaxConnections, n.MaxConnections)
		diff("socket_domain"+at, l.SocketDomain, n.SocketDomain)
		diff("use_username_as_clientid"+at, l.UseUsernameAsClientID, n.UseUsernameAsClientID)
		diff("renew_pki, renew_days or provision_by_claim"+at, fmt.Sprint(l.RenewPKI, l.RenewDays, l.Provision), fmt.Sprint(n.RenewPKI, n.RenewDays, n.Provision))
		if ls, ns := l.Security, n.Security; ls.PasswordFilePlugin || ns.PasswordFilePlugin || ls.ACLFilePlugin || ns.ACLFilePlugin {
			kept := keepPluginFiles(ls, ns)
			diff("the password-file or acl-file plugin's file (plugin lines are read at start)"+at, kept.PasswordFile+"\x00"+kept.ACLFile, ns.PasswordFile+"\x00"+ns.ACLFile)
		}
		if (l.TLS == nil) != (n.TLS == nil) {
			out = append(out, "TLS on or off"+at)
			continue
		}
		if l.TLS != nil {
			a, b := *l.TLS, *n.TLS
			diff("certfile, keyfile or crlfile path"+at, a.CertFile+a.KeyFile+a.CRLFile, b.CertFile+b.KeyFile+b.CRLFile)
			a.CertFile, a.KeyFile, a.CRLFile, b.CertFile, b.KeyFile, b.CRLFile = "", "", "", "", "", ""
			diff("cafile, capath, tls_version, ciphers, require_certificate or identity options"+at, a, b)
		}
	}
	return out
}

// Close disconnects every client, closes the listeners, flushes the store
// and removes the pid_file. Calling it again returns the first call's
// error.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() { b.closeErr = b.close() })
	return b.closeErr
}

func (b *Broker) close() error {
	if b.stopWatch != nil {
		close(b.stopWatch)
		b.stopWatch = nil
	}
	for _, br := range b.bridges {
		if br.started {
			br.close()
			br.started = false
		}
	}
	for _, ls := range b.listeners {
		ls.ln.close()
	}
	if b.sys != nil {
		b.sys.stop()
	}
	if b.enrol != nil {
		b.enrol.wait() // an answer being issued is finished and recorded
	}
	err := b.srv.Close()
	if b.wrotePID {
		_ = os.Remove(b.cfg.PIDFile)
	}
	if cerr := b.closeStore(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// trustsRoot checks that the listener's cafile/capath holds the root CA of
// d, so that the certificates renewed with d connect to the listener (a
// renew_pki naming another CA would issue certificates nobody can use).
func trustsRoot(st *tlsState, d *pki.Dir) error {
	path := filepath.Join(d.Path, pki.RootCertFile)
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	roots, err := pki.ParseCerts(data, path)
	if err != nil {
		return err
	}
	if st != nil {
		for _, ca := range st.cas {
			if bytes.Equal(ca.Raw, roots[0].Raw) {
				return nil
			}
		}
	}
	return fmt.Errorf("the listener's cafile/capath does not hold %s (%s): give the listener that CA as cafile, or renew_pki the directory of the listener's CA", path, roots[0].Subject)
}
