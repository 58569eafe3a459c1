package confgen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// MosquittoTarget is the mosquitto version a config is written for or
// checked against.
type MosquittoTarget string

const (
	// Mosquitto20 is mosquitto 2.0 (Debian 12 ships 2.0.11).
	Mosquitto20 MosquittoTarget = "2.0"
	// Mosquitto21 is mosquitto 2.1 (2.1.0 released 2026-01-29): password
	// and ACL files through its password-file and acl-file plugins, no
	// per_listener_settings, websockets_origin.
	Mosquitto21 MosquittoTarget = "2.1"
)

// ErrUnknownTarget is the kind of error for a mosquitto version mqttctl
// does not write or check configs for.
var ErrUnknownTarget = errors.New("mqttctl writes and checks configs for mosquitto 2.0 and 2.1")

// ParseMosquittoTarget reads "2.0" or "2.1" (or a release of either, such
// as 2.1.2).
func ParseMosquittoTarget(s string) (MosquittoTarget, error) {
	switch t := MosquittoTarget(majorMinor(s)); t {
	case Mosquitto20, Mosquitto21:
		return t, nil
	}
	return "", fmt.Errorf("mosquitto version %q: %w: use 2.0 or 2.1", s, ErrUnknownTarget)
}

func majorMinor(v string) string {
	parts := strings.Split(v, ".")
	if len(parts) < 2 || len(parts) > 3 {
		return ""
	}
	for _, p := range parts {
		if _, err := strconv.Atoi(p); err != nil {
			return ""
		}
	}
	return parts[0] + "." + parts[1]
}

var mosquittoVersionRe = regexp.MustCompile(`mosquitto version ([0-9]+\.[0-9]+(\.[0-9]+)?)`)

// MosquittoVersion runs `bin -h` and returns the version it reports
// ("2.1.2").
func MosquittoVersion(ctx context.Context, bin string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	// mosquitto -h exits with status 3 after its help: only the text counts.
	out, _ := exec.CommandContext(ctx, bin, "-h").CombinedOutput()
	m := mosquittoVersionRe.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s -h does not report a mosquitto version", bin)
	}
	return string(m[1]), nil
}

// DetectMosquittoTarget is the version of the mosquitto on PATH, or 2.0
// where there is none. It says where the target came from ("mosquitto
// 2.1.2 at /usr/sbin/mosquitto", "no mosquitto on PATH").
func DetectMosquittoTarget(ctx context.Context) (MosquittoTarget, string, error) {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return Mosquitto20, "no mosquitto on PATH", nil
	}
	v, err := MosquittoVersion(ctx, bin)
	if err != nil {
		return "", "", err
	}
	t, err := ParseMosquittoTarget(v)
	if err != nil {
		return "", "", fmt.Errorf("%s is mosquitto %s: %w", bin, v, ErrUnknownTarget)
	}
	return t, "mosquitto " + v + " at " + bin, nil
}

// Plugin files of mosquitto 2.1 that read the files password_file and
// acl_file named in 2.0.
const (
	PasswordFilePlugin = "mosquitto_password_file.so"
	ACLFilePlugin      = "mosquitto_acl_file.so"
)

// FindMosquittoPluginDir returns the directory that holds mosquitto 2.1's
// plugins when it is beside the mosquitto on PATH (BIN/../lib, as `make
// install` and the release build lay them out), else "": a config then
// names the plugin by its file name alone, which the dynamic loader finds
// in the system's library path (Debian: /usr/lib/<arch>-linux-gnu).
func FindMosquittoPluginDir() string {
	bin, err := exec.LookPath("mosquitto")
	if err != nil {
		return ""
	}
	if real, err := filepath.EvalSymlinks(bin); err == nil {
		bin = real
	}
	dir, err := filepath.Abs(filepath.Join(filepath.Dir(bin), "..", "lib"))
	if err != nil || !fileExists(filepath.Join(dir, PasswordFilePlugin)) {
		return ""
	}
	return dir
}

// pluginPath is where a config loads plugin from: in dir, or by name.
func pluginPath(dir, plugin string) string {
	if dir == "" {
		return plugin
	}
	return filepath.Join(dir, plugin)
}

