package pki

import (
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/errs"
)

// IndexFile is the name of the index of issued certificates in a pki
// directory.
const IndexFile = "index.yaml"

// Entry records one issued certificate. Revocation and renewal rely on it.
type Entry struct {
	Name        string    `yaml:"name"`
	Profile     Profile   `yaml:"profile"`
	Serial      string    `yaml:"serial"`
	Subject     string    `yaml:"subject"`
	CN          string    `yaml:"cn,omitempty"` // the MQTT identity of a client
	Issuer      string    `yaml:"issuer"`
	SANs        []string  `yaml:"sans,omitempty"`
	NotBefore   time.Time `yaml:"not_before"`
	NotAfter    time.Time `yaml:"not_after"`
	Cert        string    `yaml:"cert"`          // relative to the directory
	Key         string    `yaml:"key,omitempty"` // empty for signed CSRs
	Fingerprint string    `yaml:"sha256"`
	// KeyHash is the SHA-256 of the certificate's public key (its
	// SubjectPublicKeyInfo), to find the certificates that share a key.
	KeyHash   string    `yaml:"key_sha256,omitempty"`
	Status    string    `yaml:"status"` // valid or revoked
	RevokedAt time.Time `yaml:"revoked_at,omitempty"`
	// RevocationReason is a key of Reasons.
	RevocationReason string `yaml:"revocation_reason,omitempty"`
	// ReplacedBy is the serial of the certificate that took this one's
	// place (pki renew, or pki issue --force). A replaced certificate stays
	// valid until it expires or is revoked; renew keeps its file as
	// NAME.prev.crt.
	ReplacedBy string `yaml:"replaced_by,omitempty"`
	// Enrolled is, for a bootstrap certificate, the serial of the client
	// certificate it enrolled: a bootstrap certificate enrols once.
	Enrolled string `yaml:"enrolled,omitempty"`
	// Token is, for a certificate enrolled with a one-time token, the
	// token's SHA-256 (as tokens.json keeps it): the second record of its
	// use, so a tokens.json restored from an older copy cannot make a used
	// token good again.
	Token string `yaml:"token_sha256,omitempty"`
}

// prevSuffix ends the file name a renewed certificate's predecessor is kept
// under: clients/a.crt's is clients/a.prev.crt (and a.prev.key when renewal
// made a new key).
const prevSuffix = ".prev"

// prevPath is where path's predecessor is kept: a.crt -> a.prev.crt.
func prevPath(path string) string {
	ext := filepath.Ext(path)
	return strings.TrimSuffix(path, ext) + prevSuffix + ext
}

// isPrev reports whether path is a kept predecessor (a.prev.crt).
func isPrev(path string) bool {
	return strings.HasSuffix(strings.TrimSuffix(path, filepath.Ext(path)), prevSuffix)
}

// slot is the certificate path that path belongs to: a.prev.crt and a.crt
// are the same slot, one identity's certificate and its predecessor.
func slot(path string) string {
	if !isPrev(path) {
		return path
	}
	ext := filepath.Ext(path)
	return strings.TrimSuffix(strings.TrimSuffix(path, ext), prevSuffix) + ext
}

// Index is the list of certificates issued from a pki directory.
type Index struct {
	Version      int     `yaml:"version"`
	CRLNumber    int64   `yaml:"crl_number,omitempty"` // of the last CRL written
	Certificates []Entry `yaml:"certificates"`
	// Rebuilt is set when index.yaml was missing and LoadIndex rebuilt the
	// entries from the certificates on disk and crl.pem.
	Rebuilt bool `yaml:"-"`
	// Notes says what LoadIndex changed in what index.yaml holds: a
	// revocation or CRL number taken from crl.pem, a certificate a rebuild
	// skipped. A command that writes saves the change and reports them.
	Notes []string `yaml:"-"`
	// orphans are revocations crl.pem holds for certificates the index
	// has no entry for; every new CRL carries them on.
	orphans []revocation
}

// IndexVersion is the only index.yaml version mqttctl reads and writes.
const IndexVersion = 1

// ErrIndexCorrupt is wrapped by LoadIndex's errors about index.yaml itself.
var ErrIndexCorrupt = errors.New("index.yaml is damaged")

