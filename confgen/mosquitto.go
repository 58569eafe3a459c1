package confgen

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/mqttctl/mqttctl/internal/ident"
)

// MosquittoOptions describes a deployment for GenerateMosquitto.
type MosquittoOptions struct {
	PKIDir       string // holds ca.crt, server.crt, server.key
	Mode         string // "tls" (one-way, passwords) or "mtls" (client certificates)
	PasswordFile string
	ACLFile      string
	Listen       string // TLS listener, [ADDR]:PORT; default ":8883"
	Plain        string // optional plain listener, default none; e.g. 127.0.0.1:1883
	Identity     string // mtls: cn (default), subject or none (then passwords)
	DataDir      string // persistence_location; "" means no persistence
	// WebSockets adds a wss listener, [ADDR]:PORT, with the TLS listener's
	// certificate and authentication (for browsers); "" means none.
	WebSockets string
	// BridgeTo adds a bridge to the broker at HOST:PORT over mutual TLS, as
	// BridgeName, with the pki directory's CA and its bridge certificate
	// servers/BRIDGENAME.crt (mqttctl pki issue bridge NAME), carrying the
	// BridgeTopics ("PATTERN [out|in|both [QOS [LOCAL REMOTE]]]").
	BridgeTo     string
	BridgeName   string
	BridgeTopics []string
	// Target is the mosquitto version the file is for; "" means 2.0. For
	// 2.1 the file has no option 2.1 deprecates: the password and ACL files
	// are read by its password-file and acl-file plugins (from PluginDir;
	// "" names them alone, for the dynamic loader's search path), and
	// Origins are websockets_origin lines.
	Target    MosquittoTarget
	PluginDir string
	// Origins are the page origins the WebSocket listener accepts
	// (scheme://host[:port]); none means any. For 2.0, "# mqttctl:
	// http_origin" lines, which mqttctl serve applies and mosquitto 2.0
	// reads as comments.
	Origins []string
	// PIDFile is the pid_file to write; "" for none.
	PIDFile string
}

// OptionError is a problem with one field of MosquittoOptions. The
// command that filled the options names its own flag for Field.
type OptionError struct {
	Field string // the MosquittoOptions field, e.g. "PasswordFile"
	Msg   string
	Err   error // the kind, when a command can advise on it (*MissingCertError)
}

func (e *OptionError) Error() string { return e.Msg }

func (e *OptionError) Unwrap() error { return e.Err }

func optErr(field, msg string) error { return &OptionError{Field: field, Msg: msg} }

// MissingCertError is the kind of error for a certificate or key that a
// generated configuration names and the pki directory lacks; a command
// turns it into the `pki issue` that makes it.
type MissingCertError struct {
	Path    string // the missing file
	Profile string // the pki profile that issues it: "server" or "bridge"
	Name    string // its name in the pki directory
	PKIDir  string // the pki directory as given
	Host    string // the host it must name; "" when not known
}

func (e *MissingCertError) Error() string {
	return fmt.Sprintf("%s is missing: the %s certificate %s has not been issued", e.Path, e.Profile, e.Name)
}

// SplitListen parses [ADDR]:PORT (or a bare port) into a bind address and port.
func SplitListen(s string) (string, int, error) {
	if !strings.Contains(s, ":") {
		s = ":" + s
	}
	host, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("listen address %q: use ADDR:PORT, e.g. 0.0.0.0:8883 or 127.0.0.1:8883", s)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 1 || port > 65535 {
		return "", 0, fmt.Errorf("listen address %q: port must be 1-65535", s)
	}
	if host == "0.0.0.0" || host == "::" || host == "*" {
		host = ""
	}
	return host, port, nil
}

// GenerateMosquitto builds a complete mosquitto.conf model. File paths are
// made absolute, since mosquitto resolves relative ones against its working
// directory. Each option is written by its row of the option table
// (ServeSupport.render).
func GenerateMosquitto(o MosquittoOptions) (*Config, error) {
	p, err := planMosquitto(o)
	if err != nil {
		return nil, err
	}
	c := p.render()
	if err := addBridge(c, p.o, p.pkiDir); err != nil {
		return nil, err
	}
	if err := c.checkText(); err != nil {
		return nil, err
	}
	if _, ds := c.Resolve(); HasErrors(ds) {
		return nil, fmt.Errorf("generated config is invalid: %v", ds)
	}
	return c, nil
}

