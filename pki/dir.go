package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// File names inside a pki directory.
const (
	RootCertFile         = "ca.crt"
	RootKeyFile          = "ca.key"
	IntermediateCertFile = "intermediate.crt"
	IntermediateKeyFile  = "intermediate.key"
	ServerCertFile       = "server.crt"
	ServerKeyFile        = "server.key"
	ClientsDir           = "clients"
	BootstrapDir         = "bootstrap"
	ClaimDir             = "claim"
	ServersDir           = "servers"
	// JournalFile records a change that is being written (fsx.Txn.Journal):
	// while it exists, the change is completed before anything else reads
	// or writes the directory.
	JournalFile = "journal.json"
)

// Subject organisational units keep CA, broker and client subjects distinct
// even when a client is named like a host.
const (
	ServerOU = "MQTT Broker"
	ClientOU = "MQTT Clients"
	BridgeOU = "MQTT Bridge"
	// BootstrapOU marks a bootstrap certificate (ProfileBootstrap).
	BootstrapOU = "MQTT Bootstrap"
	// ClaimOU marks a claim certificate (ProfileClaim).
	ClaimOU = "MQTT Claim"
)

// DefaultOrg is the organisation put in subjects when none is given.
const DefaultOrg = "mqttctl"

// Dir is a pki directory: a root CA, an optional intermediate CA and the
// certificates they issued, recorded in index.yaml.
type Dir struct {
	Path string
	// CAPassword returns the password of an encrypted CA key. It is called
	// only when a CA key is encrypted and must be read. Nil means no password
	// is available.
	CAPassword func() ([]byte, error)
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// crash is the test hook of every write (fsx.Txn.Crash): returning true
	// stops the command there as a kill -9 would.
	crash func(step string) bool
}

func (d *Dir) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Dir) path(rel string) string { return filepath.Join(d.Path, rel) }

// Action is one thing a command did or chose not to do.
type Action struct {
	Verb   string // created, reused, kept, issued
	What   string // "root CA", "server certificate", ...
	Path   string // certificate path
	Detail string
}

// Report says what a command did, for the CLI to print.
type Report struct {
	Actions  []Action
	Warnings []string
}

func (r *Report) add(verb, what, path, detail string) {
	r.Actions = append(r.Actions, Action{Verb: verb, What: what, Path: path, Detail: detail})
}

func (r *Report) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// Changed reports whether anything was written.
func (r *Report) Changed() bool {
	for _, a := range r.Actions {
		if a.Verb == "created" || a.Verb == "issued" || a.Verb == "replaced" || a.Verb == "renewed" || a.Verb == "wrote" || a.Verb == "recorded" || a.Verb == "moved" {
			return true
		}
	}
	return false
}

// pair is a certificate and its key file, relative to the directory.
type pair struct{ cert, key string }

// state tracks one command's view of the directory.
type state struct {
	d      *Dir
	idx    *Index
	txn    fsx.Txn
	rep    *Report
	root   *x509.Certificate
	rootK  crypto.Signer
	inter  *x509.Certificate
	interK crypto.Signer
	// loaded key files (path -> key), for lazily read CA keys
	keyPaths map[*x509.Certificate]string
	unlock   func()
}

// end releases what begin took: staged files not committed are removed and
// the directory's lock is released.
func (s *state) end() {
	s.txn.Abort()
	if s.unlock != nil {
		s.unlock()
	}
}

// begin opens the directory, loads its CAs and records the given warnings
// (empty ones are skipped). It holds the directory's lock
// until the caller's deferred s.end(), so that two commands never lose each
// other's changes to the index.
func (d *Dir) begin(warnings ...string) (*state, error) {
	rep := &Report{}
	unlock, err := lockAndRecover(d, rep)
	if err != nil {
		return nil, err
	}
	s, err := d.open(rep)
	if err != nil {
		unlock()
		return nil, err
	}
	s.unlock = unlock
	if err := s.loadCAs(); err != nil {
		s.end()
		return nil, err
	}
	for _, w := range warnings {
		if w != "" {
			s.rep.warn("%s", w)
		}
	}
	return s, nil
}

// lockAndRecover takes the directory's lock and completes a change a crash
// interrupted, saying so in rep.
func lockAndRecover(d *Dir, rep *Report) (unlock func(), err error) {
	unlock, err = fsx.LockDir(d.Path)
	if err != nil {
		return nil, err
	}
	recovered, err := d.recover()
	if err != nil {
		unlock()
		return nil, err
	}
	if recovered != "" {
		rep.warn("%s", recovered)
	}
	return unlock, nil
}