// RestrictedFiles are the files mosquitto 2.1 opens with its ownership
// check (password and ACL files): it warns, and says future versions will
// refuse them, unless each is owned by the user and group it runs as and
// has no permission for others.
func (r *Resolved) RestrictedFiles() []string {
	var out []string
	for _, l := range r.Listeners {
		for _, f := range []string{l.Security.PasswordFile, l.Security.ACLFile} {
			if f != "" && !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}

// GiveRestrictedFiles gives the files mosquitto 2.1 checks the ownership
// of (RestrictedFiles) to username and its group, without permissions for
// others: what mosquitto 2.1 wants when started as root (it drops to that
// user before it reads them). It needs to run as root; it returns one line
// per change.
func GiveRestrictedFiles(r *Resolved, username string) ([]string, error) {
	u, err := user.Lookup(username)
	if err != nil {
		return nil, fmt.Errorf("user %s: %w", username, err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	var done []string
	for _, f := range r.RestrictedFiles() {
		st, err := os.Stat(f)
		if err != nil {
			return done, fmt.Errorf("give %s to %s: %w", f, username, err)
		}
		if err := os.Chown(f, uid, gid); err != nil {
			return done, fmt.Errorf("give %s to %s: %w", f, username, err)
		}
		mode := st.Mode().Perm() &^ 0o007
		if err := os.Chmod(f, mode); err != nil {
			return done, fmt.Errorf("chmod %s: %w", f, err)
		}
		done = append(done, fmt.Sprintf("%s: owner %s, group %s, mode %04o", f, username, groupName(gid), mode))
	}
	return done, nil
}

func groupName(gid int) string {
	if g, err := user.LookupGroupId(strconv.Itoa(gid)); err == nil {
		return g.Name
	}
	return strconv.Itoa(gid)
}

// RestrictedFileProblems says, for mosquitto 2.1 running as this process's
// user, what to change about each file it checks the ownership of (one
// command per problem; none when all is as it wants).
func RestrictedFileProblems(r *Resolved) []string {
	var out []string
	for _, f := range r.RestrictedFiles() {
		st, err := os.Stat(f)
		if err != nil {
			continue // CheckFilesReadable reports it
		}
		if uid, gid, ok := fsx.Owner(st); ok && (uid != os.Geteuid() || gid != os.Getegid()) {
			out = append(out, fmt.Sprintf("chown %d:%d %s", os.Geteuid(), os.Getegid(), f))
		}
		if st.Mode().Perm()&0o007 != 0 {
			out = append(out, "chmod o-rwx "+f)
		}
	}
	return out
}

// DebianPIDFile is the pid_file of Debian's mosquitto.conf: systemd makes
// /run/mosquitto for the mosquitto account before it starts the broker.
const DebianPIDFile = "/run/mosquitto/mosquitto.pid"

// MosquittoPIDFile is the pid_file a config written to out gets, so that
// `mqttctl reload mosquitto -c` finds the broker: "" when mainConf (Debian's
// /etc/mosquitto/mosquitto.conf) includes out's directory and names a
// pid_file itself (mosquitto refuses a second one); as root, Debian's;
// otherwise mosquitto.pid beside out (a broker run as this user can write
// there).
func MosquittoPIDFile(out, mainConf string, root bool) (string, error) {
	dir := "."
	if out != "" && out != "-" {
		dir = filepath.Dir(out)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if data, err := os.ReadFile(mainConf); err == nil {
		if c, err := Parse(data, mainConf); err == nil {
			_, hasPID := c.Get("pid_file")
			for _, d := range c.Global {
				if d.Key == "include_dir" && filepath.Clean(d.Value) == dir && hasPID {
					return "", nil
				}
			}
		}
	}
	if root {
		return DebianPIDFile, nil
	}
	return filepath.Join(dir, "mosquitto.pid"), nil
}

// MakePIDDir makes the directory of pidFile, for username when it is set
// (as root), as Debian's unit does for /run/mosquitto: mosquitto writes its
// pid file after it drops to that user. It returns "" when the directory
// exists already, else one line saying what it made.
func MakePIDDir(pidFile, username string) (string, error) {
	dir := filepath.Dir(pidFile)
	if _, err := os.Stat(dir); err == nil {
		return "", nil
	}
	uid := -1
	if username != "" {
		u, err := user.Lookup(username)
		if err != nil {
			return "", fmt.Errorf("user %s: %w", username, err)
		}
		uid, _ = strconv.Atoi(u.Uid)
	}
	if err := os.MkdirAll(dir, 0o740); err != nil {
		return "", fmt.Errorf("pid file directory: %w", err)
	}
	if err := os.Chown(dir, uid, -1); err != nil {
		return "", fmt.Errorf("pid file directory: %w", err)
	}
	if username == "" {
		return fmt.Sprintf("%s/: mode 0740 (for pid_file)", dir), nil
	}
	return fmt.Sprintf("%s/: owner %s, mode 0740 (for pid_file)", dir, username), nil
}

// TargetFiles is what PrepareTargetFiles did and what is left to do.
type TargetFiles struct {
	Changes  []string // one line per file or directory changed
	Commands []string // shell commands left for the operator, each with why
}

// PrepareTargetFiles does for the files of a config written for o.Target
// what that version wants beyond read access: the directory of o.PIDFile
// (when makeDirs), and, for 2.1, the password and ACL files given to owner
// (as root: GiveRestrictedFiles) or, without an owner, the commands that
// would make 2.1 stop warning about them (RestrictedFileProblems).
func PrepareTargetFiles(o MosquittoOptions, r *Resolved, owner string, makeDirs bool) (TargetFiles, error) {
	var tf TargetFiles
	if o.PIDFile != "" && makeDirs {
		made, err := MakePIDDir(o.PIDFile, owner)
		if err != nil {
			return tf, err
		}
		if made != "" {
			tf.Changes = append(tf.Changes, made)
		}
	}
	if o.Target != Mosquitto21 {
		return tf, nil
	}
	if owner != "" {
		given, err := GiveRestrictedFiles(r, owner)
		tf.Changes = append(tf.Changes, given...)
		return tf, err
	}
	for _, p := range RestrictedFileProblems(r) {
		tf.Commands = append(tf.Commands, p+"   # mosquitto 2.1 warns about a password or ACL file others can read or it does not own")
	}
	return tf, nil
}
