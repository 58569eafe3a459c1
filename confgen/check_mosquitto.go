package confgen

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

// CheckMosquitto is what `mqttctl config check --target mosquitto` and
// `mqttctl reload mosquitto` report for a config mosquitto is to load:
// Resolve's diagnostics, then every file problem (CheckMosquittoFiles) that
// is not at a line already reported as an error.
func (c *Config) CheckMosquitto() (*Resolved, []Diagnostic) {
	r, ds := c.Resolve()
	return r, WithFileErrors(ds, CheckMosquittoFiles(r))
}

// WithFileErrors appends errs to ds as diagnostics, leaving out one at a
// line ds reports as an error already.
func WithFileErrors(ds []Diagnostic, errs []error) []Diagnostic {
	out := ds
	for _, e := range errs {
		d := DiagnosticOf(e)
		if slices.ContainsFunc(ds, func(o Diagnostic) bool { return !o.Warning && o.Pos == d.Pos }) {
			continue // the same line is reported already
		}
		out = append(out, d)
	}
	return out
}

// CheckMosquittoFiles is CheckFilesReadable plus what mosquitto does with
// the ACL and password files it reads at start and on SIGHUP: a line it
// cannot parse stops it at start and, in 2.1, makes it quit on SIGHUP.
// Each problem is at the line of the file, behind the option that names it.
func CheckMosquittoFiles(r *Resolved) []error {
	errs := CheckFilesReadable(r)
	bad := map[string]bool{}
	for _, e := range errs {
		var ce *ConfigError
		if errors.As(e, &ce) {
			bad[ce.Pos.String()] = true
		}
	}
	seen := map[string]bool{}
	for _, l := range r.Listeners {
		if t := l.TLS; t != nil {
			errs = append(errs, checkTLSFiles(t, l.OptionPos, bad, seen)...)
		}
		s := l.Security
		if p := s.ACLFile; p != "" && !seen[p] && !bad[s.ACLFilePos.String()] {
			seen[p] = true
			if _, err := ReadACL(p); err != nil {
				errs = append(errs, &ConfigError{Pos: s.ACLFilePos, Msg: "acl_file", Err: err})
			}
		}
		if p := s.PasswordFile; p != "" && !seen[p] && !bad[s.PasswordFilePos.String()] {
			seen[p] = true
			pf, err := ReadPasswordFile(p)
			if err != nil {
				errs = append(errs, &ConfigError{Pos: s.PasswordFilePos, Msg: "password_file", Err: err})
				continue
			}
			first := map[string]int{}
			for _, pl := range pf.Lines {
				if pl.User != "" {
					if n, dup := first[pl.User]; dup {
						errs = append(errs, &ConfigError{Pos: s.PasswordFilePos, Msg: "password_file",
							Err: fmt.Errorf("%s:%d: user %q again (first on line %d): mosquitto 2.1 refuses the file and quits on it on SIGHUP; delete one line (mqttctl passwd delete, then add)", p, pl.Line, pl.User, n)})
					} else {
						first[pl.User] = pl.Line
					}
				}
				switch {
				case errors.Is(pl.Err, ErrEmptyUsername):
					errs = append(errs, &ConfigError{Pos: s.PasswordFilePos, Msg: "password_file", Err: fmt.Errorf("%s:%d: %w", p, pl.Line, pl.Err)})
				case pl.Err != nil:
					errs = append(errs, &ConfigError{Pos: s.PasswordFilePos, Msg: "password_file",
						Err: fmt.Errorf("%s:%d: user %q: unusable hash: %v (mosquitto refuses the file: set the password again with mqttctl passwd add)", p, pl.Line, pl.User, pl.Err)})
				}
			}
		}
	}
	return errs
}

// checkTLSFiles loads a listener's files as mosquitto does on start and on
// SIGHUP, where 2.1 quits on a certificate that does not match its key: the
// pair, the CA file and the CRL.
func checkTLSFiles(t *TLS, pos map[string]Pos, bad, seen map[string]bool) []error {
	var errs []error
	fail := func(opt string, err error) { errs = append(errs, &ConfigError{Pos: pos[opt], Msg: opt, Err: err}) }
	if t.CertFile != "" && t.KeyFile != "" && !bad[pos["certfile"].String()] && !bad[pos["keyfile"].String()] && !seen[t.CertFile+"\x00"+t.KeyFile] {
		seen[t.CertFile+"\x00"+t.KeyFile] = true
		if _, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile); err != nil {
			fail("certfile", fmt.Errorf("%s with keyfile %s: %v (mosquitto refuses the pair; 2.1 quits on it on SIGHUP)", t.CertFile, t.KeyFile, err))
		}
	}
	if p := t.CAFile; p != "" && !bad[pos["cafile"].String()] && !seen[p] {
		seen[p] = true
		if err := pemHas(p, "CERTIFICATE", func(der []byte) error { _, err := x509.ParseCertificate(der); return err }); err != nil {
			fail("cafile", err)
		}
	}
	if p := t.CRLFile; p != "" && !bad[pos["crlfile"].String()] && !seen[p] {
		seen[p] = true
		if err := pemHas(p, "X509 CRL", func(der []byte) error { _, err := x509.ParseRevocationList(der); return err }); err != nil {
			fail("crlfile", err)
		}
	}
	return errs
}

// pemHas checks that a PEM file holds at least one block of kind, and that
// each such block parses.
func pemHas(path, kind string, parse func([]byte) error) error {
	data, err := fsx.ReadRegular(path, fsx.MaxEditSize)
	if err != nil {
		return err
	}
	n := 0
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != kind {
			continue
		}
		n++
		if err := parse(b.Bytes); err != nil {
			return fmt.Errorf("%s: %s %d: %v", path, kind, n, err)
		}
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM %s", path, kind)
	}
	return nil
}