func (d *Dir) open(rep *Report) (*state, error) {
	if st, err := os.Stat(d.Path); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", d.Path)
	}
	idx, err := LoadIndex(d.Path)
	if err != nil {
		return nil, err
	}
	s := &state{d: d, idx: idx, rep: rep, keyPaths: map[*x509.Certificate]string{}}
	s.txn.Journal, s.txn.Crash = d.path(JournalFile), d.crash
	if idx.Rebuilt {
		s.rep.warn("%s", idx.RebuildNote(d.path(IndexFile)))
	}
	for _, n := range idx.Notes {
		s.rep.warn("%s", n)
	}
	return s, nil
}

// recover completes a change that a command was stopped in the middle of
// (a crash, a kill -9, a power cut), from the journal it left, or removes
// the temporary files of one that was stopped before it was decided. The
// caller holds the directory's lock. It returns what it did, for the
// report ("" when there was nothing to do).
func (d *Dir) recover() (string, error) {
	done, lost, err := fsx.RecoverLost(d.path(JournalFile), func(rel string) bool { return isPrev(rel) }, d.crash)
	if err != nil {
		return "", fmt.Errorf("complete the interrupted change in %s: %w", d.Path, err)
	}
	if len(lost) > 0 {
		return "", d.lostError(len(done), lost)
	}
	if len(done) > 0 {
		return fmt.Sprintf("completed a change that was interrupted (%s recorded %d files: %s)", d.path(JournalFile), len(done), shortList(done)), nil
	}
	fsx.CleanTemps(d.Path, d.path(ClientsDir), d.path(ServersDir), d.path(BootstrapDir), d.path(ClaimDir))
	return "", nil
}

// ErrLostFiles: an interrupted change was completed, but some of its files
// had been deleted in the meantime (a batch's bundle directory removed
// before the next command ran): they exist nowhere.
var ErrLostFiles = errors.New("files of a completed change are lost")

// shortList is paths joined, the first few of a long list.
func shortList(paths []string) string {
	if len(paths) > 10 {
		// A batch's thousands of files: the first few say which change.
		return fmt.Sprintf("%s and %d more", strings.Join(paths[:5], ", "), len(paths)-5)
	}
	return strings.Join(paths, ", ")
}

// lostError says which files of a completed change (n files) are lost
// and, for a batch's bundles, which devices now hold a valid certificate
// whose key exists nowhere, and what to do. The change itself is
// complete: the index lists every certificate it issued.
func (d *Dir) lostError(n int, lost []string) error {
	idx, _ := LoadIndex(d.Path)
	var devices []string
	seen := map[string]bool{}
	for _, p := range lost {
		name := filepath.Base(filepath.Dir(p))
		if seen[name] || filepath.Base(p) == ManifestFile || idx == nil || idx.find(ClientsDir+"/"+name+".crt") == nil {
			continue
		}
		seen[name] = true
		devices = append(devices, name)
	}
	msg := fmt.Sprintf("completed a change that was interrupted (%s recorded %d files), but %d of its files were deleted before it was completed and are lost: %s",
		d.path(JournalFile), n, len(lost), shortList(lost))
	if len(devices) > 0 {
		msg += fmt.Sprintf("; the certificates of %d devices (%s) are issued and recorded in %s, but their bundles are gone and their keys exist nowhere: revoke them (%s), or issue the batch again under other names",
			len(devices), shortList(devices), IndexFile, explain.Revoke("NAME", d.Path))
	}
	return errs.New(msg, ErrLostFiles)
}

// readIndex loads the index under the directory's lock, after completing
// an interrupted change, for commands that only read it.
func (d *Dir) readIndex() (*Index, string, error) {
	unlock, err := fsx.LockDir(d.Path)
	if err != nil {
		return nil, "", err
	}
	defer unlock()
	recovered, err := d.recover()
	if err != nil {
		return nil, "", err
	}
	idx, err := LoadIndex(d.Path)
	return idx, recovered, err
}