// ErrUnlisted is wrapped by LoadIndex's error about a certificate file in
// the directory that index.yaml does not list.
var ErrUnlisted = errors.New("a certificate the index does not list")

// LoadIndex reads DIR/index.yaml. A missing file is an empty index in a
// directory without a CA, and is rebuilt from the certificates on disk
// (Rebuilt set) in one with a CA. A file that does not parse, has another
// version, has an incomplete entry is an error wrapping ErrIndexCorrupt; a
// certificate in the directory that it does not list is one wrapping
// ErrUnlisted that says why it is there: the index is never silently
// replaced. Revocations in crl.pem that the index lacks are applied (see
// Notes): a revocation is never undone by reading an older index.
func LoadIndex(dir string) (*Index, error) {
	cas, err := caCerts(dir)
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, IndexFile)
	data, err := readFile(path)
	var idx *Index
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if len(cas) == 0 {
			return &Index{Version: IndexVersion}, nil
		}
		if idx, err = rebuildIndex(dir, cas); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, fmt.Errorf("read index: %w", err)
	default:
		if idx, err = parseIndex(path, data); err != nil {
			return nil, err
		}
		// Each certificate file holds the certificate its entry records.
		for _, f := range certFilesOnDisk(dir) {
			fp, err := fileFingerprint(filepath.Join(dir, f))
			if err != nil {
				return nil, err
			}
			if e := idx.find(f); e == nil || e.Fingerprint != fp {
				return nil, unlistedError(dir, f, idx, cas)
			}
		}
	}
	if len(cas) > 0 {
		crl, err := readDiskCRL(dir, cas)
		if err != nil {
			return nil, err
		}
		orphans, notes := idx.applyRevocations(crl)
		idx.orphans = orphans
		idx.Notes = append(idx.Notes, notes...)
	}
	return idx, nil
}

// parseIndex decodes and checks index.yaml's content.
func parseIndex(path string, data []byte) (*Index, error) {
	fix := fmt.Sprintf("restore it from a backup, or move it away (mv %s %s.bad) and mqttctl rebuilds it from the certificates on disk and %s", path, path, CRLFile)
	corrupt := func(format string, a ...any) error {
		return errs.New(fmt.Sprintf(format, a...)+"; "+fix, ErrIndexCorrupt)
	}
	var idx Index
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&idx); err != nil {
		return nil, corrupt("%s is damaged: %v", path, err)
	}
	if idx.CRLNumber < 0 || idx.CRLNumber > maxCRLNumber {
		return nil, corrupt("%s: crl_number %d is out of range (0 to %d)", path, idx.CRLNumber, int64(maxCRLNumber))
	}
	if idx.Version != IndexVersion {
		return nil, corrupt("%s has version %d; this mqttctl reads version %d (a newer mqttctl wrote it, or it is truncated)", path, idx.Version, IndexVersion)
	}
	for i, e := range idx.Certificates {
		if e.Name == "" || e.Serial == "" || e.Cert == "" || e.Fingerprint == "" || e.NotAfter.IsZero() || e.NotBefore.IsZero() ||
			(e.Status != "valid" && e.Status != "revoked") || !validProfile(e.Profile) || e.Status == "revoked" && e.RevokedAt.IsZero() {
			return nil, corrupt("%s: certificate entry %d (%q) is incomplete (the file looks truncated or edited)", path, i+1, e.Name)
		}
	}
	return &idx, nil
}

