package confgen

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// CheckTarget is the broker `config check` checks a file for: mqttctl serve
// (CheckServeTarget), or a mosquitto version.
type CheckTarget string

const (
	// CheckServeTarget: what mqttctl serve does with the file.
	CheckServeTarget CheckTarget = "serve"
	// CheckInstalledMosquitto: the version of the mosquitto on PATH (2.0
	// where there is none); Installed turns it into one of the others.
	CheckInstalledMosquitto CheckTarget = "mosquitto"
	// CheckMosquitto20 and CheckMosquitto21: that mosquitto version.
	CheckMosquitto20 CheckTarget = "mosquitto-2.0"
	CheckMosquitto21 CheckTarget = "mosquitto-2.1"
)

// ParseCheckTarget reads serve, mosquitto, mosquitto-2.0 or mosquitto-2.1.
func ParseCheckTarget(s string) (CheckTarget, error) {
	switch t := CheckTarget(s); t {
	case CheckServeTarget, CheckInstalledMosquitto, CheckMosquitto20, CheckMosquitto21:
		return t, nil
	}
	return "", fmt.Errorf("%q: %w: use serve, mosquitto (the version on PATH), mosquitto-2.0 or mosquitto-2.1", s, ErrUnknownTarget)
}

// CheckTargetFor is the check target of a mosquitto version.
func CheckTargetFor(v MosquittoTarget) CheckTarget { return CheckTarget("mosquitto-" + string(v)) }

// Mosquitto is the mosquitto version of a mosquitto-X.Y target; false for
// serve and for mosquitto (not yet turned into a version).
func (t CheckTarget) Mosquitto() (MosquittoTarget, bool) {
	v, ok := strings.CutPrefix(string(t), "mosquitto-")
	return MosquittoTarget(v), ok
}

// Check is what `config check` reports for the target: for serve,
// ResolveForServe plus serveFiles (the bundled broker's own start-up checks,
// which confgen cannot import); for a mosquitto version, CheckMosquittoFor.
// t must not be CheckInstalledMosquitto (see DetectMosquittoTarget).
func (c *Config) Check(t CheckTarget, serveFiles func(*Resolved) []error) (*Resolved, []Diagnostic) {
	if v, ok := t.Mosquitto(); ok {
		return c.CheckMosquittoFor(v)
	}
	r, ds := c.ResolveForServe()
	return r, WithFileErrors(ds, serveFiles(r))
}

// CheckMosquittoFor is CheckMosquitto plus what that version says of the
// file: for 2.0, an error at each option it does not know (it came in 2.1)
// and at each plugin of 2.1's it does not have; for 2.1, a warning at each
// option it deprecates and at each password or ACL file it warns about (its
// ownership check).
func (c *Config) CheckMosquittoFor(v MosquittoTarget) (*Resolved, []Diagnostic) {
	r, ds := c.CheckMosquitto()
	var vs []Diagnostic
	each := func(d Directive) {
		if msg, warn := versionProblem(v, d); msg != "" {
			vs = append(vs, Diagnostic{Pos: d.Pos, Msg: msg, Warning: warn})
		}
	}
	for _, d := range c.Global {
		each(d)
	}
	for _, l := range c.Listener {
		for _, d := range l.Options {
			each(d)
		}
	}
	if v == Mosquitto21 {
		vs = append(vs, ownershipWarnings(r, brokerUser(r))...)
		vs = append(vs, SymlinkedAuthFiles(r, "mosquitto 2.1", "it would not start, and on SIGHUP it would quit")...)
	}
	return r, append(vs, ds...)
}

// deprecated21 are the options mosquitto 2.1 deprecates (removed in 3.0),
// with what replaces each.
var deprecated21 = map[string]string{
	"per_listener_settings":    "give each listener its own plugins (plugin_use) or listener_allow_anonymous / listener_auto_id_prefix, or use global settings",
	"password_file":            "use the password-file plugin: plugin mosquitto_password_file.so, then plugin_opt_password_file FILE",
	"acl_file":                 "use the acl-file plugin: plugin mosquitto_acl_file.so, then plugin_opt_acl_file FILE",
	"auto_id_prefix":           "use listener_auto_id_prefix",
	"allow_duplicate_messages": "the behaviour will default to true",
	"bind_address":             "use a listener line with the address",
	"port":                     "use a listener line",
	"clientid_prefixes":        "",
}