// exists reports whether both files of p exist; an error if exactly one does.
func (s *state) exists(p pair, force bool) (bool, error) {
	c := fileExists(s.d.path(p.cert))
	k := fileExists(s.d.path(p.key))
	switch {
	case c && k:
		return true, nil
	case !c && !k:
		return false, nil
	case force:
		return false, nil
	case c:
		return false, errs.New(fmt.Sprintf("%s exists but its key %s is missing", s.d.path(p.cert), s.d.path(p.key)), ErrHalfPair)
	default:
		return false, errs.New(fmt.Sprintf("%s exists but its certificate %s is missing", s.d.path(p.key), s.d.path(p.cert)), ErrHalfPair)
	}
}

func fileExists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// readCA loads a CA certificate (the first in the file).
func (s *state) readCA(p pair) (*x509.Certificate, error) {
	data, err := readFile(s.d.path(p.cert))
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	certs, err := ParseCerts(data, s.d.path(p.cert))
	if err != nil {
		return nil, err
	}
	c := certs[0]
	if !c.IsCA {
		return nil, fmt.Errorf("%s is not a CA certificate (basicConstraints CA:FALSE)", s.d.path(p.cert))
	}
	s.keyPaths[c] = s.d.path(p.key)
	return c, nil
}

// caKey reads (once) the key of a CA certificate loaded by readCA.
func (s *state) caKey(c *x509.Certificate) (crypto.Signer, error) {
	path := s.keyPaths[c]
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	var pw []byte
	if isEncryptedKey(data) {
		if s.d.CAPassword == nil {
			return nil, fmt.Errorf("%s: %w", path, ErrKeyEncrypted)
		}
		if pw, err = s.d.CAPassword(); err != nil {
			return nil, fmt.Errorf("CA key password: %w", err)
		}
	}
	k, err := parseKey(data, path, pw)
	if err != nil {
		return nil, err
	}
	if !keyMatches(k, c.PublicKey) {
		return nil, fmt.Errorf("%s does not match its certificate: restore the right key", path)
	}
	return k, nil
}

// issuer returns the CA that signs leaves: the intermediate when there is
// one, else the root. CA keys are read only here.
func (s *state) issuer() (*Issuer, error) {
	if s.inter != nil {
		if s.interK == nil {
			k, err := s.caKey(s.inter)
			if err != nil {
				return nil, err
			}
			s.interK = k
		}
		return &Issuer{Cert: s.inter, Key: s.interK, Chain: []*x509.Certificate{s.inter}}, nil
	}
	if s.root == nil {
		return nil, noCA(s.d.Path)
	}
	if s.rootK == nil {
		k, err := s.caKey(s.root)
		if err != nil {
			return nil, err
		}
		s.rootK = k
	}
	return &Issuer{Cert: s.root, Key: s.rootK}, nil
}

// loadCAs reads the existing root and intermediate, if any.
func (s *state) loadCAs() error {
	for _, ca := range []struct {
		p   pair
		dst **x509.Certificate
	}{{pair{RootCertFile, RootKeyFile}, &s.root}, {pair{IntermediateCertFile, IntermediateKeyFile}, &s.inter}} {
		ok, err := s.exists(ca.p, false)
		if errors.Is(err, ErrHalfPair) {
			// A CA pair cannot be reissued: nothing but a restore helps
			// (not ErrHalfPair, whose hint offers to issue a new pair).
			return fmt.Errorf("%s; a CA cannot be made again in place: restore the missing file from a backup", err.Error())
		}
		if err != nil {
			return err
		}
		if ok {
			if *ca.dst, err = s.readCA(ca.p); err != nil {
				return err
			}
		}
	}
	return nil
}

// stageKey adds a new key file to the transaction.
func (s *state) stageKey(rel string, k crypto.Signer, password []byte, force bool) error {
	pemKey, err := marshalKey(k, password)
	if err != nil {
		return err
	}
	return s.txn.Add(s.d.path(rel), pemKey, 0o600, force)
}

func (s *state) stageCert(rel string, force bool, certs ...*x509.Certificate) error {
	return s.txn.Add(s.d.path(rel), EncodeCerts(certs...), 0o644, force)
}

// commit writes the index (when anything changed) and every staged file.
func (s *state) commit() error {
	if len(s.txn.Files()) == 0 && !s.idx.Rebuilt && len(s.idx.Notes) == 0 {
		return nil
	}
	data, err := s.idx.Marshal()
	if err != nil {
		s.txn.Abort()
		return err
	}
	return s.commitIndex(data)
}

