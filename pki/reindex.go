package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
)

// Reindex records in index.yaml what the certificate files of the directory
// hold and the index does not know: a certificate its CAs issued that no
// entry lists (a renewal or issue that was stopped before it recorded it,
// by an mqttctl before the journal), or an entry's certificate that moved
// to another file. It keeps every entry, every revocation and the CRL
// number, and takes the revocations of crl.pem too. A file it cannot
// account for (a stray certificate of another CA, a copy of a listed
// certificate, not a certificate) is an error naming it, and nothing is
// written.
func (d *Dir) Reindex() (*Report, error) {
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	s, err := d.begin()
	if errors.Is(err, ErrUnlisted) {
		s, err = d.beginLenient()
	}
	if err != nil {
		return nil, err
	}
	defer s.end()
	if err := s.reindex(); err != nil {
		return nil, err
	}
	if len(s.rep.Actions) == 0 && !s.idx.Rebuilt && len(s.idx.Notes) == 0 {
		s.rep.add("kept", "index", s.d.path(IndexFile), "it lists every certificate of the directory")
		return s.rep, nil
	}
	s.idx.Notes = append(s.idx.Notes, "reindexed")
	return s.rep, s.commit()
}

// beginLenient is begin for an index that does not list every file: it is
// parsed as it is (with the revocations of crl.pem applied), for reindex
// to complete, or for a CRL to be written all the same.
func (d *Dir) beginLenient() (*state, error) {
	s := &state{d: d, rep: &Report{}, keyPaths: map[*x509.Certificate]string{}}
	unlock, err := lockAndRecover(d, s.rep)
	if err != nil {
		return nil, err
	}
	s.unlock = unlock
	data, err := readFile(d.path(IndexFile))
	if err != nil {
		s.end()
		return nil, fmt.Errorf("read index: %w", err)
	}
	if s.idx, err = parseIndex(d.path(IndexFile), data); err != nil {
		s.end()
		return nil, err
	}
	cas, err := caCerts(d.Path)
	if err != nil {
		s.end()
		return nil, err
	}
	crl, err := readDiskCRL(d.Path, cas)
	if err != nil {
		s.end()
		return nil, err
	}
	s.idx.orphans, s.idx.Notes = s.idx.applyRevocations(crl)
	for _, n := range s.idx.Notes {
		s.rep.warn("%s", n)
	}
	s.txn.Journal, s.txn.Crash = d.path(JournalFile), d.crash
	if err := s.loadCAs(); err != nil {
		s.end()
		return nil, err
	}
	return s, nil
}

// reindex adds or moves the entries of s.idx so that each certificate file
// on disk is listed, by path, with its fingerprint.
func (s *state) reindex() error {
	cas := []*x509.Certificate{s.root}
	if s.inter != nil {
		cas = append(cas, s.inter)
	}
	var problems []string
	for _, rel := range certFilesOnDisk(s.d.Path) {
		full := s.d.path(rel)
		fp, err := fileFingerprint(full)
		if err != nil {
			return err
		}
		if e := s.idx.find(rel); e != nil && e.Fingerprint == fp {
			continue
		}
		if i := s.idx.byFingerprint(fp); i >= 0 {
			e := &s.idx.Certificates[i]
			if other, err := fileFingerprint(s.d.path(e.Cert)); err == nil && other == fp && e.Cert != rel {
				problems = append(problems, fmt.Sprintf("%s is a copy of %s: remove the copy (rm %s)", full, s.d.path(e.Cert), full))
				continue
			}
			if slot(e.Cert) != slot(rel) {
				// Another identity's certificate: moving the entry would
				// let a renewal of this slot overwrite it.
				problems = append(problems, fmt.Sprintf("%s holds %s's certificate (serial %s), which belongs at %s: move it back (mv %s %s)",
					full, e.Name, e.Serial, s.d.path(e.Cert), full, s.d.path(e.Cert)))
				continue
			}
			s.rep.add("moved", string(e.Profile)+" certificate", full, fmt.Sprintf("the index listed serial %s as %s", e.Serial, e.Cert))
			e.Cert = rel
			if k := strings.TrimSuffix(rel, ".crt") + ".key"; e.Key != "" && isPrev(rel) && s.keyOf(k, full) {
				e.Key = k
			}
			continue
		}
		certs, err := ParseCerts(readOrEmpty(full), full)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s is not a readable certificate: move it out of the directory", full))
			continue
		}
		c := certs[0]
		if issuedBy(c, cas) == nil {
			problems = append(problems, fmt.Sprintf("%s was not issued by this directory's CA (issuer %q): move it out of the directory", full, c.Issuer))
			continue
		}
		name, p := guessEntry(rel, c)
		key := strings.TrimSuffix(rel, ".crt") + ".key"
		if !s.keyOf(key, full) {
			key = ""
		}
		s.idx.Put(name, p, c, rel, key)
		if isPrev(rel) {
			if cur := s.idx.find(slot(rel)); cur != nil && cur.Serial != FormatSerial(c) {
				s.idx.find(rel).ReplacedBy = cur.Serial
			}
		}
		s.rep.add("recorded", string(p)+" certificate", full, fmt.Sprintf("serial %s, CN %q, until %s, which the index did not list", FormatSerial(c), c.Subject.CommonName, c.NotAfter.UTC().Format("2006-01-02")))
	}
	if len(problems) > 0 {
		return fmt.Errorf("nothing written; account for these files first:\n  %s", strings.Join(problems, "\n  "))
	}
	return nil
}

// keyOf reports whether the key file rel exists and matches the
// certificate in certPath.
func (s *state) keyOf(rel, certPath string) bool {
	k, err := ReadKey(s.d.path(rel), nil)
	if err != nil {
		return false
	}
	certs, err := ParseCerts(readOrEmpty(certPath), certPath)
	return err == nil && keyMatches(k, certs[0].PublicKey)
}

func readOrEmpty(path string) []byte {
	b, _ := readFile(path)
	return b
}

// byFingerprint returns the position of the newest entry with that
// fingerprint, or -1.
func (idx *Index) byFingerprint(fp string) int {
	for i := len(idx.Certificates) - 1; i >= 0; i-- {
		if idx.Certificates[i].Fingerprint == fp {
			return i
		}
	}
	return -1
}

// guessEntry is the name and profile a certificate file is indexed under
// when no entry says: its file name and its key usages.
func guessEntry(rel string, c *x509.Certificate) (string, Profile) {
	name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(rel), ".crt"), prevSuffix)
	switch {
	case rel == RootCertFile:
		return "ca", ProfileRoot
	case rel == IntermediateCertFile:
		return "intermediate", ProfileIntermediate
	case IsBootstrap(c):
		return name, ProfileBootstrap
	case IsClaim(c):
		return name, ProfileClaim
	case hasEKU(c, x509.ExtKeyUsageServerAuth) && hasEKU(c, x509.ExtKeyUsageClientAuth):
		return name, ProfileBridge
	case hasEKU(c, x509.ExtKeyUsageServerAuth):
		return name, ProfileServer
	}
	return name, ProfileClient
}

// fileFingerprint is the SHA-256 fingerprint of the first certificate in a
// PEM file ("" when it holds none), without parsing the certificate.
func fileFingerprint(path string) (string, error) {
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return "", nil
		}
		if b.Type == "CERTIFICATE" {
			sum := sha256.Sum256(b.Bytes)
			return colonHex(sum[:]), nil
		}
	}
}
