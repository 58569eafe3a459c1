// Package reload makes a running mosquitto reread its files only when they
// pass the checks of `mqttctl config check --target mosquitto`: mosquitto
// notices no certificate change by itself (mosquitto#2038), and in 2.1 a bad
// ACL or password file on SIGHUP makes the broker quit.
package reload

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// Kinds of failure, matched with errors.Is.
var (
	// ErrCheck: the config or a file it names does not pass the checks;
	// nothing was sent.
	ErrCheck = errors.New("the checks failed; no signal sent, the broker keeps its old files")
	// ErrNoPID: neither the caller nor the config names a pid file.
	ErrNoPID = errors.New("no pid file: the config has no pid_file line")
	// ErrNotServed: the broker was signalled but a TLS listener still
	// serves another certificate than its certfile.
	ErrNotServed = errors.New("the broker does not serve the certificate in certfile")
)

// Options says what to reload.
type Options struct {
	Config  string        // mosquitto.conf
	PIDFile string        // "": the config's pid_file
	Confirm time.Duration // how long to wait for the new certificate; 0: 15 s (a loaded broker rereads its files slowly)
}

// Result is what Once did.
type Result struct {
	Diagnostics []confgen.Diagnostic // the checks' findings (warnings when it passed)
	PID         int                  // the process signalled
	Served      []Served             // one per TLS listener
}

// Served is what a TLS listener serves after the reload.
type Served struct {
	Listener    string // host:port dialled
	CertFile    string
	Fingerprint string // SHA-256 of the certificate in CertFile, hex
}

// CheckError is ErrCheck with the diagnostics behind it.
type CheckError struct{ Diagnostics []confgen.Diagnostic }

func (e *CheckError) Error() string {
	var lines []string
	for _, d := range e.Diagnostics {
		if !d.Warning {
			lines = append(lines, d.String())
		}
	}
	return strings.Join(lines, "\n") + "\n" + ErrCheck.Error()
}

func (e *CheckError) Unwrap() error { return ErrCheck }

// Check runs the checks of `config check --target mosquitto` on path.
func Check(path string) (*confgen.Resolved, []confgen.Diagnostic, error) {
	c, err := confgen.Load(path)
	if err != nil {
		return nil, nil, &CheckError{Diagnostics: []confgen.Diagnostic{confgen.DiagnosticOf(err)}}
	}
	r, ds := c.CheckMosquitto()
	if confgen.HasErrors(ds) {
		return r, ds, &CheckError{Diagnostics: ds}
	}
	return r, ds, nil
}

// Once checks the config, and only when it passes sends SIGHUP to the broker
// whose pid the pid file holds, then waits until each TLS listener serves
// the certificate of its certfile.
func Once(ctx context.Context, o Options) (*Result, error) {
	r, ds, err := Check(o.Config)
	res := &Result{Diagnostics: ds}
	if err != nil {
		return res, err
	}
	pidFile := o.PIDFile
	if pidFile == "" {
		pidFile = r.PIDFile
	}
	if pidFile == "" {
		return res, fmt.Errorf("%s: %w", o.Config, ErrNoPID)
	}
	pid, err := ReadPID(pidFile)
	if err != nil {
		return res, err
	}
	version, allow := brokerOf(ctx, pid)
	if v, err := confgen.ParseMosquittoTarget(version); err == nil {
		// The checks of the version that runs (2.0 stops at 2.1's options;
		// 2.1 warns of deprecated options and file ownership).
		if c, err := confgen.Load(o.Config); err == nil {
			_, ds := c.CheckMosquittoFor(v)
			// The symlink rule is decided below for this process (its
			// environment), not as a warning.
			ds = slices.DeleteFunc(ds, confgen.IsSymlinkWarning)
			res.Diagnostics = ds
			if confgen.HasErrors(ds) {
				return res, &CheckError{Diagnostics: ds}
			}
		}
	}
	if !followsSymlinks(version, allow) {
		if bad := symlinkProblems(r, pid, version); len(bad) > 0 {
			res.Diagnostics = append(res.Diagnostics, bad...)
			return res, &CheckError{Diagnostics: res.Diagnostics}
		}
	}
	res.PID = pid
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		return res, fmt.Errorf("signal mosquitto (pid %d from %s): %w", pid, pidFile, err)
	}
	wait := o.Confirm
	if wait <= 0 {
		wait = 15 * time.Second
	}
	served, err := confirm(ctx, r, wait)
	res.Served = served
	if gone := quitAfterHUP(pid, time.Second); gone != nil {
		return res, gone
	}
	return res, err
}

// ErrBrokerQuit: the broker was running when it got SIGHUP and is not
// after it: it refused a file mqttctl's checks let through.
var ErrBrokerQuit = errors.New("mosquitto quit after SIGHUP")

