package pki

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/internal/errs"
)

// CRLFile is the CRL of a pki directory: the issuing CA's CRL (the
// intermediate's when there is one) and, with an intermediate, the root's,
// so that a chain can be checked end to end (openssl -crl_check_all).
const CRLFile = "crl.pem"

// DefaultCRLDays is how long a CRL is valid. A broker (mosquitto, OpenSSL)
// refuses every client once it has expired: rewrite it before, with
// `pki crl` (every revoke rewrites it too).
const DefaultCRLDays = 30

// Reasons are the RFC 5280 revocation reasons, by the names openssl uses.
var Reasons = map[string]int{
	"unspecified": 0, "keyCompromise": 1, "CACompromise": 2, "affiliationChanged": 3, "superseded": 4,
	"cessationOfOperation": 5, "certificateHold": 6, "removeFromCRL": 8, "privilegeWithdrawn": 9, "AACompromise": 10,
}

// Errors a command can add its own hint to.
var (
	// ErrNotFound: no certificate of the directory has that name or serial.
	ErrNotFound = errors.New("no such certificate")
	// ErrAmbiguous: several valid certificates have that name.
	ErrAmbiguous = errors.New("several certificates match")
	// ErrRevoked: the certificate is revoked already.
	ErrRevoked = errors.New("already revoked")
)

// RevokeOptions says which certificate to revoke and why.
type RevokeOptions struct {
	Name   string // an index name (client name, server name), or
	Serial string // a serial in hex, with or without colons
	Reason string // a key of Reasons; "" means unspecified
	// CRLDays is the validity of the CRL written; 0 means DefaultCRLDays.
	CRLDays int
}

// CRLInfo describes a CRL that was written.
type CRLInfo struct {
	Path       string
	Number     int64
	NextUpdate time.Time
	Revoked    int // certificates the CRLs list
	// Removed lists the files of kept predecessors (NAME.prev.crt, and
	// NAME.prev.key when renewal made a new key) removed because they are
	// now revoked or expired.
	Removed []string
	// Warnings are what the command found and fixed or could not (an
	// interrupted change completed, a revocation taken from crl.pem).
	Warnings []string
}

func normSerial(s string) string {
	s = strings.ToUpper(strings.ReplaceAll(strings.TrimPrefix(strings.ToLower(s), "0x"), ":", ""))
	return strings.TrimLeft(s, "0")
}

// Revoke marks a certificate revoked in the index (date and reason) and
// rewrites the CRL, under the directory's lock and atomically: two revokes
// at once keep both. By name it revokes every certificate of that name not
// revoked yet: the current one and a predecessor that renewal replaced but
// that is still valid (a lost device holds both). The CA itself cannot be
// revoked. Kept predecessors that are now revoked or expired are removed.
func (d *Dir) Revoke(o RevokeOptions) ([]Entry, *CRLInfo, error) {
	if (o.Name == "") == (o.Serial == "") {
		return nil, nil, errors.New("give the certificate's name or its serial, not both")
	}
	reason := o.Reason
	if reason == "" {
		reason = "unspecified"
	}
	if _, ok := Reasons[reason]; !ok {
		return nil, nil, fmt.Errorf("revocation reason %q: use one of %s", o.Reason, reasonNames())
	}
	if reason == "removeFromCRL" {
		// RFC 5280 5.3.1: only in delta CRLs, to undo a hold. In a full
		// CRL, OpenSSL and mosquitto take it as "not revoked".
		return nil, nil, errors.New("revocation reason removeFromCRL un-revokes in OpenSSL and mosquitto (it belongs in delta CRLs only): give the reason the certificate is revoked for, e.g. keyCompromise or cessationOfOperation")
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, nil, noCA(d.Path)
	}
	s, err := d.begin()
	if err != nil {
		return nil, nil, err
	}
	defer s.end()
	var matches []int
	if o.Name != "" {
		if matches, err = s.byName(o.Name, true); err != nil {
			return nil, nil, err
		}
	} else {
		for i, e := range s.idx.Certificates {
			if normSerial(e.Serial) == normSerial(o.Serial) {
				matches = append(matches, i)
			}
		}
		if len(matches) == 0 {
			return nil, nil, errs.New(fmt.Sprintf("serial %s: no certificate in %s has that serial", o.Serial, d.path(IndexFile)), ErrNotFound)
		}
		e := s.idx.Certificates[matches[0]]
		if e.Status == "revoked" {
			return nil, nil, errs.New(fmt.Sprintf("serial %s (%s) was revoked on %s", e.Serial, e.Name, e.RevokedAt.Format(time.DateOnly)), ErrRevoked)
		}
	}
	if reason == "keyCompromise" {
		// The key is compromised in every certificate that holds it.
		hashes, skip := map[string]bool{}, map[int]bool{}
		for _, i := range matches {
			skip[i] = true
			if h := s.entryKeyHash(s.idx.Certificates[i]); h != "" {
				hashes[h] = true
			}
		}
		for _, i := range s.sameKey(hashes, skip) {
			e := s.idx.Certificates[i]
			s.rep.warn("%s (serial %s, %s) holds the same key: revoked too", e.Name, e.Serial, s.d.path(e.Cert))
			matches = append(matches, i)
		}
	}
	var out []Entry
	for _, i := range matches {
		e := &s.idx.Certificates[i]
		if e.Profile.IsCA() {
			return nil, nil, fmt.Errorf("%s is the %s CA itself: a CA is not revoked from its own directory (make a new CA and reissue its certificates)", e.Name, e.Profile)
		}
		e.Status, e.RevokedAt, e.RevocationReason = "revoked", s.d.now().UTC().Truncate(time.Second), reason
		out = append(out, *e)
	}
	removed := s.prunePrev()
	info, err := s.stageCRL(o.CRLDays)
	if err != nil {
		return nil, nil, err
	}
	info.Removed = removed
	if err := s.commit(); err != nil {
		return nil, nil, err
	}
	info.Warnings = s.rep.Warnings
	return out, info, nil
}

