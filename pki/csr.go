package pki

import (
	"bytes"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// CSROptions configures NewCSR.
type CSROptions struct {
	Name    string   // file base name and default CN
	CN      string   // subject CN; default Name
	Org     string   // subject O; optional
	Hosts   []string // requested SANs (the signer decides)
	KeyType KeyType
	OutDir  string // where NAME.key and NAME.csr go; default "."
	Force   bool
}

// NewCSR writes OUTDIR/NAME.key (0600, unencrypted PKCS#8) and OUTDIR/NAME.csr,
// what `openssl req -new` did. It returns their paths.
func NewCSR(o CSROptions) (keyPath, csrPath string, err error) {
	if err := ident.ValidateNew(o.Name); err != nil {
		return "", "", err
	}
	if o.KeyType == "" {
		o.KeyType = DefaultKeyType
	}
	if o.OutDir == "" {
		o.OutDir = "."
	}
	hosts, err := parseHosts(o.Hosts)
	if err != nil {
		return "", "", err
	}
	subj := pkix.Name{CommonName: o.CN}
	if subj.CommonName == "" {
		subj.CommonName = o.Name
	}
	if o.Org != "" {
		subj.Organization = []string{o.Org}
	}
	key, err := GenerateKey(o.KeyType)
	if err != nil {
		return "", "", err
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: subj, DNSNames: hosts.DNS, IPAddresses: hosts.IPs,
	}, key)
	if err != nil {
		return "", "", fmt.Errorf("create CSR: %w", err)
	}
	keyPEM, err := marshalKey(key, nil)
	if err != nil {
		return "", "", err
	}
	keyPath = filepath.Join(o.OutDir, o.Name+".key")
	csrPath = filepath.Join(o.OutDir, o.Name+".csr")
	var t fsx.Txn
	defer t.Abort()
	if err := t.Add(keyPath, keyPEM, 0o600, o.Force); err != nil {
		return "", "", err
	}
	if err := t.Add(csrPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), 0o644, o.Force); err != nil {
		return "", "", err
	}
	return keyPath, csrPath, t.Commit()
}

// parseCSR reads a PEM (or DER) certificate request and checks its signature.
func parseCSR(data []byte, name string) (*x509.CertificateRequest, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%s holds a %s, not a certificate request", name, strings.ToLower(block.Type))
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		// The parser's own text is an ASN.1 structure dump; say what it means.
		return nil, fmt.Errorf("%s is not a readable certificate request (truncated, damaged, or not a CSR): make it again, e.g. with 'mqttctl pki csr NAME' or 'openssl req -new'", name)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%s: the request's signature does not verify (was it edited?): %w", name, err)
	}
	return csr, nil
}

// SignOptions configures Dir.SignCSR.
type SignOptions struct {
	Profile Profile
	Hosts   []string // server SANs; the CSR's own requests are not copied
	Days    int
	Out     string // certificate path to write
	Force   bool
}

var oidBasicConstraints = asn1.ObjectIdentifier{2, 5, 29, 19}

