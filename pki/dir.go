package pki

import (
	"crypto"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
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
	ServersDir           = "servers"
)

// Subject organisational units keep CA, broker and client subjects distinct
// even when a client is named like a host.
const (
	ServerOU = "MQTT Broker"
	ClientOU = "MQTT Clients"
	BridgeOU = "MQTT Bridge"
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
		if a.Verb == "created" || a.Verb == "issued" || a.Verb == "replaced" {
			return true
		}
	}
	return false
}

// InitOptions configures Dir.Init.
type InitOptions struct {
	KeyType      KeyType
	Days         int      // leaf validity; 0 means DefaultLeafDays
	CADays       int      // root validity; 0 means DefaultCADays
	Org          string   // subject O; "" means DefaultOrg
	CAName       string   // root CN; "" means "<Org> Root CA"
	Hosts        []string // server names; empty means DefaultHosts()
	Clients      []string // client names (CN = MQTT identity)
	Intermediate bool     // add an intermediate CA that signs the leaves
	Force        bool     // replace existing leaf keys and certificates
	// CAKeyPassword, when non-nil, encrypts new CA keys (root and
	// intermediate). It must not be empty.
	CAKeyPassword []byte
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
}

// begin opens the directory, loads its CAs and records the given warnings
// (empty ones are skipped). The caller defers s.txn.Abort().
func (d *Dir) begin(warnings ...string) (*state, error) {
	s, err := d.open()
	if err != nil {
		return nil, err
	}
	if err := s.loadCAs(); err != nil {
		return nil, err
	}
	for _, w := range warnings {
		if w != "" {
			s.rep.warn("%s", w)
		}
	}
	return s, nil
}