// planMosquitto checks o and fills in its defaults.
func planMosquitto(o MosquittoOptions) (*mosqPlan, error) {
	if o.PKIDir == "" {
		return nil, optErr("PKIDir", "the pki directory is required (the one 'mqttctl pki init' made)")
	}
	p := &mosqPlan{}
	if err := p.files(o); err != nil {
		return nil, err
	}
	if o.Listen == "" {
		o.Listen = ":8883"
	}
	bind, port, err := SplitListen(o.Listen)
	if err != nil {
		return nil, err
	}
	p.listeners = []*planListener{{Port: port, Bind: bind, role: roleTLS}}
	if o.Identity == "" {
		o.Identity = "cn"
	}
	if err := p.mode(o); err != nil {
		return nil, err
	}
	if o.Target == "" {
		o.Target = Mosquitto20
	}
	if _, err := ParseMosquittoTarget(string(o.Target)); err != nil {
		return nil, &OptionError{Field: "Target", Msg: err.Error(), Err: ErrUnknownTarget}
	}
	p.o = o
	return p, p.moreListeners()
}

// absPath makes p absolute; kind, when set, names the file for a
// *MissingFileError when it does not exist.
func absPath(p, kind string) (string, error) {
	if p == "" {
		return "", nil
	}
	a, err := filepath.Abs(p)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", p, err)
	}
	if _, err := os.Stat(a); errors.Is(err, fs.ErrNotExist) && kind != "" {
		return "", &MissingFileError{Kind: kind, Path: p, Err: err}
	} else if err != nil {
		return "", fmt.Errorf("%s: %w", p, err)
	}
	return a, nil
}

// files checks the pki directory, the password file and the ACL file.
func (p *mosqPlan) files(o MosquittoOptions) error {
	var err error
	if p.pkiDir, err = absPath(o.PKIDir, ""); err != nil {
		return err
	}
	for _, f := range []string{"ca.crt", "server.crt", "server.key"} {
		if _, err := os.Stat(filepath.Join(p.pkiDir, f)); err != nil {
			return optErr("PKIDir", fmt.Sprintf("%s has no %s: it is not a pki directory yet ('mqttctl pki init' makes one)", o.PKIDir, f))
		}
	}
	if p.passwd, err = absPath(o.PasswordFile, "password"); err != nil {
		return err
	}
	if p.acl, err = absPath(o.ACLFile, "ACL"); err != nil {
		return err
	}
	if p.acl != "" {
		if _, err := ReadACL(p.acl); err != nil {
			return err
		}
	}
	return nil
}

// mode checks that the mode and identity can authenticate clients.
func (p *mosqPlan) mode(o MosquittoOptions) error {
	switch o.Mode {
	case "mtls":
		if o.Identity == "none" && p.passwd == "" {
			return optErr("PasswordFile", "identity none needs a password file: clients then log in with passwords besides their certificates")
		}
		if o.Identity != "cn" && o.Identity != "subject" && o.Identity != "none" {
			return optErr("Identity", fmt.Sprintf("%q: use cn, subject or none", o.Identity))
		}
	case "tls":
		if p.passwd == "" {
			return optErr("PasswordFile", "one-way TLS authenticates clients by password: give a password file (make it with 'mqttctl passwd add FILE USER')")
		}
	default:
		return optErr("Mode", fmt.Sprintf("%q: use tls (server certificate, client passwords) or mtls (client certificates too)", o.Mode))
	}
	return nil
}

// moreListeners adds the plain and the WebSocket listeners when asked for.
func (p *mosqPlan) moreListeners() error {
	o := p.o
	bind, port := p.listeners[0].Bind, p.listeners[0].Port
	if o.Plain != "" {
		pb, pp, err := SplitListen(o.Plain)
		if err != nil {
			return err
		}
		if pb == "" {
			return optErr("Plain", "a plain listener has no encryption: bind it to one address, e.g. 127.0.0.1:1883")
		}
		if pp == port && pb == bind {
			return optErr("Plain", "the plain and the TLS listener use the same address")
		}
		if o.Mode == "mtls" && o.Identity != "none" && p.passwd == "" {
			return optErr("PasswordFile", "a plain listener has no certificates to identify clients: give a password file so its clients log in with passwords")
		}
		p.listeners = append(p.listeners, &planListener{Port: pp, Bind: pb, role: rolePlain})
	}
	if o.WebSockets != "" {
		wb, wp, err := SplitListen(o.WebSockets)
		if err != nil {
			return optErr("WebSockets", err.Error())
		}
		for _, other := range p.listeners {
			if other.Port == wp && (other.Bind == wb || other.Bind == "" || wb == "") {
				return optErr("WebSockets", fmt.Sprintf("the WebSocket listener %s uses the port of another listener", o.WebSockets))
			}
		}
		p.listeners = append(p.listeners, &planListener{Port: wp, Bind: wb, role: roleWSS})
	}
	for _, origin := range o.Origins {
		if o.WebSockets == "" {
			return optErr("Origins", "an allowed page origin is for the WebSocket listener, and there is none: add a WebSocket listener")
		}
		if !validOrigin(origin) {
			return optErr("Origins", fmt.Sprintf("%q: give a page's origin, scheme://host[:port], e.g. https://app.example.com", origin))
		}
	}
	return nil
}

