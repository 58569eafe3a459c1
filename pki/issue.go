package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

type leafRequest struct {
	profile   Profile
	name      string
	cn        string
	hosts     Hosts
	org       string
	keyType   KeyType
	prefix    string // claim only
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
	case p == ProfileBootstrap:
		return pair{filepath.Join(BootstrapDir, name+".crt"), filepath.Join(BootstrapDir, name+".key")}
	case p == ProfileClaim:
		return pair{filepath.Join(ClaimDir, name+".crt"), filepath.Join(ClaimDir, name+".key")}
	default:
		return pair{filepath.Join(ServersDir, name+".crt"), filepath.Join(ServersDir, name+".key")}
	}
}

// leaf issues (or keeps) one leaf certificate and key.
func (s *state) leaf(r leafRequest) error {
	if isPrev(r.name + ".crt") {
		return fmt.Errorf("name %q: names ending in %q are kept for the certificates renew replaces; choose another name", r.name, prevSuffix)
	}
	p := leafPaths(r.profile, r.name)
	what := string(r.profile) + " certificate"
	ok, err := s.exists(p, r.force)
	if err != nil {
		return err
	}
	if ok && !r.force {
		s.rep.add("kept", what, s.d.path(p.cert), "")
		if !r.profile.namedByCN() {
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
	case ProfileBootstrap:
		subj.CommonName = r.name
		subj.OrganizationalUnit = []string{BootstrapOU}
	case ProfileClaim:
		subj.CommonName = r.name
		subj.OrganizationalUnit = []string{ClaimOU}
	default:
		subj.OrganizationalUnit = []string{ServerOU}
	}
	if !r.profile.namedByCN() {
		switch {
		case r.cn != "":
			subj.CommonName = r.cn
		case r.profile == ProfileBridge:
			// A bridge logs in to the remote broker with its CN
			// (use_identity_as_username): its name, as for a client; its
			// hosts are in the SANs.
			subj.CommonName = r.name
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
	if r.profile == ProfileClient || r.profile == ProfileBridge {
		if err := s.checkIdentityFree(subj.CommonName, p.cert, r.force); err != nil {
			return err
		}
	}
	if r.profile == ProfileClient && !r.force {
		if err := s.checkNewClientName(r.name, p.cert); err != nil {
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
	cert, err := iss.Sign(Template{Profile: r.profile, Subject: subj, Hosts: r.hosts, PublicKey: key.Public(), NotBefore: nb, NotAfter: na, ClaimPrefix: r.prefix})
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
	if r.prefix != "" {
		detail += ", provisions names starting " + r.prefix
	}
	if !r.profile.namedByCN() {
		detail = strings.Join(Names(cert), ", ")
	}
	s.rep.add(verb, what, s.d.path(p.cert), detail)
	return nil
}

// warnMissingHosts notes hosts asked for that a kept certificate lacks.
func (s *state) warnMissingHosts(rel string, r leafRequest) {
	data, err := readFile(s.d.path(rel))
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
	// ClaimPrefix: a claim certificate may provision, without a token,
	// device names that start with it.
	ClaimPrefix string
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
	warn, err := leafDays(o.Days, o.Force)
	if err != nil {
		return nil, err
	}
	if err := ident.ValidateNew(o.Name); err != nil {
		return nil, fmt.Errorf("%s name: %w", o.Profile, err)
	}
	if o.ClaimPrefix != "" && o.Profile != ProfileClaim {
		return nil, fmt.Errorf("a prefix is for a claim certificate (the device names it may provision), not a %s one", o.Profile)
	}
	if err := checkClaimPrefix(o.ClaimPrefix); err != nil {
		return nil, err
	}
	var hosts Hosts
	if !o.Profile.namedByCN() {
		args := o.Hosts
		if len(args) == 0 {
			if _, err := parseHosts([]string{o.Name}); err != nil || o.Name == "server" {
				return nil, errs.New(fmt.Sprintf("a %s certificate needs its names (DNS names or IP addresses, e.g. broker.example.com, 192.0.2.10)", o.Profile), ErrNeedsHosts)
			}
			args = []string{o.Name}
		}
		if hosts, err = parseHosts(args); err != nil {
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
	defer s.end()
	p := leafPaths(o.Profile, o.Name)
	if ok, err := s.exists(p, o.Force); err != nil {
		return nil, err
	} else if ok && !o.Force {
		return nil, errs.Wrap(fsx.ErrExists, fmt.Sprintf("%s already exists", d.path(p.cert)), ErrNeedsForce)
	}
	err = s.leaf(leafRequest{profile: o.Profile, name: o.Name, cn: o.CN, hosts: hosts, org: orgOf(s.root, DefaultOrg),
		keyType: o.KeyType, prefix: o.ClaimPrefix, days: o.Days, force: o.Force, notBefore: o.NotBefore, notAfter: o.NotAfter})
	if err != nil {
		return nil, err
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	return s.rep, nil
}

// checkNewClientName refuses, as a batch does at its line, a client name
// that has an unused enrolment token (the device would enrol into a
// refusal once the name has a certificate) or that differs only in case
// from a certificate the index has (their files would be one file on a
// case-insensitive file system). Force overrides both.
func (s *state) checkNewClientName(name, certPath string) error {
	tf, err := s.d.loadTokens()
	if err != nil {
		return err
	}
	now := s.d.now()
	if i := tf.unused(name, now); i >= 0 {
		return errs.New(fmt.Sprintf("%s has an unused enrolment token (until %s): the device would be refused when it enrols; revoke the token first (mqttctl enroll token revoke %s%s)",
			name, tf.Tokens[i].Expires.Format(time.RFC3339), explain.ShellWord(name), pkiFlag(s.d.Path)), ErrNeedsForce)
	}
	want := filepath.ToSlash(certPath)
	for _, e := range s.idx.Certificates {
		if got := slot(e.Cert); got != want && foldName(got) == foldName(want) {
			return errs.New(fmt.Sprintf("%s differs only in case from %s (%s): their files would be one file on a case-insensitive file system (a FAT USB stick, macOS); choose another name", name, e.Name, e.Cert), ErrNeedsForce)
		}
	}
	return nil
}

// namedByCN reports whether the profile's certificates are named by their
// CN (an identity), not by host names.
func (p Profile) namedByCN() bool {
	return p == ProfileClient || p == ProfileBootstrap || p == ProfileClaim
}
