package pki

import (
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"path/filepath"
)

// A key revoked for keyCompromise is compromised in every certificate
// that holds it: revoking one revokes the others (a renewal that kept the
// key made a second), and no new certificate is signed for it.

// keyHash is the SHA-256 of a public key's SubjectPublicKeyInfo, hex.
func keyHash(pub crypto.PublicKey) string {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(der)
	return colonHex(sum[:])
}

// entryKeyHash is an entry's key hash: recorded, or read from its
// certificate file ("" when neither says).
func (s *state) entryKeyHash(e Entry) string {
	if e.KeyHash != "" {
		return e.KeyHash
	}
	p := filepath.FromSlash(e.Cert)
	if !filepath.IsAbs(p) {
		p = s.d.path(p)
	}
	data, err := readFile(p)
	if err != nil {
		return ""
	}
	certs, err := ParseCerts(data, p)
	if err != nil || Fingerprint(certs[0]) != e.Fingerprint {
		return ""
	}
	return keyHash(certs[0].PublicKey)
}

// sameKey returns the positions of the entries, not revoked and not in
// skip, whose key is one of hashes.
func (s *state) sameKey(hashes map[string]bool, skip map[int]bool) []int {
	var out []int
	for i, e := range s.idx.Certificates {
		if skip[i] || e.Status == "revoked" || e.Profile.IsCA() {
			continue
		}
		if h := s.entryKeyHash(e); h != "" && hashes[h] {
			out = append(out, i)
		}
	}
	return out
}

// refuseCompromisedKey refuses to sign pub when a certificate with that
// key was revoked for keyCompromise.
func (s *state) refuseCompromisedKey(pub crypto.PublicKey, what string) error {
	h := keyHash(pub)
	for _, e := range s.idx.Certificates {
		if e.Status == "revoked" && e.RevocationReason == "keyCompromise" && s.entryKeyHash(e) == h {
			return fmt.Errorf("%s: its key is the key of %s (serial %s), revoked on %s for keyCompromise: a compromised key is never certified again; make a new key",
				what, e.Name, e.Serial, e.RevokedAt.Format("2006-01-02"))
		}
	}
	return nil
}