// unlistedError says why the certificate file rel is in the directory but
// not in the index, and how to fix that without losing anything.
func unlistedError(dir, rel string, idx *Index, cas []*x509.Certificate) error {
	full := filepath.Join(dir, rel)
	index := filepath.Join(dir, IndexFile)
	moveAway := fmt.Sprintf("keep it but out of the index's way (mv %s %s.stray: files not ending in .crt are not read), which loses nothing", full, full)
	data, err := readFile(full)
	if err != nil {
		return fmt.Errorf("read %s: %w", full, err)
	}
	certs, err := ParseCerts(data, full)
	if err != nil {
		return errs.New(fmt.Sprintf("%s is not a certificate %s lists, nor a readable certificate (%v): %s", full, index, err, moveAway), ErrUnlisted)
	}
	c := certs[0]
	if issuedBy(c, cas) == nil {
		return errs.New(fmt.Sprintf("%s is not listed in %s and was not issued by this directory's CA (its issuer is %s): a stray copy from elsewhere; %s", full, index, issuerText(c, cas), moveAway), ErrUnlisted)
	}
	fp := Fingerprint(c)
	if i := idx.byFingerprint(fp); i >= 0 {
		e := idx.Certificates[i]
		other := filepath.Join(dir, filepath.FromSlash(e.Cert))
		if ofp, _ := fileFingerprint(other); ofp == fp && e.Cert != rel {
			return errs.New(fmt.Sprintf("%s is not listed in %s: it is a copy of %s's certificate %s (serial %s): remove the copy (rm %s), which loses nothing", full, index, e.Name, other, e.Serial, full), ErrUnlisted)
		}
	}
	return errs.New(fmt.Sprintf("%s (CN %q, serial %s, valid until %s) was issued by this directory's CA but %s does not list it there: a renewal or issue that did not finish recording it, or a certificate signed outside mqttctl; record it, keeping every entry and revocation: %s",
		full, c.Subject.CommonName, FormatSerial(c), c.NotAfter.UTC().Format(time.DateOnly), index, explain.Reindex(dir)), ErrUnlisted)
}

// issuerText names the issuer of a certificate that cas did not sign: its
// name, and when that is a name of cas (every mqttctl CA is "mqttctl Root
// CA"), that it is a different CA, by key identifier.
func issuerText(c *x509.Certificate, cas []*x509.Certificate) string {
	for _, ca := range cas {
		if ca.Subject.String() == c.Issuer.String() {
			return fmt.Sprintf("%q, a different CA with the same name: its key id %s, this directory's %s", c.Issuer, colonHex(c.AuthorityKeyId), colonHex(ca.SubjectKeyId))
		}
	}
	return fmt.Sprintf("%q", c.Issuer.String())
}