// commitIndex is commit with the index already marshalled (data).
func (s *state) commitIndex(data []byte) error {
	if err := s.txn.Add(s.d.path(IndexFile), data, 0o644, true); err != nil {
		s.txn.Abort()
		return err
	}
	return s.txn.Commit()
}

func (s *state) validity(days int) (time.Time, time.Time) {
	now := s.d.now()
	return now.Add(-clockSkew), now.Add(time.Duration(days) * 24 * time.Hour)
}

// Errors a command can add its own hint to (errors.Is).
var (
	// ErrSubjectInUse: another valid certificate has the same subject.
	ErrSubjectInUse = errors.New("subject already in use")
	// ErrIdentityInUse: another valid client certificate has the same CN,
	// that is the same MQTT identity. Force overrides it.
	ErrIdentityInUse = errors.New("MQTT identity already in use")
	// ErrNoCA: the directory has no CA yet.
	ErrNoCA = errors.New("no CA")
	// ErrNeedsForce is wrapped by every refusal that the caller's Force
	// option overrides.
	ErrNeedsForce = errors.New("refused without force")
	// ErrHalfPair: a certificate without its key, or a key without its
	// certificate. Restore the missing file; Force (for leaves) issues a
	// new pair.
	ErrHalfPair = errors.New("the other file of the pair is missing")
	// ErrNeedsHosts: a server certificate without names.
	ErrNeedsHosts = errors.New("no host names")
	// ErrHostsNotForClient: host names given for a client certificate.
	ErrHostsNotForClient = errors.New("host names for a client")
)

// noCA is the one "no CA" error (a CA key without its certificate is not
// "no CA": init would refuse it).
func noCA(dir string) error {
	if fileExists(filepath.Join(dir, RootKeyFile)) {
		return fmt.Errorf("%s is missing but the CA's key %s is there: restore %s from a backup (pki init does not make a CA over an existing key)",
			filepath.Join(dir, RootCertFile), filepath.Join(dir, RootKeyFile), RootCertFile)
	}
	return errs.New(fmt.Sprintf("no CA in %s (%s is missing)", dir, filepath.Join(dir, RootCertFile)), ErrNoCA)
}

// checkSubjectFree refuses a subject that another valid certificate in the
// index (other than the one at certPath) already has.
func (s *state) checkSubjectFree(subject pkix.Name, certPath string) error {
	name := subject.String()
	for _, c := range []*x509.Certificate{s.root, s.inter} {
		if c != nil && c.Subject.String() == name {
			return errs.New(fmt.Sprintf("subject %q is the CA's own: choose another name", name), ErrSubjectInUse)
		}
	}
	for _, e := range s.idx.Certificates {
		if e.Subject == name && slot(e.Cert) != slot(filepath.ToSlash(certPath)) && e.Status != "revoked" && s.d.now().Before(e.NotAfter) {
			return errs.New(fmt.Sprintf("subject %q is already used by %s; distinct subjects avoid hard-to-diagnose TLS failures: pick another name", name, e.Cert), ErrSubjectInUse)
		}
	}
	return nil
}

// checkIdentityFree refuses a client (or bridge) certificate whose CN is
// already the identity of another valid client or bridge certificate: both
// would log in as the same MQTT user (use_identity_as_username).
func (s *state) checkIdentityFree(cn, certPath string, force bool) error {
	if force {
		return nil
	}
	for _, e := range s.idx.Certificates {
		if e.Profile != ProfileClient && e.Profile != ProfileBridge || slot(e.Cert) == slot(filepath.ToSlash(certPath)) ||
			e.Status == "revoked" || !s.d.now().Before(e.NotAfter) {
			continue
		}
		id := e.CN
		if id == "" && e.Profile == ProfileClient {
			id = e.Name
		}
		if id == cn {
			return errs.New(fmt.Sprintf("CN %q is already the MQTT identity of %s (valid until %s); a second certificate would let both log in as %q",
				cn, e.Cert, e.NotAfter.Format(time.DateOnly), cn), ErrIdentityInUse, ErrNeedsForce)
		}
	}
	return nil
}

// maxFileSize bounds every file pki reads (64 MiB: an index of some
// 100,000 certificates).
const maxFileSize = 64 << 20

// readFile reads a file of the directory: a regular file (a symbolic link
// is followed) of at most maxFileSize bytes. A pipe or device planted in
// its place is refused at once instead of hanging the command while it
// holds the directory's lock.
func readFile(path string) ([]byte, error) { return fsx.ReadRegular(path, maxFileSize) }