// byName returns the index positions of the certificates a name (or a
// certificate path relative to the directory) means: the current one of
// its slot and, with replaced, its predecessors that are neither revoked
// nor expired. A name that is a client's and a server's is ambiguous; one
// whose certificates are all revoked is ErrRevoked.
func (s *state) byName(name string, replaced bool) ([]int, error) {
	var (
		matches []int
		slots   = map[string]bool{}
		revoked *Entry
	)
	now := s.d.now()
	for i := range s.idx.Certificates {
		e := &s.idx.Certificates[i]
		if e.Name != name && e.Cert != name && slot(e.Cert) != name {
			continue
		}
		switch {
		case e.Status == "revoked":
			if revoked == nil || e.RevokedAt.After(revoked.RevokedAt) {
				revoked = e
			}
			continue
		case e.ReplacedBy != "" && (!replaced || now.After(e.NotAfter)):
			continue
		case !replaced && (isPrev(e.Cert) || s.idx.find(e.Cert).Serial != e.Serial):
			continue // an older certificate of the slot
		}
		matches = append(matches, i)
		slots[slot(e.Cert)] = true
	}
	switch {
	case len(matches) == 0 && revoked != nil:
		return nil, errs.New(fmt.Sprintf("%s (serial %s) was revoked on %s", name, revoked.Serial, revoked.RevokedAt.Format(time.DateOnly)), ErrRevoked)
	case len(matches) == 0:
		msg := fmt.Sprintf("%s: no certificate in %s has that name", name, s.d.path(IndexFile))
		if near := s.idx.closeNames(name); len(near) > 0 {
			msg += "; did you mean " + strings.Join(near, " or ") + "?"
		}
		return nil, errs.New(msg, ErrNotFound)
	case len(slots) == 2 && slots[filepath.ToSlash(filepath.Join(BootstrapDir, name+".crt"))] && slots[filepath.ToSlash(filepath.Join(ClientsDir, name+".crt"))]:
		// A device's bootstrap and client certificates: revoking the name
		// revokes both (the device, whichever it holds); renewing or
		// exporting it is the client certificate's.
		if replaced {
			return matches, nil
		}
		return slices.DeleteFunc(matches, func(i int) bool { return s.idx.Certificates[i].Profile == ProfileBootstrap }), nil
	case len(slots) > 1:
		paths := make([]string, 0, len(slots))
		for p := range slots {
			paths = append(paths, p)
		}
		sort.Strings(paths)
		return nil, errs.New(fmt.Sprintf("%s names %d certificates (%s): give the certificate's path instead of its name", name, len(paths), strings.Join(paths, ", ")), ErrAmbiguous)
	}
	return matches, nil
}

// prunePrev stages the removal of kept predecessors (a.prev.crt, and
// a.prev.key when renewal made a new key) that are revoked or expired:
// nobody may use them any more. It returns their paths.
func (s *state) prunePrev() (removed []string) {
	now := s.d.now()
	for _, e := range s.idx.Certificates {
		if !isPrev(e.Cert) || filepath.IsAbs(e.Cert) || e.Status != "revoked" && !now.After(e.NotAfter) {
			continue
		}
		if cur := s.idx.find(e.Cert); cur == nil || cur.Serial != e.Serial || !fileExists(s.d.path(e.Cert)) {
			continue // the file holds another certificate, or is gone
		}
		s.txn.Remove(s.d.path(e.Cert))
		removed = append(removed, s.d.path(e.Cert))
		if isPrev(e.Key) && fileExists(s.d.path(e.Key)) {
			s.txn.Remove(s.d.path(e.Key))
			removed = append(removed, s.d.path(e.Key))
		}
		why := "expired"
		if e.Status == "revoked" {
			why = "revoked"
		}
		s.rep.add("removed", string(e.Profile)+" certificate", s.d.path(e.Cert), "the predecessor kept by renew, now "+why)
	}
	return removed
}