// caCerts reads the directory's root and intermediate CA certificates
// (none when it has no CA yet).
func caCerts(dir string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, f := range []string{RootCertFile, IntermediateCertFile} {
		data, err := readFile(filepath.Join(dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("read CA certificate: %w", err)
		}
		certs, err := ParseCerts(data, filepath.Join(dir, f))
		if err != nil {
			return nil, err
		}
		out = append(out, certs[0])
	}
	return out, nil
}

// issuedBy returns the CA of cas whose signature c carries, or nil.
func issuedBy(c *x509.Certificate, cas []*x509.Certificate) *x509.Certificate {
	for _, ca := range cas {
		if c.Equal(ca) {
			return ca // the CA's own certificate
		}
		if bytes.Equal(c.RawIssuer, ca.RawSubject) && c.CheckSignatureFrom(ca) == nil {
			return ca
		}
	}
	return nil
}

func validProfile(p Profile) bool {
	switch p {
	case ProfileRoot, ProfileIntermediate, ProfileServer, ProfileClient, ProfileBridge, ProfileBootstrap, ProfileClaim:
		return true
	}
	return false
}

// certFilesOnDisk lists the certificates mqttctl keeps in a pki directory,
// relative to it, with forward slashes.
func certFilesOnDisk(dir string) []string {
	var out []string
	for _, f := range []string{RootCertFile, IntermediateCertFile, ServerCertFile} {
		if fileExists(filepath.Join(dir, f)) {
			out = append(out, f)
		}
	}
	for _, sub := range []string{ServersDir, ClientsDir, BootstrapDir, ClaimDir} {
		matches, _ := filepath.Glob(filepath.Join(dir, sub, "*.crt"))
		sort.Strings(matches)
		for _, m := range matches {
			out = append(out, sub+"/"+filepath.Base(m))
		}
	}
	return out
}

// rebuildIndex makes an index from the certificates on disk that the
// directory's CAs issued (others are skipped, with a note); LoadIndex then
// takes the revocations and the CRL number from crl.pem.
func rebuildIndex(dir string, cas []*x509.Certificate) (*Index, error) {
	idx := &Index{Version: IndexVersion, Rebuilt: true}
	for _, rel := range certFilesOnDisk(dir) {
		data, err := readFile(filepath.Join(dir, rel))
		if err != nil {
			return nil, fmt.Errorf("rebuild index: %w", err)
		}
		certs, err := ParseCerts(data, filepath.Join(dir, rel))
		if err != nil {
			idx.Notes = append(idx.Notes, fmt.Sprintf("skipped %s: not a readable certificate (%v); move it out of the directory", filepath.Join(dir, rel), err))
			continue
		}
		c := certs[0]
		if issuedBy(c, cas) == nil {
			idx.Notes = append(idx.Notes, fmt.Sprintf("skipped %s: not issued by this directory's CA (issuer %s); move it out of the directory", filepath.Join(dir, rel), issuerText(c, cas)))
			continue
		}
		name, p := guessEntry(rel, c)
		key := strings.TrimSuffix(rel, ".crt") + ".key"
		if !fileExists(filepath.Join(dir, key)) {
			key = ""
		}
		idx.Put(name, p, c, rel, key)
	}
	// A kept predecessor was replaced by the certificate of its slot.
	for i, e := range idx.Certificates {
		if isPrev(e.Cert) {
			if cur := idx.find(slot(e.Cert)); cur != nil {
				idx.Certificates[i].ReplacedBy = cur.Serial
			}
		}
	}
	return idx, nil
}

// RebuildNote says that the index at path was rebuilt, from what, and what
// the rebuild skipped or took from crl.pem.
func (idx *Index) RebuildNote(path string) string {
	revoked := 0
	for _, e := range idx.Certificates {
		if e.Status == "revoked" {
			revoked++
		}
	}
	note := fmt.Sprintf("%s was missing: rebuilt it from the %d certificates on disk and %s (%d revoked, %d more revocations of certificates no longer on disk kept, CRL number %d). "+
		"A certificate no longer on disk and never revoked (one that two renewals replaced) may still be valid and is not listed: if a backup of %s has it, revoke it by serial",
		path, len(idx.Certificates), CRLFile, revoked, len(idx.orphans), idx.CRLNumber, IndexFile)
	return note
}

func hasEKU(c *x509.Certificate, u x509.ExtKeyUsage) bool {
	for _, e := range c.ExtKeyUsage {
		if e == u {
			return true
		}
	}
	return false
}

// Marshal encodes the index as YAML.
func (idx *Index) Marshal() ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(idx); err != nil {
		return nil, fmt.Errorf("encode index: %w", err)
	}
	return buf.Bytes(), nil
}

// Put records a newly issued certificate. An entry for a certificate it
// replaces on disk (same slot) is kept and marked ReplacedBy, so that the
// old certificate, which stays valid until it expires, can still be found
// and revoked; a revoked entry is never dropped from the CRL that way.
func (idx *Index) Put(name string, p Profile, cert *x509.Certificate, certPath, keyPath string) {
	e := newEntry(name, p, cert, certPath, keyPath)
	if !isPrev(e.Cert) {
		for i := range idx.Certificates {
			o := &idx.Certificates[i]
			if slot(o.Cert) == e.Cert && o.Serial != e.Serial && o.ReplacedBy == "" {
				o.ReplacedBy = e.Serial
			}
		}
	}
	for i := range idx.Certificates {
		if idx.Certificates[i].Serial == e.Serial {
			idx.Certificates[i] = e
			return
		}
	}
	idx.Certificates = append(idx.Certificates, e)
}

// find returns the newest entry for a certificate path, or nil.
func (idx *Index) find(certPath string) *Entry {
	for i := len(idx.Certificates) - 1; i >= 0; i-- {
		if idx.Certificates[i].Cert == certPath {
			return &idx.Certificates[i]
		}
	}
	return nil
}

// newEntry builds an index entry from a certificate.
func newEntry(name string, p Profile, cert *x509.Certificate, certPath, keyPath string) Entry {
	return Entry{
		Name:        name,
		Profile:     p,
		Serial:      FormatSerial(cert),
		Subject:     cert.Subject.String(),
		CN:          cert.Subject.CommonName,
		Issuer:      cert.Issuer.String(),
		SANs:        SANs(cert),
		NotBefore:   cert.NotBefore.UTC(),
		NotAfter:    cert.NotAfter.UTC(),
		Cert:        filepath.ToSlash(certPath),
		Key:         filepath.ToSlash(keyPath),
		Fingerprint: Fingerprint(cert),
		KeyHash:     keyHash(cert.PublicKey),
		Status:      "valid",
	}
}

