package reload

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
)

// mosquitto 2.1 opens its ACL and password files without following a
// symlink (O_NOFOLLOW) unless MOSQUITTO_UNSAFE_ALLOW_SYMLINKS is set, and
// quits when it cannot read them on SIGHUP: a Kubernetes secret (acl ->
// ..data/acl) stops it.

var versionLine = regexp.MustCompile(`mosquitto version (\d+)\.(\d+)`)

// brokerOf learns about the broker process pid what its binary prints for
// -h (run in its environment: LD_LIBRARY_PATH, ...): its version ("2.1";
// "" where that cannot be learnt), and whether MOSQUITTO_UNSAFE_ALLOW_SYMLINKS
// is in its environment.
func brokerOf(ctx context.Context, pid int) (version string, allowSymlinks bool) {
	proc := filepath.Join("/proc", strconv.Itoa(pid))
	env, err := os.ReadFile(filepath.Join(proc, "environ"))
	if err != nil {
		return "", false
	}
	for _, kv := range bytes.Split(env, []byte{0}) {
		if bytes.HasPrefix(kv, []byte("MOSQUITTO_UNSAFE_ALLOW_SYMLINKS=")) {
			allowSymlinks = true
		}
	}
	exe, err := os.Readlink(filepath.Join(proc, "exe"))
	if err != nil {
		return "", allowSymlinks
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-h")
	for _, kv := range bytes.Split(env, []byte{0}) {
		if len(kv) > 0 {
			cmd.Env = append(cmd.Env, string(kv))
		}
	}
	out, _ := cmd.CombinedOutput() // exits 3 after the usage
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return "", allowSymlinks
	}
	return string(m[1]) + "." + string(m[2]), allowSymlinks
}

// followsSymlinks reports whether a broker of version reads ACL and
// password files through symlinks: mosquitto before 2.1, or 2.1 with
// MOSQUITTO_UNSAFE_ALLOW_SYMLINKS in its environment. Where the version
// cannot be learnt, it reports true (mqttctl knows no better than before).
func followsSymlinks(version string, allow bool) bool {
	if allow || version == "" {
		return true
	}
	major, minor, _ := strings.Cut(version, ".")
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	return ma < 2 || ma == 2 && mi < 1
}

// symlinkProblems are the ACL and password files that are symlinks, for a
// broker that does not follow them: errors, since on SIGHUP it would quit.
func symlinkProblems(r *confgen.Resolved, pid int, version string) []confgen.Diagnostic {
	ds := confgen.SymlinkedAuthFiles(r, fmt.Sprintf("mosquitto %s (pid %d)", version, pid), "on SIGHUP it would quit")
	for i := range ds {
		ds[i].Warning = false
	}
	return ds
}