// versionProblem is what version v says of one directive: "" for nothing.
func versionProblem(v MosquittoTarget, d Directive) (string, bool) {
	spec, _ := lookupOption(d.Key)
	switch {
	case v == Mosquitto20 && spec.since == Mosquitto21:
		return fmt.Sprintf("%s came in mosquitto 2.1: mosquitto 2.0 stops at it (Unknown configuration variable): remove it, or run mosquitto 2.1", d.Key), false
	case v == Mosquitto20 && d.Key == "plugin" && (filepath.Base(d.Value) == PasswordFilePlugin || filepath.Base(d.Value) == ACLFilePlugin):
		return fmt.Sprintf("plugin %s is mosquitto 2.1's: 2.0 has none; use %s", d.Value, map[bool]string{true: "password_file", false: "acl_file"}[filepath.Base(d.Value) == PasswordFilePlugin]), false
	case v == Mosquitto21:
		if fix, ok := deprecated21[d.Key]; ok {
			msg := fmt.Sprintf("%s is deprecated in mosquitto 2.1 and will be removed in 3.0", d.Key)
			if fix != "" {
				msg += ": " + fix
			}
			return msg, true
		}
	}
	return "", false
}

// brokerUser is the user mosquitto runs as: the config's user when started
// as root (mosquitto by default), else this process's.
func brokerUser(r *Resolved) string {
	if os.Geteuid() != 0 {
		if u, err := user.Current(); err == nil {
			return u.Username
		}
		return ""
	}
	if r.User != "" {
		return r.User
	}
	return "mosquitto"
}

// ownershipWarnings are mosquitto 2.1's warnings about the files it opens
// with its ownership check (RestrictedFiles), for a broker running as
// username: each at the line that names the file.
func ownershipWarnings(r *Resolved, username string) []Diagnostic {
	u, err := user.Lookup(username)
	if err != nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var ds []Diagnostic
	seen := map[string]bool{}
	for _, l := range r.Listeners {
		s := l.Security
		for _, f := range []struct {
			path string
			pos  Pos
		}{{s.PasswordFile, s.PasswordFilePos}, {s.ACLFile, s.ACLFilePos}} {
			if f.path == "" || seen[f.path] {
				continue
			}
			seen[f.path] = true
			st, err := os.Stat(f.path)
			if err != nil {
				continue // CheckFilesReadable reports it
			}
			var fix []string
			if fu, fg, ok := fsx.Owner(st); ok && (fu != uid || fg != gid) {
				fix = append(fix, fmt.Sprintf("chown %s:%s %s", username, groupName(gid), f.path))
			}
			if st.Mode().Perm()&0o007 != 0 {
				fix = append(fix, "chmod o-rwx "+f.path)
			}
			if len(fix) > 0 {
				ds = append(ds, Diagnostic{Pos: f.pos, Warning: true, Msg: fmt.Sprintf("mosquitto 2.1 running as %s warns that %s is not its own or others can read it, and says future versions will refuse it: %s", username, f.path, strings.Join(fix, "; "))})
			}
		}
	}
	return ds
}

// SymlinkedAuthFiles warns at each ACL and password file that is a
// symlink: mosquitto 2.1 (who) opens them without following one unless
// MOSQUITTO_UNSAFE_ALLOW_SYMLINKS is in its environment, and then fails
// (what).
func SymlinkedAuthFiles(r *Resolved, who, what string) []Diagnostic {
	var ds []Diagnostic
	seen := map[string]bool{}
	check := func(path string, pos Pos, opt string) {
		if path == "" || seen[path] {
			return
		}
		seen[path] = true
		if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
			ds = append(ds, Diagnostic{Pos: pos, Warning: true, Kind: ErrSymlinkedAuthFile, Msg: fmt.Sprintf(
				"%s: %s is a symlink, which %s does not follow without MOSQUITTO_UNSAFE_ALLOW_SYMLINKS: %s; set that variable in the broker's environment, or name the file itself",
				opt, path, who, what)})
		}
	}
	for _, l := range r.Listeners {
		check(l.Security.ACLFile, l.Security.ACLFilePos, "acl_file")
		check(l.Security.PasswordFile, l.Security.PasswordFilePos, "password_file")
	}
	return ds
}

// ErrSymlinkedAuthFile is the Kind of SymlinkedAuthFiles' diagnostics.
var ErrSymlinkedAuthFile = errors.New("ACL or password file is a symlink")

// IsSymlinkWarning reports whether d is one of SymlinkedAuthFiles'.
func IsSymlinkWarning(d Diagnostic) bool { return errors.Is(d.Kind, ErrSymlinkedAuthFile) }