// StatusAt is the status of an entry at time now: revoked, expired,
// replaced (by a renewal, still valid), not-yet-valid, expiring (within
// 30 days) or valid.
func (e *Entry) StatusAt(now time.Time) string {
	switch {
	case e.Status == "revoked":
		return "revoked"
	case now.After(e.NotAfter):
		return "expired"
	case e.ReplacedBy != "":
		return "replaced"
	case now.Before(e.NotBefore):
		return "not-yet-valid"
	case e.NotAfter.Sub(now) < ExpiryWarning:
		return "expiring"
	}
	return "valid"
}

// Expiring returns the entries that are neither revoked nor replaced and
// end within the window from now (the ones already ended included): what
// needs renewing.
func Expiring(entries []Entry, now time.Time, within time.Duration) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Status != "revoked" && e.ReplacedBy == "" && e.NotAfter.Before(now.Add(within)) {
			out = append(out, e)
		}
	}
	return out
}

// ExpiryWarning is how close to its end a certificate is reported as expiring.
const ExpiryWarning = 30 * 24 * time.Hour

// FormatSerial formats a serial number as colon-separated hex, as openssl does.
func FormatSerial(c *x509.Certificate) string {
	return colonHex(c.SerialNumber.Bytes())
}

// Fingerprint is the SHA-256 fingerprint of a certificate, colon-separated hex.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return colonHex(sum[:])
}

func colonHex(b []byte) string {
	const hexdigits = "0123456789ABCDEF"
	var sb strings.Builder
	for i, v := range b {
		if i > 0 {
			sb.WriteByte(':')
		}
		sb.WriteByte(hexdigits[v>>4])
		sb.WriteByte(hexdigits[v&15])
	}
	return sb.String()
}

// Names returns the names a certificate is valid for as a server: its DNS
// names, then its IP addresses, as strings.
func Names(c *x509.Certificate) []string {
	out := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		out = append(out, ip.String())
	}
	return out
}

// SANs lists a certificate's subject alternative names as "DNS:x", "IP:y".
func SANs(c *x509.Certificate) []string {
	var out []string
	for _, d := range c.DNSNames {
		out = append(out, "DNS:"+d)
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "IP:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	for _, u := range c.URIs {
		out = append(out, "URI:"+u.String())
	}
	return out
}

// Entries returns the directory's certificates sorted by profile, then
// name, after completing a change a crash interrupted. notes says what
// reading the directory found and did: a completed change, an index rebuilt
// from the certificates on disk, revocations taken from crl.pem (saved by
// the next command that writes). A directory without a CA is ErrNoCA.
func (d *Dir) Entries() (entries []Entry, notes []string, err error) {
	if !fileExists(d.path(RootCertFile)) {
		return nil, nil, noCA(d.Path)
	}
	idx, recovered, err := d.readIndex()
	if err != nil {
		return nil, nil, err
	}
	if recovered != "" {
		notes = append(notes, recovered)
	}
	if idx.Rebuilt {
		notes = append(notes, idx.RebuildNote(d.path(IndexFile))+"; the next pki command that writes saves it")
	}
	return sortedEntries(idx), append(notes, idx.Notes...), nil
}

// sortedEntries returns the index entries sorted by profile then name.
func sortedEntries(idx *Index) []Entry {
	order := map[Profile]int{ProfileRoot: 0, ProfileIntermediate: 1, ProfileServer: 2, ProfileBridge: 3, ProfileClient: 4, ProfileBootstrap: 5, ProfileClaim: 6}
	out := slices.Clone(idx.Certificates)
	slices.SortStableFunc(out, func(a, b Entry) int {
		if order[a.Profile] != order[b.Profile] {
			return order[a.Profile] - order[b.Profile]
		}
		return strings.Compare(a.Name, b.Name)
	})
	return out
}
