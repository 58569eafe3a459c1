package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// InitOptions configures Dir.Init.
type InitOptions struct {
	KeyType KeyType
	Days    int      // leaf validity; 0 means DefaultLeafDays
	CADays  int      // root validity; 0 means DefaultCADays
	Org     string   // subject O; "" means DefaultOrg
	CAName  string   // root CN; "" means "<Org> Root CA"
	Hosts   []string // server names; empty means defaultHosts()
	Clients []string // client names (CN = MQTT identity)
	// Nodes are the brokers of a cluster: each gets servers/NAME.crt with
	// CN NAME and its hosts (default: NAME) as names. With nodes and no
	// Hosts, the single-broker server.crt is not issued.
	Nodes        []Node
	Intermediate bool // add an intermediate CA that signs the leaves
	Force        bool // replace existing leaf keys and certificates
	// CAKeyPassword, when non-nil, encrypts new CA keys (root and
	// intermediate). It must not be empty.
	CAKeyPassword []byte
}

// IssuesServer reports whether Init issues the single broker's server.crt:
// always, unless only cluster nodes are asked for (Nodes without Hosts).
func (o InitOptions) IssuesServer() bool { return len(o.Nodes) == 0 || len(o.Hosts) > 0 }

// Node is one broker of a cluster (InitOptions.Nodes).
type Node struct {
	Name  string
	Hosts []string // DNS names or IP addresses; empty means Name
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
	if err := validityDays("the CA", o.CADays); err != nil {
		return nil, err
	}
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	leafWarn, err := leafDays(o.Days, o.Force)
	if err != nil {
		return nil, err
	}
	hostArgs := o.Hosts
	if len(hostArgs) == 0 {
		hostArgs = defaultHosts()
	}
	hosts, err := parseHosts(hostArgs)
	if err != nil {
		return nil, err
	}
	nodeHosts, err := nodeNames(o.Nodes)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, c := range o.Clients {
		if err := ident.ValidateNew(c); err != nil {
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
	defer s.end()

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
		root, err := selfSign(Template{
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

	hadInter := s.inter != nil
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
	if o.IssuesServer() {
		if err := s.leaf(leafRequest{profile: ProfileServer, name: "server", hosts: hosts, org: org, keyType: o.KeyType, days: o.Days, force: o.Force}); err != nil {
			return nil, err
		}
	}
	for i, n := range o.Nodes {
		if err := s.leaf(leafRequest{profile: ProfileServer, name: n.Name, cn: n.Name, hosts: nodeHosts[i], org: org, keyType: o.KeyType, days: o.Days, force: o.Force}); err != nil {
			return nil, err
		}
	}
	for _, c := range o.Clients {
		if err := s.leaf(leafRequest{profile: ProfileClient, name: c, org: org, keyType: o.KeyType, days: o.Days, force: o.Force}); err != nil {
			return nil, err
		}
	}
	// A CRL from the start, so that configs can always name it, and one
	// of each CA once an intermediate is added.
	if !fileExists(d.path(CRLFile)) || o.Intermediate && !hadInter {
		info, err := s.stageCRL(0)
		if err != nil {
			return nil, fmt.Errorf("write the first CRL: %w", err)
		}
		s.rep.add("created", "CRL", info.Path, "next update "+info.NextUpdate.Format(time.DateOnly))
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

// nodeNames checks the cluster nodes and returns each one's names.
func nodeNames(nodes []Node) ([]Hosts, error) {
	out := make([]Hosts, len(nodes))
	seen := map[string]bool{}
	for i, n := range nodes {
		if err := ident.ValidateNew(n.Name); err != nil {
			return nil, fmt.Errorf("node name: %w", err)
		}
		if n.Name == "server" {
			return nil, errors.New(`node name "server": that is the single broker's certificate (server.crt); name the node after the broker, e.g. rabbit1`)
		}
		if seen[n.Name] {
			return nil, fmt.Errorf("node %q is given twice", n.Name)
		}
		seen[n.Name] = true
		args := n.Hosts
		if len(args) == 0 {
			args = []string{n.Name}
		}
		h, err := parseHosts(args)
		if err != nil {
			return nil, fmt.Errorf("node %s: %w", n.Name, err)
		}
		out[i] = h
	}
	return out, nil
}
