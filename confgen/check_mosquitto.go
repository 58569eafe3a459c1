package confgen

import (
	"errors"
	"fmt"
	"slices"
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
			for _, pl := range pf.Lines {
				if pl.Err != nil {
					errs = append(errs, &ConfigError{Pos: s.PasswordFilePos, Msg: "password_file",
						Err: fmt.Errorf("%s:%d: user %q: unusable hash: %v (mosquitto refuses the file: set the password again with mqttctl passwd add)", p, pl.Line, pl.User, pl.Err)})
				}
			}
		}
	}
	return errs
}
