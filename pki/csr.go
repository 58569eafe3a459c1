package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

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
	if err := ident.Validate(o.Name); err != nil {
		return "", "", err
	}
	if o.KeyType == "" {
		o.KeyType = DefaultKeyType
	}
	if o.OutDir == "" {
		o.OutDir = "."
	}
	hosts, err := ParseHosts(o.Hosts)
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
	keyPEM, err := MarshalKey(key, nil)
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

// ParseCSR reads a PEM (or DER) certificate request and checks its signature.
func ParseCSR(data []byte, name string) (*x509.CertificateRequest, error) {
	der := data
	if block, _ := pem.Decode(data); block != nil {
		if block.Type != "CERTIFICATE REQUEST" && block.Type != "NEW CERTIFICATE REQUEST" {
			return nil, fmt.Errorf("%s holds a %s, not a certificate request", name, strings.ToLower(block.Type))
		}
		der = block.Bytes
	}
	csr, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return nil, fmt.Errorf("%s: not a certificate request: %w", name, err)
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
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	warn, err := LeafDays(o.Days, o.Force)
	if err != nil {
		return nil, nil, err
	}
	if o.Out == "" {
		return nil, nil, fmt.Errorf("no output file: give --out")
	}
	if csr.Subject.CommonName == "" {
		return nil, nil, fmt.Errorf("the request has no CN: make it with a subject, e.g. openssl req -new -subj /CN=NAME")
	}
	var hosts Hosts
	if o.Profile != ProfileClient {
		args := o.Hosts
		if len(args) == 0 {
			args = []string{csr.Subject.CommonName}
		}
		if hosts, err = ParseHosts(args); err != nil {
			return nil, nil, fmt.Errorf("%w (the server's names come from --host; with none, from the CSR's CN)", err)
		}
	} else if len(o.Hosts) > 0 {
		return nil, nil, fmt.Errorf("--host is for server certificates; a client is named by its CN")
	}
	s, err := d.begin(warn)
	if err != nil {
		return nil, nil, err
	}
	defer s.txn.Abort()
	if s.root == nil {
		return nil, nil, fmt.Errorf("no CA in %s: run 'mqttctl pki init --dir %s' first", d.Path, d.Path)
	}
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidBasicConstraints) {
			s.rep.warn("the request asks for basicConstraints (CA:TRUE?); ignored: mqttctl signs it as a %s leaf", o.Profile)
		}
	}
	var ignored []string
	for _, n := range append(append([]string(nil), csr.DNSNames...), ipStrings(csr)...) {
		if !slices.Contains(hosts.All(), n) {
			ignored = append(ignored, n)
		}
	}
	if len(ignored) > 0 {
		s.rep.warn("the request also asks for %s; not included (only --host names are): add --host for each name you want", strings.Join(ignored, ", "))
	}
	rel := o.Out
	if r, err := filepath.Rel(d.Path, o.Out); err == nil && !strings.HasPrefix(r, "..") {
		rel = r
	}
	subj := csr.Subject
	subj.ExtraNames = nil
	if err := s.checkSubjectFree(subj, rel); err != nil {
		return nil, nil, err
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, nil, err
	}
	nb, na := s.validity(o.Days)
	cert, err := iss.Sign(Template{Profile: o.Profile, Subject: subj, Hosts: hosts, PublicKey: csr.PublicKey, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, nil, err
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

func ipStrings(csr *x509.CertificateRequest) []string {
	var out []string
	for _, ip := range csr.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// ReadCSR reads and checks a CSR file.
func ReadCSR(path string) (*x509.CertificateRequest, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read CSR: %w", err)
	}
	return ParseCSR(data, path)
}