// checkText refuses values a mosquitto.conf line cannot carry: a path with
// a line break would add a directive of its own, and leading or trailing
// white space is stripped by mosquitto.
func (c *Config) checkText() error {
	check := func(d Directive) error {
		if err := ident.CheckText(d.Key, d.Value); err != nil {
			return err
		}
		if strings.TrimSpace(d.Value) != d.Value {
			return fmt.Errorf("%s %q: mosquitto strips leading and trailing white space", d.Key, d.Value)
		}
		return nil
	}
	for _, d := range c.Global {
		if err := check(d); err != nil {
			return err
		}
	}
	for _, l := range c.Listener {
		if err := ident.CheckText("listener address", l.Bind); err != nil {
			return err
		}
		for _, d := range l.Options {
			if err := check(d); err != nil {
				return err
			}
		}
	}
	return nil
}

// Files returns the files the broker reads: CA, certificate, key, password
// and ACL files of every listener.
func (r *Resolved) Files() []string {
	var out []string
	add := func(p string) {
		if p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	for _, l := range r.Listeners {
		if l.TLS != nil {
			add(l.TLS.CAFile)
			add(l.TLS.CertFile)
			add(l.TLS.KeyFile)
			add(l.TLS.CRLFile)
		}
		add(l.Security.PasswordFile)
		add(l.Security.ACLFile)
	}
	for _, b := range r.Bridges {
		add(b.CAFile)
		add(b.CertFile)
		add(b.KeyFile)
	}
	return out
}

// CheckFilesReadable reports every file the config names that cannot be
// opened (missing, unreadable, a directory), at the line that names it.
func CheckFilesReadable(r *Resolved) []error {
	var errs []error
	seen := map[string]bool{}
	check := func(path string, pos Pos, what string) {
		if path == "" || seen[path] {
			return
		}
		seen[path] = true
		// Without blocking on a FIFO planted there.
		f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			var st os.FileInfo
			if st, err = f.Stat(); err == nil && st.IsDir() && what != "capath" {
				err = fmt.Errorf("%s is a directory", path)
			}
			f.Close()
		}
		if err != nil {
			errs = append(errs, &ConfigError{Pos: pos, Msg: what, Err: err})
		}
	}
	for _, l := range r.Listeners {
		if t := l.TLS; t != nil {
			for _, kv := range [][2]string{{"cafile", t.CAFile}, {"capath", t.CAPath}, {"certfile", t.CertFile}, {"keyfile", t.KeyFile}, {"crlfile", t.CRLFile}} {
				check(kv[1], l.OptionPos[kv[0]], kv[0])
			}
		}
		check(l.Security.PasswordFile, l.Security.PasswordFilePos, "password_file")
		check(l.Security.ACLFile, l.Security.ACLFilePos, "acl_file")
	}
	return errs
}

// BrokerAccess is what GrantBrokerAccess did.
type BrokerAccess struct {
	Changes  []string // one line per file or directory whose group or mode changed
	Warnings []string // directories the broker's user still cannot enter
	NoGroup  bool     // the group does not exist here; nothing was changed
}

// GrantBrokerAccess gives group (the user mosquitto drops to when started
// as root) read access to exactly the files the config names, below root
// (see GrantGroupAccess), and reports directories that user still cannot
// enter. It is what `config mosquitto` and `up` do when run as root.
func GrantBrokerAccess(r *Resolved, group, root string) (BrokerAccess, error) {
	var a BrokerAccess
	if _, err := user.LookupGroup(group); err != nil {
		a.NoGroup = true
		return a, nil
	}
	lines, err := GrantGroupAccess(r.Files(), group, root)
	a.Changes = lines
	if err != nil {
		return a, err
	}
	for _, f := range r.Files() {
		if d := Unreachable(f, group); d != "" {
			a.Warnings = append(a.Warnings, fmt.Sprintf("user %s cannot enter %s, so it cannot read %s: chmod o+x %s, or move the files", group, d, f, d))
		}
	}
	return a, nil
}

