package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unicode/utf8"

	"software.sslmate.com/src/go-pkcs12"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// ExportFormat is a file format Dir.Export writes.
type ExportFormat string

// Export formats.
const (
	// FormatP12 is PKCS#12 (.p12/.pfx): key, certificate and chain up to
	// the root, password-protected, for Android, Java and Windows.
	FormatP12 ExportFormat = "p12"
	// FormatPEMBundle is one PEM file with the certificate, its
	// intermediates and the key, for clients that take a single file.
	FormatPEMBundle ExportFormat = "pem-bundle"
)

// ParseExportFormat validates a --format value.
func ParseExportFormat(s string) (ExportFormat, error) {
	switch f := ExportFormat(s); f {
	case FormatP12, FormatPEMBundle:
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q: use p12 or pem-bundle", s)
}

// ExportOptions says what Dir.Export writes where.
type ExportOptions struct {
	Name   string // a leaf's name, or its certificate path in the directory
	Format ExportFormat
	Out    string
	// Password protects a p12; it must not be empty.
	Password []byte
	// Legacy encrypts a p12 the old way (3DES, SHA-1 MAC) for Java 8 and
	// old Android; the default is AES-256-CBC with PBKDF2-HMAC-SHA-256.
	Legacy bool
	Force  bool // replace an existing Out (never a file of the directory)
}

// ExportInfo says what Dir.Export wrote.
type ExportInfo struct {
	Path     string
	Format   ExportFormat
	Subject  string
	Serial   string
	NotAfter time.Time
	Certs    int // certificates in the file, the leaf included
	Warnings []string
}

// Errors a command can add its own hint to.
var (
	// ErrNoKey: the certificate was signed from a CSR; its key is elsewhere.
	ErrNoKey = errors.New("the directory has no key for this certificate")
	// ErrEmptyPassword: a p12 without a password.
	ErrEmptyPassword = errors.New("empty password")
)

// Export writes a leaf's key and certificate (with its chain) to one file:
// a PKCS#12 or a PEM bundle, mode 0600. A revoked or expired certificate
// and one whose key is not in the directory (a signed CSR) are refused.
// A p12 is read back before it is written.
func (d *Dir) Export(o ExportOptions) (*ExportInfo, error) {
	if _, err := ParseExportFormat(string(o.Format)); err != nil {
		return nil, err
	}
	if o.Out == "" {
		return nil, errors.New("no output file")
	}
	if o.Format == FormatP12 && len(o.Password) == 0 {
		return nil, errs.New("a p12 needs a password, and it is empty: put one in the password file (e.g. openssl rand -hex 16 > p12.pass)", ErrEmptyPassword)
	}
	if o.Format == FormatP12 && (bytes.IndexByte(o.Password, 0) >= 0 || !utf8.Valid(o.Password)) {
		return nil, errors.New("the p12 password holds a NUL byte or is not UTF-8 text: PKCS#12 passwords are text, and readers would cut or garble it; use printable text (e.g. openssl rand -hex 16 > p12.pass)")
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer s.end()
	idx, err := s.byName(o.Name, false)
	if err != nil {
		return nil, err
	}
	e := s.idx.Certificates[idx[0]]
	switch {
	case e.Profile.IsCA():
		return nil, fmt.Errorf("%s is the %s CA: its key never leaves the directory; clients need only %s", o.Name, e.Profile, s.d.path(RootCertFile))
	case e.Key == "":
		return nil, errs.New(fmt.Sprintf("%s was signed from a CSR or issued with its key in a batch bundle: its key is on the device, not in %s; make the file there: openssl pkcs12 -export -inkey KEY -in CERT -certfile %s -out %s.p12",
			e.Cert, d.Path, s.d.path(RootCertFile), e.Name), ErrNoKey)
	case !s.d.now().Before(e.NotAfter):
		return nil, fmt.Errorf("%s expired on %s: renew it first: %s", e.Cert, e.NotAfter.Format(time.DateOnly), explain.Renew(e.Name, d.Path, false))
	}
	if err := d.checkExportOut(o.Out, o.Force); err != nil {
		return nil, err
	}
	certPath, keyPath := s.d.path(e.Cert), s.d.path(e.Key)
	if filepath.IsAbs(e.Cert) {
		certPath = e.Cert
	}
	data, err := readFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("export %s: %w", e.Name, err)
	}
	certs, err := ParseCerts(data, certPath)
	if err != nil {
		return nil, err
	}
	if Fingerprint(certs[0]) != e.Fingerprint {
		return nil, fmt.Errorf("%s is not the certificate %s records for %s: it was replaced by hand; restore it or renew it", certPath, s.d.path(IndexFile), e.Name)
	}
	key, err := ReadKey(keyPath, nil)
	if err != nil {
		return nil, err
	}
	if !keyMatches(key, certs[0].PublicKey) {
		return nil, fmt.Errorf("%s does not match %s: restore the right key, or renew with a new one: %s", keyPath, certPath, explain.Renew(e.Name, d.Path, true))
	}
	info := &ExportInfo{Path: o.Out, Format: o.Format, Subject: certs[0].Subject.String(), Serial: e.Serial, NotAfter: e.NotAfter, Warnings: s.rep.Warnings}
	var out []byte
	switch o.Format {
	case FormatP12:
		// The chain up to the root, so the app can also trust the broker.
		chain := slices.Clone(certs[1:])
		if s.root != nil && !slices.ContainsFunc(chain, s.root.Equal) {
			chain = append(chain, s.root)
		}
		if bytes.ContainsFunc(o.Password, func(r rune) bool { return r >= utf8.RuneSelf }) {
			info.Warnings = append(info.Warnings, "the password is not plain ASCII: Java's keytool cannot open the file with it (OpenSSL can); use an ASCII password for Java clients")
		}
		if o.Legacy {
			info.Warnings = append(info.Warnings, "legacy encryption is 3DES and a SHA-1 MAC, which are weak: use it only for clients that cannot read the default (Java 8, Android before 12), and keep the file and its password apart")
		}
		if out, err = encodeP12(key, certs[0], chain, string(o.Password), e.Name, o.Legacy); err != nil {
			return nil, fmt.Errorf("%w: nothing written", err)
		}
		info.Certs = 1 + len(chain)
	case FormatPEMBundle:
		pemKey, err := marshalKey(key, nil)
		if err != nil {
			return nil, err
		}
		out = append(EncodeCerts(certs...), pemKey...)
		info.Certs = len(certs)
	}
	// Through the directory's journal: a crash leaves no temporary copy
	// of the key beside the output.
	err = s.txn.Add(o.Out, out, 0o600, o.Force)
	if err == nil {
		err = s.txn.Commit()
	}
	if err != nil {
		if errors.Is(err, fsx.ErrExists) {
			return nil, errs.Wrap(err, o.Out+" exists", ErrNeedsForce)
		}
		return nil, err
	}
	return info, nil
}

// encodeP12 makes a PKCS#12 file of key, its certificate leaf and chain,
// encrypted with password (AES-256-CBC and PBKDF2-HMAC-SHA-256, or with
// legacy 3DES and a SHA-1 MAC), the key named name (the alias keytool
// shows). It reads the file back before returning it.
func encodeP12(key crypto.Signer, leaf *x509.Certificate, chain []*x509.Certificate, password, name string, legacy bool) ([]byte, error) {
	enc := pkcs12.Modern2023
	if legacy {
		enc = pkcs12.LegacyDES
	}
	out, err := enc.Encode(key, leaf, chain, password)
	if err != nil {
		return nil, fmt.Errorf("encode the p12 of %s: %w", name, err)
	}
	// The name is the alias keytool shows (it said "1").
	if out, err = p12FriendlyName(out, password, name); err != nil {
		return nil, fmt.Errorf("encode the p12 of %s: name its key %s: %w", name, name, err)
	}
	if _, c, _, err := pkcs12.DecodeChain(out, password); err != nil || !c.Equal(leaf) {
		return nil, fmt.Errorf("the p12 made for %s does not read back (%v)", name, err)
	}
	return out, nil
}

// checkExportOut refuses an output inside the pki directory (even with
// force) or that exists (without force).
func (d *Dir) checkExportOut(out string, force bool) error {
	abs, _, inside, err := d.locate(out)
	if err != nil {
		return err
	}
	st, statErr := os.Lstat(abs)
	switch {
	case inside:
		return fmt.Errorf("%s is inside the pki directory %s: export writes a copy for a device or app elsewhere (a file there could replace one of the directory's or be read as one of its certificates); choose an output outside it", out, d.Path)
	case statErr != nil:
		return nil
	case !force:
		return errs.Wrap(fsx.ErrExists, out+" exists", ErrNeedsForce)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s is not a regular file (a link or device): choose another output file", out)
	}
	return nil
}