func (d *Dir) open() (*state, error) {
	if st, err := os.Stat(d.Path); err == nil && !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", d.Path)
	}
	idx, err := LoadIndex(d.Path)
	if err != nil {
		return nil, err
	}
	s := &state{d: d, idx: idx, rep: &Report{}, keyPaths: map[*x509.Certificate]string{}}
	if idx.Rebuilt {
		s.rep.warn("%s was missing: rebuilt it from the %d certificates on disk (revocations recorded only in the old index are lost)", d.path(IndexFile), len(idx.Certificates))
	}
	return s, nil
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
	data, err := os.ReadFile(s.d.path(p.cert))
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
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	var pw []byte
	if IsEncryptedKey(data) {
		if s.d.CAPassword == nil {
			return nil, fmt.Errorf("%s: %w", path, ErrKeyEncrypted)
		}
		if pw, err = s.d.CAPassword(); err != nil {
			return nil, fmt.Errorf("CA key password: %w", err)
		}
	}
	k, err := ParseKey(data, path, pw)
	if err != nil {
		return nil, err
	}
	if !KeyMatches(k, c.PublicKey) {
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
			// A CA pair cannot be reissued: nothing but a restore helps.
			return fmt.Errorf("%w; a CA's key cannot be made again: restore the missing file from a backup", err)
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
	pemKey, err := MarshalKey(k, password)
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
	if len(s.txn.Files()) == 0 && !s.idx.Rebuilt {
		return nil
	}
	data, err := s.idx.Marshal()
	if err != nil {
		s.txn.Abort()
		return err
	}
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

// noCA is the one "no CA" error.
func noCA(dir string) error {
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
		if e.Subject == name && e.Cert != filepath.ToSlash(certPath) && e.Status != "revoked" && s.d.now().Before(e.NotAfter) {
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
		if e.Profile != ProfileClient && e.Profile != ProfileBridge || e.Cert == filepath.ToSlash(certPath) ||
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

// Init creates or completes a pki directory: a root CA (reused when it
// exists), an optional intermediate, the default server certificate and the
// named clients. Existing files are kept unless o.Force replaces leaves; the
// CA is never replaced. Nothing is written when everything exists.
func (d *Dir) Init(o InitOptions) (*Report, error) {
	if o.KeyType == "" {
		o.KeyType = DefaultKeyType
	}
	if _, err := ParseKeyType(string(o.KeyType)); err != nil {
		return nil, err
	}
	if o.Org == "" {
		o.Org = DefaultOrg
	}
	if o.CAName == "" {
		o.CAName = o.Org + " Root CA"
	}
	if o.CADays == 0 {
		o.CADays = DefaultCADays
	}
	if err := ValidityDays("the CA", o.CADays); err != nil {
		return nil, err
	}
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	leafWarn, err := LeafDays(o.Days, o.Force)
	if err != nil {
		return nil, err
	}
	hostArgs := o.Hosts
	if len(hostArgs) == 0 {
		hostArgs = DefaultHosts()
	}
	hosts, err := ParseHosts(hostArgs)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range o.Clients {
		if err := ident.Validate(c); err != nil {
			return nil, err
		}
		if seen[c] {
			return nil, fmt.Errorf("client %q is given twice", c)
		}
		seen[c] = true
	}
	if o.CAKeyPassword != nil && len(o.CAKeyPassword) == 0 {
		return nil, errors.New("the CA key password is empty: give a non-empty password or none")
	}
	dirWarn, err := checkDirSafe(d.Path)
	if err != nil {
		return nil, err
	}
	if err := fsx.MkdirPrivate(d.Path); err != nil {
		return nil, err
	}
	s, err := d.begin(leafWarn, o.KeyType.Warning(), dirWarn)
	if err != nil {
		return nil, err
	}
	defer s.txn.Abort()

	if s.root != nil {
		s.rep.add("reused", "root CA", d.path(RootCertFile), s.root.Subject.CommonName)
		if o.CAKeyPassword != nil && s.inter == nil && !o.Intermediate {
			s.rep.warn("the existing CA key %s is kept as it is; a CA key password only applies to new CA keys", d.path(RootKeyFile))
		}
	} else {
		if s.inter != nil {
			return nil, fmt.Errorf("%s exists without a root CA (%s): restore the root", d.path(IntermediateCertFile), d.path(RootCertFile))
		}
		key, err := GenerateKey(o.KeyType)
		if err != nil {
			return nil, err
		}
		nb, _ := s.validity(0)
		root, err := SelfSign(Template{
			Profile:   ProfileRoot,
			Subject:   pkix.Name{CommonName: o.CAName, Organization: []string{o.Org}},
			NotBefore: nb,
			NotAfter:  nb.Add(clockSkew + time.Duration(o.CADays)*24*time.Hour),
		}, key)
		if err != nil {
			return nil, err
		}
		if err := s.stageKey(RootKeyFile, key, o.CAKeyPassword, false); err != nil {
			return nil, err
		}
		if err := s.stageCert(RootCertFile, false, root); err != nil {
			return nil, err
		}
		s.root, s.rootK = root, key
		s.idx.Put("ca", ProfileRoot, root, RootCertFile, RootKeyFile)
		s.rep.add("created", "root CA", d.path(RootCertFile), root.Subject.CommonName)
	}

	if s.inter != nil {
		s.rep.add("reused", "intermediate CA", d.path(IntermediateCertFile), s.inter.Subject.CommonName)
	} else if o.Intermediate {
		if s.rootK == nil {
			if s.rootK, err = s.caKey(s.root); err != nil {
				return nil, err
			}
		}
		key, err := GenerateKey(o.KeyType)
		if err != nil {
			return nil, err
		}
		nb, na := s.validity(DefaultIntermediateDays)
		iss := &Issuer{Cert: s.root, Key: s.rootK}
		subj := pkix.Name{CommonName: orgOf(s.root, o.Org) + " Intermediate CA", Organization: []string{orgOf(s.root, o.Org)}}
		inter, err := iss.Sign(Template{Profile: ProfileIntermediate, Subject: subj, PublicKey: key.Public(), NotBefore: nb, NotAfter: na})
		if err != nil {
			return nil, err
		}
		if err := s.stageKey(IntermediateKeyFile, key, o.CAKeyPassword, false); err != nil {
			return nil, err
		}
		if err := s.stageCert(IntermediateCertFile, false, inter); err != nil {
			return nil, err
		}
		s.inter, s.interK = inter, key
		s.idx.Put("intermediate", ProfileIntermediate, inter, IntermediateCertFile, IntermediateKeyFile)
		s.rep.add("created", "intermediate CA", d.path(IntermediateCertFile), inter.Subject.CommonName)
	}

	org := orgOf(s.root, o.Org)
	if err := s.leaf(leafRequest{profile: ProfileServer, name: "server", hosts: hosts, org: org, keyType: o.KeyType, days: o.Days, force: o.Force}); err != nil {
		return nil, err
	}
	for _, c := range o.Clients {
		if err := s.leaf(leafRequest{profile: ProfileClient, name: c, org: org, keyType: o.KeyType, days: o.Days, force: o.Force}); err != nil {
			return nil, err
		}
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	return s.rep, nil
}

// ErrUnsafeDir is wrapped by the error for a pki directory that others
// can write to (or whose parent they can write to): they could replace the
// CA key or certificate.
var ErrUnsafeDir = errors.New("others can write where the CA key would be")

// checkDirSafe refuses a pki directory that others can write to, or whose
// parent directories someone else could use to swap it: a world-writable
// parent without the sticky bit, or a group-writable one the user owns.
// Others merely able to enter or read the directory is a warning (group
// access is what mqttctl grants the broker on purpose).
func checkDirSafe(path string) (warning string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	if st, err := os.Stat(abs); err == nil && st.IsDir() {
		m := st.Mode().Perm()
		if m&0o022 != 0 {
			return "", errs.New(fmt.Sprintf("directory %s has mode %04o, so others can replace the CA key: chmod 700 %s", path, m, path), ErrUnsafeDir)
		}
		if m&0o007 != 0 {
			warning = fmt.Sprintf("directory %s has mode %04o, which lets every user in; chmod 700 %s keeps them out", path, m, path)
		}
	}
	for dir := filepath.Dir(abs); ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err == nil {
			m := st.Mode()
			uid, _, _ := fsx.Owner(st)
			sticky := m&os.ModeSticky != 0
			if !sticky && (m.Perm()&0o002 != 0 || m.Perm()&0o020 != 0 && uid == os.Geteuid()) {
				return "", errs.New(fmt.Sprintf("%s (a parent of %s) has mode %04o, so others can rename or replace the pki directory: use a directory only you can write to, or chmod go-w %s",
					dir, path, m.Perm(), dir), ErrUnsafeDir)
			}
		}
		if dir == filepath.Dir(dir) {
			break
		}
	}
	return warning, nil
}

// orgOf returns the CA's organisation, or def.
func orgOf(ca *x509.Certificate, def string) string {
	if ca != nil && len(ca.Subject.Organization) > 0 {
		return ca.Subject.Organization[0]
	}
	return def
}

type leafRequest struct {
	profile   Profile
	name      string
	cn        string
	hosts     Hosts
	org       string
	keyType   KeyType
	days      int
	force     bool
	notBefore time.Time
	notAfter  time.Time
}

// leafPaths returns where a leaf's files go, relative to the directory.
func leafPaths(p Profile, name string) pair {
	switch {
	case p == ProfileServer && name == "server":
		return pair{ServerCertFile, ServerKeyFile}
	case p == ProfileClient:
		return pair{filepath.Join(ClientsDir, name+".crt"), filepath.Join(ClientsDir, name+".key")}
	default:
		return pair{filepath.Join(ServersDir, name+".crt"), filepath.Join(ServersDir, name+".key")}
	}
}

// leaf issues (or keeps) one leaf certificate and key.
func (s *state) leaf(r leafRequest) error {
	p := leafPaths(r.profile, r.name)
	what := string(r.profile) + " certificate"
	ok, err := s.exists(p, r.force)
	if err != nil {
		return err
	}
	if ok && !r.force {
		s.rep.add("kept", what, s.d.path(p.cert), "")
		if r.profile != ProfileClient {
			s.warnMissingHosts(p.cert, r)
		}
		return nil
	}
	subj := pkix.Name{Organization: []string{r.org}}
	switch r.profile {
	case ProfileClient:
		subj.CommonName = r.name
		subj.OrganizationalUnit = []string{ClientOU}
	case ProfileBridge:
		subj.OrganizationalUnit = []string{BridgeOU}
	default:
		subj.OrganizationalUnit = []string{ServerOU}
	}
	if r.profile != ProfileClient {
		switch {
		case r.cn != "":
			subj.CommonName = r.cn
		case len(r.hosts.DNS) > 0:
			subj.CommonName = r.hosts.DNS[0]
		case len(r.hosts.IPs) > 0:
			subj.CommonName = r.hosts.IPs[0].String()
		}
	} else if r.cn != "" {
		subj.CommonName = r.cn
	}
	if err := s.checkSubjectFree(subj, p.cert); err != nil {
		return err
	}
	if r.profile == ProfileClient {
		if err := s.checkIdentityFree(subj.CommonName, p.cert, r.force); err != nil {
			return err
		}
	}
	iss, err := s.issuer()
	if err != nil {
		return err
	}
	key, err := GenerateKey(r.keyType)
	if err != nil {
		return err
	}
	nb, na := s.validity(r.days)
	if !r.notBefore.IsZero() {
		nb = r.notBefore
	}
	if !r.notAfter.IsZero() {
		na = r.notAfter
	}
	if na.After(iss.Cert.NotAfter) {
		s.rep.warn("%s would outlive its CA: it ends with the CA on %s", s.d.path(p.cert), iss.Cert.NotAfter.Format(time.DateOnly))
	}
	cert, err := iss.Sign(Template{Profile: r.profile, Subject: subj, Hosts: r.hosts, PublicKey: key.Public(), NotBefore: nb, NotAfter: na})
	if err != nil {
		return err
	}
	if dir := filepath.Dir(p.cert); dir != "." {
		if err := fsx.MkdirPrivate(s.d.path(dir)); err != nil {
			return err
		}
	}
	if err := s.stageKey(p.key, key, nil, r.force); err != nil {
		return err
	}
	if err := s.stageCert(p.cert, r.force, append([]*x509.Certificate{cert}, iss.Chain...)...); err != nil {
		return err
	}
	s.idx.Put(r.name, r.profile, cert, p.cert, p.key)
	verb := "issued"
	if ok {
		verb = "replaced"
	}
	detail := "CN=" + cert.Subject.CommonName
	if r.profile != ProfileClient {
		detail = strings.Join(Names(cert), ", ")
	}
	s.rep.add(verb, what, s.d.path(p.cert), detail)
	return nil
}

// warnMissingHosts notes hosts asked for that a kept certificate lacks.
func (s *state) warnMissingHosts(rel string, r leafRequest) {
	data, err := os.ReadFile(s.d.path(rel))
	if err != nil {
		return
	}
	certs, err := ParseCerts(data, rel)
	if err != nil {
		return
	}
	var missing []string
	for _, h := range r.hosts.All() {
		if certs[0].VerifyHostname(h) != nil {
			missing = append(missing, h)
		}
	}
	if len(missing) > 0 {
		s.rep.warn("%s was kept and does not name %s; reissue it with: %s",
			s.d.path(rel), strings.Join(missing, ", "), explain.ReissueServer(r.name, s.d.Path, r.hosts.All()))
	}
}

// IssueOptions configures Dir.Issue.
type IssueOptions struct {
	Profile Profile
	Name    string   // file name; "server" is the default server
	CN      string   // subject CN; default: the name (client) or first host
	Hosts   []string // server SANs; default for a server: the name, if a host
	KeyType KeyType
	Days    int
	Force   bool
	// NotBefore and NotAfter override the validity (for tests and
	// special cases); zero means now and now+Days.
	NotBefore, NotAfter time.Time
}

// Issue adds one leaf certificate signed by the directory's CA.
func (d *Dir) Issue(o IssueOptions) (*Report, error) {
	if _, err := ParseProfile(string(o.Profile)); err != nil {
		return nil, err
	}
	if o.KeyType == "" {
		o.KeyType = DefaultKeyType
	}
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	warn, err := LeafDays(o.Days, o.Force)
	if err != nil {
		return nil, err
	}
	if err := ident.Validate(o.Name); err != nil {
		return nil, fmt.Errorf("%s name: %w", o.Profile, err)
	}
	var hosts Hosts
	if o.Profile != ProfileClient {
		args := o.Hosts
		if len(args) == 0 {
			if _, err := ParseHosts([]string{o.Name}); err != nil || o.Name == "server" {
				return nil, errs.New(fmt.Sprintf("a %s certificate needs its names (DNS names or IP addresses, e.g. broker.example.com, 192.0.2.10)", o.Profile), ErrNeedsHosts)
			}
			args = []string{o.Name}
		}
		if hosts, err = ParseHosts(args); err != nil {
			return nil, err
		}
	} else if len(o.Hosts) > 0 {
		return nil, errs.New("host names are for server certificates; a client is named by its CN (the MQTT identity)", ErrHostsNotForClient)
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	s, err := d.begin(warn, o.KeyType.Warning())
	if err != nil {
		return nil, err
	}
	defer s.txn.Abort()
	p := leafPaths(o.Profile, o.Name)
	if ok, err := s.exists(p, o.Force); err != nil {
		return nil, err
	} else if ok && !o.Force {
		return nil, errs.Wrap(fsx.ErrExists, fmt.Sprintf("%s already exists", d.path(p.cert)), ErrNeedsForce)
	}
	err = s.leaf(leafRequest{profile: o.Profile, name: o.Name, cn: o.CN, hosts: hosts, org: orgOf(s.root, DefaultOrg),
		keyType: o.KeyType, days: o.Days, force: o.Force, notBefore: o.NotBefore, notAfter: o.NotAfter})
	if err != nil {
		return nil, err
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	return s.rep, nil
}

// LeafFiles returns the certificate and key paths of an issued leaf.
func (d *Dir) LeafFiles(p Profile, name string) (cert, key string) {
	lp := leafPaths(p, name)
	return d.path(lp.cert), d.path(lp.key)
}

// Index returns the directory's index.
func (d *Dir) Index() (*Index, error) { return LoadIndex(d.Path) }

// SortedEntries returns the index entries sorted by profile then name.
func SortedEntries(idx *Index) []Entry {
	order := map[Profile]int{ProfileRoot: 0, ProfileIntermediate: 1, ProfileServer: 2, ProfileBridge: 3, ProfileClient: 4}
	out := slices.Clone(idx.Certificates)
	slices.SortStableFunc(out, func(a, b Entry) int {
		if order[a.Profile] != order[b.Profile] {
			return order[a.Profile] - order[b.Profile]
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