// GrantGroupAccess lets group read exactly the given files, without making
// them readable by everyone: each file gets the group and g+r (keys stay
// unreadable by others); for a file below root, each directory from the file
// up to root gets the group and g+x, for any other file only its own
// directory. It returns one line per change. It needs to run as root (or the
// files' owner in that group).
func GrantGroupAccess(files []string, group, root string) ([]string, error) {
	g, err := user.LookupGroup(group)
	if err != nil {
		return nil, fmt.Errorf("group %s: %w", group, err)
	}
	gid, _ := strconv.Atoi(g.Gid)
	var done []string
	dirs := map[string]bool{}
	rootAbs, _ := filepath.Abs(root)
	for _, f := range files {
		stopAbs := filepath.Dir(f)
		if rel, err := filepath.Rel(rootAbs, f); err == nil && !strings.HasPrefix(rel, "..") {
			stopAbs = rootAbs
		}
		st, err := os.Stat(f)
		if err != nil {
			return done, fmt.Errorf("grant access: %w", err)
		}
		if err := os.Chown(f, -1, gid); err != nil {
			return done, fmt.Errorf("give %s to group %s: %w", f, group, err)
		}
		mode := st.Mode().Perm() | 0o040
		if err := os.Chmod(f, mode); err != nil {
			return done, fmt.Errorf("chmod %s: %w", f, err)
		}
		done = append(done, fmt.Sprintf("%s: group %s, mode %04o", f, group, mode))
		for d := filepath.Dir(f); strings.HasPrefix(d, stopAbs) && !dirs[d]; d = filepath.Dir(d) {
			dirs[d] = true
			dst, err := os.Stat(d)
			if err != nil {
				return done, err
			}
			if err := os.Chown(d, -1, gid); err != nil {
				return done, fmt.Errorf("give %s to group %s: %w", d, group, err)
			}
			dm := dst.Mode().Perm() | 0o010
			if err := os.Chmod(d, dm); err != nil {
				return done, err
			}
			done = append(done, fmt.Sprintf("%s/: group %s, mode %04o", d, group, dm))
			if d == stopAbs {
				break
			}
		}
	}
	return done, nil
}

// Unreachable returns the first directory above path that user (by its
// group) cannot traverse, or "".
func Unreachable(path, username string) string {
	u, err := user.Lookup(username)
	if err != nil {
		return ""
	}
	gids, _ := u.GroupIds()
	for d := filepath.Dir(path); d != "/" && d != "."; d = filepath.Dir(d) {
		st, err := os.Stat(d)
		if err != nil {
			return d
		}
		m := st.Mode().Perm()
		if m&0o001 != 0 {
			continue
		}
		if m&0o010 != 0 && inGroup(st, gids) {
			continue
		}
		return d
	}
	return ""
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// addBridge writes the bridge section MosquittoOptions asks for.
func addBridge(c *Config, o MosquittoOptions, pkiDir string) error {
	if o.BridgeTo == "" {
		if o.BridgeName != "" || len(o.BridgeTopics) > 0 {
			return optErr("BridgeTo", "a bridge name or topic without the remote broker's address")
		}
		return nil
	}
	if err := checkBridgeName(o.BridgeName); err != nil {
		return optErr("BridgeName", fmt.Sprintf("bridge name %q: %v", o.BridgeName, err))
	}
	if len(o.BridgeTopics) == 0 {
		return optErr("BridgeTopics", "a bridge needs at least one topic, e.g. 'sensors/# out 1'")
	}
	host, port, err := net.SplitHostPort(o.BridgeTo)
	if n, perr := strconv.Atoi(port); err != nil || host == "" || perr != nil || n < 1 || n > 65535 {
		return optErr("BridgeTo", fmt.Sprintf("%q: give the remote broker as HOST:PORT (a name in its certificate), e.g. central.example.com:8883", o.BridgeTo))
	}
	cert := filepath.Join(pkiDir, "servers", o.BridgeName+".crt")
	key := filepath.Join(pkiDir, "servers", o.BridgeName+".key")
	for _, f := range []string{cert, key} {
		if _, err := os.Stat(f); err != nil {
			mc := &MissingCertError{Path: f, Profile: "bridge", Name: o.BridgeName, PKIDir: o.PKIDir}
			return &OptionError{Field: "BridgeName", Msg: mc.Error(), Err: mc}
		}
	}
	c.Add("connection", o.BridgeName)
	c.Add("address", o.BridgeTo)
	for _, t := range o.BridgeTopics {
		c.Add("topic", t)
	}
	c.Add("bridge_cafile", filepath.Join(pkiDir, "ca.crt"))
	c.Add("bridge_certfile", cert)
	c.Add("bridge_keyfile", key)
	c.Add("cleansession", "false")
	return nil
}