// SignCSR issues a certificate for a CSR made anywhere. Only the CSR's
// public key and subject are used: the extensions come from the profile and
// o.Hosts, so a CSR asking for CA:TRUE still gets a leaf. The certificate
// (with the intermediate, if any) is written to o.Out and recorded in the
// index.
func (d *Dir) SignCSR(csr *x509.CertificateRequest, o SignOptions) (*x509.Certificate, *Report, error) {
	if _, err := ParseProfile(string(o.Profile)); err != nil {
		return nil, nil, err
	}
	if o.Profile == ProfileBootstrap || o.Profile == ProfileClaim {
		return nil, nil, fmt.Errorf("a %s certificate is made with its key on the CA's machine (pki issue %s NAME), not signed from a request", o.Profile, o.Profile)
	}
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	warn, err := leafDays(o.Days, o.Force)
	if err != nil {
		return nil, nil, err
	}
	if o.Out == "" {
		return nil, nil, errors.New("no output file for the certificate")
	}
	if csr.Subject.CommonName == "" {
		return nil, nil, fmt.Errorf("the request has no CN: make it with a subject, e.g. openssl req -new -subj /CN=NAME")
	}
	if err := checkOneCN(csr.Subject); err != nil {
		return nil, nil, err
	}
	if err := checkNotBootstrapOU(csr.Subject, "the request's subject"); err != nil {
		return nil, nil, err
	}
	if err := checkNotClaimOU(csr.Subject, "the request's subject"); err != nil {
		return nil, nil, err
	}
	if o.Profile == ProfileClient {
		if err := ident.ValidateNew(csr.Subject.CommonName); err != nil {
			return nil, nil, fmt.Errorf("the request's CN is the client's MQTT identity: %w", err)
		}
	} else if err := ident.CheckText("CN", csr.Subject.CommonName); err != nil {
		return nil, nil, fmt.Errorf("the request's CN: %w", err)
	}
	var hosts Hosts
	if o.Profile != ProfileClient {
		args := o.Hosts
		if len(args) == 0 {
			args = []string{csr.Subject.CommonName}
		}
		if hosts, err = parseHosts(args); err != nil {
			return nil, nil, fmt.Errorf("%w (a server certificate's names are the ones given; with none, the CSR's CN)", err)
		}
	} else if len(o.Hosts) > 0 {
		return nil, nil, errs.New("host names are for server certificates; a client is named by its CN", ErrHostsNotForClient)
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, nil, noCA(d.Path)
	}
	s, err := d.begin(warn)
	if err != nil {
		return nil, nil, err
	}
	defer s.end()
	if s.root == nil {
		return nil, nil, noCA(d.Path)
	}
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidBasicConstraints) {
			s.rep.warn("the request asks for basicConstraints (CA:TRUE?); ignored: mqttctl signs it as a %s leaf", o.Profile)
		}
	}
	var ignored []string
	for _, n := range Names(&x509.Certificate{DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses}) {
		if !slices.Contains(hosts.All(), n) {
			ignored = append(ignored, n)
		}
	}
	if len(ignored) > 0 {
		s.rep.warn("the request also asks for %s; not included (a server certificate holds only the names given to sign)", strings.Join(ignored, ", "))
	}
	rel, err := d.checkSignOut(o.Out, o.Force)
	if err != nil {
		return nil, nil, err
	}
	subj := csr.Subject
	subj.ExtraNames = nil
	if err := s.checkSubjectFree(subj, rel); err != nil {
		return nil, nil, err
	}
	if o.Profile != ProfileServer {
		if err := s.checkIdentityFree(subj.CommonName, rel, o.Force); err != nil {
			return nil, nil, err
		}
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, nil, err
	}
	nb, na := s.validity(o.Days)
	if err := s.refuseCompromisedKey(csr.PublicKey, "sign the request"); err != nil {
		return nil, nil, err
	}
	cert, err := iss.Sign(Template{Profile: o.Profile, Subject: subj, Hosts: hosts, PublicKey: csr.PublicKey, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, nil, err
	}
	if dir := filepath.Dir(rel); rel != "" && dir != "." {
		// clients/ in a pki that has issued no client yet
		if err := fsx.MkdirPrivate(d.path(dir)); err != nil {
			return nil, nil, err
		}
	}
	if err := s.txn.Add(o.Out, EncodeCerts(append([]*x509.Certificate{cert}, iss.Chain...)...), 0o644, o.Force); err != nil {
		return nil, nil, err
	}
	s.idx.Put(cert.Subject.CommonName, o.Profile, cert, rel, "")
	s.rep.add("issued", string(o.Profile)+" certificate", o.Out, "CN="+cert.Subject.CommonName)
	if err := s.commit(); err != nil {
		return nil, nil, err
	}
	return cert, s.rep, nil
}

// ErrOutNotCertificate is wrapped by the errors for a --out that would
// replace anything but a certificate.
var ErrOutNotCertificate = errors.New("the output may only be a certificate file")