// quitAfterHUP watches pid for up to d after a SIGHUP (mosquitto rereads its
// files at once): an error if it exited, for a check mqttctl does not have.
func quitAfterHUP(pid int, d time.Duration) error {
	for end := time.Now().Add(d); ; time.Sleep(50 * time.Millisecond) {
		if !running(pid) {
			return fmt.Errorf("%w (pid %d): it refused a file on reload; see its log, fix the file and start it again", ErrBrokerQuit, pid)
		}
		if time.Now().After(end) {
			return nil
		}
	}
}

// running reports whether pid is a live process (not a zombie).
func running(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// pid (comm) STATE ...: Z is a zombie, an exited child not yet reaped.
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		return stat[i+2] != 'Z' && stat[i+2] != 'X'
	}
	return true
}

// ReadPID reads a pid file and checks that the process is a running
// mosquitto (a stale file may name a pid the system gave to another
// program).
func ReadPID(path string) (int, error) {
	data, err := fsx.ReadRegular(path, 64)
	if err != nil {
		return 0, fmt.Errorf("pid file: %w", err)
	}
	pid, err := parsePID(data)
	if err != nil {
		return 0, fmt.Errorf("pid file %s: %w", path, err)
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return 0, fmt.Errorf("pid file %s: process %d is not running (a stale pid file: is mosquitto running?)", path, pid)
	}
	if comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm")); err == nil {
		if name := strings.TrimSpace(string(comm)); !strings.Contains(name, "mosquitto") {
			return 0, fmt.Errorf("pid file %s: process %d is %q, not mosquitto (a stale pid file)", path, pid, name)
		}
	}
	return pid, nil
}

// parsePID reads a pid file's text: a process id above 1 (never init, never
// a process group) written as mosquitto writes it ("%d"), white space
// around it allowed.
func parsePID(data []byte) (int, error) {
	text := strings.TrimSpace(string(data))
	pid, err := strconv.Atoi(text)
	if err != nil || pid < 2 || strconv.Itoa(pid) != text { // as written: "%d"
		return 0, fmt.Errorf("%q is not a process id", text)
	}
	return pid, nil
}

// confirm dials every TLS listener until it serves the certificate in its
// certfile, for at most wait.
func confirm(ctx context.Context, r *confgen.Resolved, wait time.Duration) ([]Served, error) {
	deadline := time.Now().Add(wait)
	var out []Served
	var errs []error
	for _, l := range r.Listeners {
		if l.TLS == nil || l.TLS.CertFile == "" {
			continue
		}
		want, err := fileFingerprint(l.TLS.CertFile)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		addr := dialAddr(l)
		s := Served{Listener: addr, CertFile: l.TLS.CertFile, Fingerprint: want}
		var got string
		for {
			got, err = ServedFingerprint(ctx, addr)
			if got == want || time.Now().After(deadline) || ctx.Err() != nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		switch {
		case got == want:
			out = append(out, s)
		case err != nil:
			errs = append(errs, fmt.Errorf("listener %s: %v: %w", addr, err, ErrNotServed))
		default:
			errs = append(errs, fmt.Errorf("listener %s serves certificate SHA-256 %s after %s, %s holds %s: %w", addr, got, wait, l.TLS.CertFile, want, ErrNotServed))
		}
	}
	return out, errors.Join(errs...)
}

// dialAddr is where to reach a listener from this machine.
func dialAddr(l confgen.ListenerSpec) string {
	host := l.Bind
	switch host {
	case "", "0.0.0.0":
		host = "127.0.0.1"
	case "::":
		host = "::1"
	}
	return net.JoinHostPort(host, strconv.Itoa(l.Port))
}

// fileFingerprint is the SHA-256 of the first certificate in a PEM file.
func fileFingerprint(path string) (string, error) {
	data, err := fsx.ReadRegular(path, 1<<20)
	if err != nil {
		return "", fmt.Errorf("certfile: %w", err)
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return "", fmt.Errorf("certfile %s: no certificate in it", path)
		}
		if b.Type == "CERTIFICATE" {
			if _, err := x509.ParseCertificate(b.Bytes); err != nil {
				return "", fmt.Errorf("certfile %s: %w", path, err)
			}
			return Fingerprint(b.Bytes), nil
		}
	}
}

// Fingerprint is the hex SHA-256 of a DER certificate.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:])
}

// ServedFingerprint makes a TLS handshake with addr and returns the
// fingerprint of the certificate it presents. The certificate is taken as
// the server sends it, before a listener that wants a client certificate
// ends the handshake for lack of one.
func ServedFingerprint(ctx context.Context, addr string) (string, error) {
	var fp string
	d := tls.Dialer{Config: &tls.Config{
		InsecureSkipVerify: true, // only the fingerprint is compared
		ServerName:         "localhost",
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) > 0 {
				fp = Fingerprint(raw[0])
			}
			return nil
		},
	}}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", addr)
	if c != nil {
		c.Close()
	}
	if fp != "" {
		return fp, nil
	}
	if err == nil {
		err = errors.New("no certificate presented")
	}
	return "", err
}
