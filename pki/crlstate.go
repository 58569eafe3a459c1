package pki

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"path/filepath"
	"time"
)

// The CRL on disk is the record a broker enforces, so mqttctl treats it as
// a second, independent record of the revocations: a CRL it writes revokes
// at least everything the one on disk revokes and has a greater number,
// whatever index.yaml says, and an index rebuilt from the certificates on
// disk takes its revocations and CRL number from it. A revocation that
// reached either file is never undone.

// maxCRLNumber is the greatest CRL number mqttctl writes: it stays an
// int64 with room to go up (RFC 5280 allows 20 octets; nobody writes 2^62
// CRLs).
const maxCRLNumber = 1 << 62

// revocation is one certificate a CRL on disk revokes.
type revocation struct {
	Serial *big.Int
	At     time.Time
	Reason int
	Issuer string // the subject of the CA that signed the CRL
}

// diskCRL is what crl.pem holds.
type diskCRL struct {
	Number  int64 // the greatest CRL number in the file; 0 without one
	Revoked []revocation
}

// ErrCRLDamaged is wrapped by the errors about a crl.pem mqttctl cannot
// read as CRLs of the directory's CAs.
var ErrCRLDamaged = errors.New("crl.pem cannot be read")

// readDiskCRL reads and verifies DIR/crl.pem: every CRL in it must be
// signed by one of cas. A missing file is an empty diskCRL.
func readDiskCRL(dir string, cas []*x509.Certificate) (*diskCRL, error) {
	path := filepath.Join(dir, CRLFile)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &diskCRL{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CRL: %w", err)
	}
	fix := fmt.Sprintf("restore it from a backup; only if it cannot be, move it away (mv %s %s.bad): the new CRL then revokes only what %s records", path, path, filepath.Join(dir, IndexFile))
	out := &diskCRL{}
	signers := map[*x509.Certificate]bool{}
	var latest time.Time // the newest thisUpdate
	rest := data
	blocks := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		blocks++
		if block.Type != "X509 CRL" {
			return nil, fmt.Errorf("%s: block %d is a %q, not an X509 CRL: %w; %s", path, blocks, block.Type, ErrCRLDamaged, fix)
		}
		rl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: CRL %d does not parse (%v): %w; %s", path, blocks, err, ErrCRLDamaged, fix)
		}
		var signer *x509.Certificate
		for _, ca := range cas {
			if ca != nil && bytes.Equal(rl.RawIssuer, ca.RawSubject) && rl.CheckSignatureFrom(ca) == nil {
				signer = ca
				break
			}
		}
		if signer == nil {
			return nil, fmt.Errorf("%s: CRL %d (issuer %s) is not signed by a CA of %s: %w; %s", path, blocks, rl.Issuer, dir, ErrCRLDamaged, fix)
		}
		if rl.Number == nil || rl.Number.Sign() < 0 || !rl.Number.IsInt64() || rl.Number.Int64() > maxCRLNumber {
			return nil, fmt.Errorf("%s: CRL %d has CRL number %v, outside what mqttctl numbers (1 to %d): a CRL made elsewhere; %w; %s", path, blocks, rl.Number, int64(maxCRLNumber), ErrCRLDamaged, fix)
		}
		if rl.Number.Int64() > out.Number {
			out.Number = rl.Number.Int64()
		}
		signers[signer] = true
		if rl.ThisUpdate.After(latest) {
			latest = rl.ThisUpdate
		}
		for _, e := range rl.RevokedCertificateEntries {
			out.Revoked = append(out.Revoked, revocation{Serial: e.SerialNumber, At: e.RevocationTime.UTC(), Reason: e.ReasonCode, Issuer: signer.Subject.String()})
		}
	}
	if blocks == 0 || len(bytes.TrimSpace(rest)) > 0 {
		return nil, fmt.Errorf("%s holds data that is not a PEM CRL (empty or truncated): %w; %s", path, ErrCRLDamaged, fix)
	}
	// mqttctl writes one CRL per CA that exists: one missing is a CRL cut
	// short, and the revocations it held would be lost. (A CRL written
	// before an intermediate was made has none of it.)
	for _, ca := range cas {
		if ca != nil && !signers[ca] && !latest.Before(ca.NotBefore) {
			return nil, fmt.Errorf("%s has no CRL of %s, though mqttctl writes one for each CA (the file was cut or replaced): %w; %s", path, ca.Subject, ErrCRLDamaged, fix)
		}
	}
	return out, nil
}

// reasonName is the name in Reasons of a reason code.
func reasonName(code int) string {
	for n, c := range Reasons {
		if c == code {
			return n
		}
	}
	return "unspecified"
}

// serialOf parses an index serial ("0A:1B...").
func serialOf(e Entry) (*big.Int, bool) {
	return new(big.Int).SetString(normSerial(e.Serial), 16)
}

// applyRevocations marks revoked the index entries that crl revokes and
// that the index says are valid, and returns the revocations that no entry
// of the index has (their certificates' entries are gone), which every new
// CRL must carry on. notes says what changed.
func (idx *Index) applyRevocations(crl *diskCRL) (orphans []revocation, notes []string) {
	for _, r := range crl.Revoked {
		found := false
		for i := range idx.Certificates {
			e := &idx.Certificates[i]
			n, ok := serialOf(*e)
			if !ok || n.Cmp(r.Serial) != 0 || e.Issuer != r.Issuer {
				continue
			}
			found = true
			if e.Status != "revoked" {
				e.Status, e.RevokedAt, e.RevocationReason = "revoked", r.At, reasonName(r.Reason)
				notes = append(notes, fmt.Sprintf("%s (serial %s) is revoked in %s but %s listed it valid (a revoke was interrupted, or the index rebuilt): it is recorded revoked again",
					e.Name, e.Serial, CRLFile, IndexFile))
			}
		}
		if !found {
			orphans = append(orphans, r)
		}
	}
	if crl.Number > idx.CRLNumber {
		if idx.CRLNumber > 0 || len(idx.Certificates) > 0 && !idx.Rebuilt {
			notes = append(notes, fmt.Sprintf("%s has CRL number %d, %s recorded %d: numbering goes on from %d", CRLFile, crl.Number, IndexFile, idx.CRLNumber, crl.Number))
		}
		idx.CRLNumber = crl.Number
	}
	return orphans, notes
}