// checkSignOut decides whether SignCSR may write its certificate to out: a
// new file anywhere, never a key (by name or content) and never an existing
// file of the pki directory; with force, an existing certificate file
// outside the pki directory (not a CA certificate, not a link). It returns
// the path to record in the index (relative to the directory when inside).
func (d *Dir) checkSignOut(out string, force bool) (string, error) {
	abs, rel, inside, err := d.locate(out)
	if err != nil {
		return "", err
	}
	ext := strings.ToLower(filepath.Ext(abs))
	if ext == ".key" || ext == ".p12" || ext == ".pfx" || ext == ".csr" || filepath.Base(abs) == IndexFile {
		return "", errs.New(fmt.Sprintf("%s has the name of a %s file; the certificate goes to a .crt or .pem file", out, strings.TrimPrefix(ext, ".")), ErrOutNotCertificate)
	}
	st, statErr := os.Lstat(abs)
	exists := statErr == nil
	switch {
	case inside && isPrev(abs):
		return "", errs.New(fmt.Sprintf("%s: names ending in %s are kept for the certificates renew replaces; choose another file name", out, prevSuffix+filepath.Ext(abs)), ErrOutNotCertificate)
	case inside && exists:
		return "", errs.New(fmt.Sprintf("%s is a file of the pki directory %s; signing writes only new certificates there, and never replaces one of its files", out, d.Path), ErrOutNotCertificate)
	case exists && !force:
		return "", errs.Wrap(fsx.ErrExists, out+" exists", ErrNeedsForce)
	case exists:
		if !st.Mode().IsRegular() {
			return "", errs.New(fmt.Sprintf("%s is not a regular file (a link or device); only a certificate file is ever replaced", out), ErrOutNotCertificate)
		}
		data, err := readFile(abs)
		if err != nil {
			return "", err
		}
		if err := onlyLeafCerts(data); err != nil {
			return "", errs.New(fmt.Sprintf("%s %v; only a leaf certificate file is ever replaced", out, err), ErrOutNotCertificate)
		}
	}
	if inside {
		return filepath.ToSlash(rel), nil
	}
	// Outside: absolute, since the index is read from any directory.
	return abs, nil
}

// locate resolves out to an absolute path and says whether it lies inside
// the pki directory (rel: its path there). The directories, not the file,
// are resolved, so that a link cannot smuggle the path in or out: also
// directories that do not exist yet, below a link (resolveExisting).
func (d *Dir) locate(out string) (abs, rel string, inside bool, err error) {
	if abs, err = filepath.Abs(out); err != nil {
		return "", "", false, err
	}
	dirAbs, err := filepath.Abs(d.Path)
	if err != nil {
		return "", "", false, err
	}
	if real, err := filepath.EvalSymlinks(dirAbs); err == nil {
		dirAbs = real
	}
	parent, err := resolveExisting(filepath.Dir(abs))
	if err != nil {
		return "", "", false, err
	}
	abs = filepath.Join(parent, filepath.Base(abs))
	rel, err = filepath.Rel(dirAbs, abs)
	inside = err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
	return abs, rel, inside, nil
}

// onlyLeafCerts accepts PEM data that holds certificates and nothing else,
// the first of which is not a CA.
func onlyLeafCerts(data []byte) error {
	n := 0
	for rest := data; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			if len(bytes.TrimSpace(rest)) > 0 && n == 0 {
				return errors.New("is not a PEM certificate")
			}
			break
		}
		if b.Type != "CERTIFICATE" {
			return fmt.Errorf("holds a %s", strings.ToLower(b.Type))
		}
		if n == 0 {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return errors.New("does not hold a readable certificate")
			}
			if c.IsCA {
				return errors.New("is a CA certificate")
			}
		}
		n++
	}
	if n == 0 {
		return errors.New("holds no certificate")
	}
	return nil
}

// ReadCSR reads and checks a CSR file.
func ReadCSR(path string) (*x509.CertificateRequest, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CSR: %w", err)
	}
	return parseCSR(data, path)
}

// resolveExisting resolves the symbolic links of the longest existing
// prefix of the absolute path dir and appends the rest, which does not
// exist yet (so that LINK/new, LINK a link to the pki directory, is seen
// to be in it). A link on the way to a path that does not exist is
// refused: what it points to would be created through it.
func resolveExisting(dir string) (string, error) {
	rest := ""
	for p := dir; ; {
		if real, err := filepath.EvalSymlinks(p); err == nil {
			return filepath.Join(real, rest), nil
		}
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("%s is a symbolic link to a path that does not exist (or a path that cannot be read): give a directory, or make the link's target first", p)
		}
		parent := filepath.Dir(p)
		if parent == p {
			return dir, nil
		}
		rest = filepath.Join(filepath.Base(p), rest)
		p = parent
	}
}