// WriteCRL (re)writes the directory's CRL with a new number and
// nextUpdate days from now (0: DefaultCRLDays). A certificate file the
// index does not list does not stop it (a fresh CRL never lets anyone in
// that the old one refused, and a stale one would lock every client out):
// the CRL is written, and the error (wrapping ErrUnlisted) says what is
// wrong all the same.
func (d *Dir) WriteCRL(days int) (*CRLInfo, error) {
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	s, err := d.begin()
	var unlisted error
	if errors.Is(err, ErrUnlisted) {
		unlisted = err
		s, err = d.beginLenient()
	}
	if err != nil {
		return nil, err
	}
	defer s.end()
	var removed []string
	if unlisted == nil {
		removed = s.prunePrev()
	}
	info, err := s.stageCRL(days)
	if err != nil {
		return nil, err
	}
	info.Removed = removed
	if err := s.commit(); err != nil {
		return nil, err
	}
	info.Warnings = s.rep.Warnings
	if unlisted != nil {
		return info, fmt.Errorf("wrote %s (CRL number %d), but: %w", info.Path, info.Number, unlisted)
	}
	return info, nil
}

// crlReason is the reason code a full CRL carries: removeFromCRL (8),
// which verifiers take as "not revoked", becomes unspecified (0).
func crlReason(code int) int {
	if code == Reasons["removeFromCRL"] {
		return 0
	}
	return code
}

func reasonNames() string {
	names := make([]string, 0, len(Reasons))
	for n := range Reasons {
		if n != "removeFromCRL" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// stageCRL signs the CRLs from the index and stages crl.pem; the CRL number
// goes up by one each time.
func (s *state) stageCRL(days int) (*CRLInfo, error) {
	if days == 0 {
		days = DefaultCRLDays
	}
	if err := validityDays("the CRL", days); err != nil {
		return nil, err
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, err
	}
	if len(s.idx.orphans) > 0 {
		s.rep.warn("%s revokes %d certificates that %s no longer lists: the new CRL revokes them too", s.d.path(CRLFile), len(s.idx.orphans), s.d.path(IndexFile))
	}
	if s.idx.CRLNumber >= maxCRLNumber {
		return nil, fmt.Errorf("the CRL number %d has reached mqttctl's limit: the CRLs of this directory were numbered elsewhere; make a new CA", s.idx.CRLNumber)
	}
	s.idx.CRLNumber++
	now := s.d.now().UTC()
	info := &CRLInfo{Path: s.d.path(CRLFile), Number: s.idx.CRLNumber, NextUpdate: now.Add(time.Duration(days) * 24 * time.Hour)}
	var pems [][]byte
	// Each CA's CRL lists every revoked certificate it issued: a leaf
	// issued by the root before an intermediate was added is on the root's.
	type ca struct {
		cert   *x509.Certificate
		signer *Issuer
	}
	cas := []ca{{cert: iss.Cert, signer: iss}}
	if s.inter != nil {
		rootK := s.rootK
		if rootK == nil {
			if rootK, err = s.caKey(s.root); err != nil {
				return nil, err
			}
			s.rootK = rootK
		}
		cas = append(cas, ca{cert: s.root, signer: &Issuer{Cert: s.root, Key: rootK}})
	}
	for _, c := range cas {
		var entries []x509.RevocationListEntry
		for _, e := range s.idx.Certificates {
			if e.Status != "revoked" || e.Issuer != c.cert.Subject.String() {
				continue
			}
			n, ok := new(big.Int).SetString(normSerial(e.Serial), 16)
			if !ok {
				return nil, fmt.Errorf("index entry %s: serial %q is not hex", e.Name, e.Serial)
			}
			entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: e.RevokedAt, ReasonCode: crlReason(Reasons[e.RevocationReason])})
		}
		// What the CRL on disk revokes and the index no longer lists.
		for _, r := range s.idx.orphans {
			if r.Issuer == c.cert.Subject.String() {
				entries = append(entries, x509.RevocationListEntry{SerialNumber: r.Serial, RevocationTime: r.At, ReasonCode: crlReason(r.Reason)})
			}
		}
		der, err := x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(s.idx.CRLNumber), ThisUpdate: now.Add(-clockSkew), NextUpdate: info.NextUpdate,
			RevokedCertificateEntries: entries,
		}, c.cert, c.signer.Key)
		if err != nil {
			return nil, fmt.Errorf("sign the CRL of %s: %w", c.cert.Subject, err)
		}
		info.Revoked += len(entries)
		pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	}
	// A crl.pem that links to where a broker reads it is written there,
	// not replaced by a file the broker never sees.
	target := s.d.path(CRLFile)
	if fi, err := os.Lstat(target); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(target)
		if err != nil {
			return nil, fmt.Errorf("%s is a symbolic link that leads nowhere (%v): point it at the broker's CRL file, or remove it", target, err)
		}
		target = real
	}
	if err := s.txn.AddLike(target, slices.Concat(pems...), target, 0o644); err != nil {
		return nil, err
	}
	return info, nil
}

// closeNames returns the names in the index within two edits of name
// (a typo), at most three.
func (idx *Index) closeNames(name string) []string {
	var out []string
	for _, e := range idx.Certificates {
		if !slices.Contains(out, e.Name) && editDistance(strings.ToLower(e.Name), strings.ToLower(name)) <= 2 && len(out) < 3 {
			out = append(out, e.Name)
		}
	}
	return out
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
