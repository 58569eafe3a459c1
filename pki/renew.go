package pki

import (
	"crypto"
	"crypto/x509"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/errs"
)

// RenewOptions says which certificates Dir.Renew renews.
type RenewOptions struct {
	// Name is a leaf's name (pki list shows it) or its certificate's path
	// relative to the directory (clients/a.crt).
	Name string
	// Expiring, instead of Name: every current leaf that ends within this
	// window from now (already ended included).
	Expiring time.Duration
	// Rekey makes a new key (of the same type) instead of keeping the key.
	Rekey bool
	// Days is the new validity; 0 means DefaultLeafDays.
	Days int
	// CRLDays is the validity of the CRL that renewing with Expiring
	// rewrites; 0 means DefaultCRLDays.
	CRLDays int
}

// ErrNotAllRenewed: renewing with Expiring renewed some certificates (and
// rewrote the CRL) but not all; the error lists the others and why.
var ErrNotAllRenewed = errors.New("some certificates were not renewed")

// ErrRekeyCSR: a signed CSR's key is the device's; it cannot be made here.
var ErrRekeyCSR = errors.New("the key of a signed CSR is not in the directory")

// Renew issues a new certificate for the same identity: the same subject,
// names, profile and (unless Rekey) key, signed by the issuing CA, with a
// new serial and validity. The certificate it replaces is kept beside it as
// NAME.prev.crt (and NAME.prev.key with Rekey) until it expires or is
// revoked, so a client or broker can be moved back; it stays valid. A
// revoked certificate is not renewed. Everything is written together, or
// nothing.
//
// With Expiring it is the directory's maintenance: it renews every
// certificate it can, rewrites the CRL in the same change (so that the
// CRL a broker enforces never goes stale behind a failed renewal), and
// returns the report with an error wrapping ErrNotAllRenewed that lists
// the certificates it could not renew.
func (d *Dir) Renew(o RenewOptions) (*Report, error) {
	if (o.Name == "") == (o.Expiring == 0) {
		return nil, errors.New("give the certificate's name, or a window to renew everything expiring within it")
	}
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	warn, err := leafDays(o.Days, false)
	if err != nil {
		return nil, err
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	s, err := d.begin(warn)
	if err != nil {
		return nil, err
	}
	defer s.end()
	s.prunePrev()
	var targets []int
	if o.Name != "" {
		if targets, err = s.byName(o.Name, false); err != nil {
			return nil, err
		}
	} else {
		now := s.d.now()
		for i, e := range s.idx.Certificates {
			if e.Status == "revoked" || e.ReplacedBy != "" || !e.NotAfter.Before(now.Add(o.Expiring)) {
				continue
			}
			if e.Profile == ProfileBootstrap || e.Profile == ProfileClaim {
				// Its factory window is not stretched to a certificate's
				// lifetime: a device that missed it gets a new one.
				s.rep.add("kept", string(e.Profile)+" certificate", s.d.path(e.Cert), "a "+string(e.Profile)+" certificate is not renewed: "+explain.Reissue(string(e.Profile), e.Name, s.d.Path))
				continue
			}
			if e.Profile.IsCA() {
				s.rep.warn("the %s CA %s ends on %s: a CA is not renewed in place; make a new CA and reissue its certificates before then",
					e.Profile, s.d.path(e.Cert), e.NotAfter.Format(time.DateOnly))
				continue
			}
			if iss, err := s.issuer(); err == nil && !e.NotAfter.Before(iss.Cert.NotAfter) {
				// Already ends with its CA: renewing cannot make it last longer.
				s.rep.warn("%s ends with its CA on %s and cannot be renewed beyond it: make a new CA and reissue", s.d.path(e.Cert), e.NotAfter.Format(time.DateOnly))
				continue
			}
			targets = append(targets, i)
		}
		if len(targets) == 0 {
			s.rep.add("kept", "every certificate", s.d.Path, "nothing ends within "+window(o.Expiring))
		}
	}
	var failed []string
	for _, i := range targets {
		staged := len(s.txn.Files())
		if err := s.renew(i, o); err != nil {
			if o.Name != "" || len(s.txn.Files()) != staged {
				return nil, err
			}
			failed = append(failed, err.Error())
		}
	}
	if o.Expiring > 0 {
		info, err := s.stageCRL(o.CRLDays)
		if err != nil {
			return nil, err
		}
		s.rep.add("wrote", "CRL", info.Path, fmt.Sprintf("CRL number %d, %d revoked, next update %s", info.Number, info.Revoked, info.NextUpdate.Format(time.DateOnly)))
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		return s.rep, errs.New(fmt.Sprintf("renewed %d of %d certificates and rewrote the CRL; not renewed:\n  %s", len(targets)-len(failed), len(targets), strings.Join(failed, "\n  ")), ErrNotAllRenewed)
	}
	return s.rep, nil
}

// renew renews the index entry at position i (see Renew).
func (s *state) renew(i int, o RenewOptions) error {
	e := s.idx.Certificates[i]
	if e.Profile.IsCA() {
		return fmt.Errorf("%s is the %s CA: a CA is not renewed in place; make a new CA and reissue its certificates", e.Name, e.Profile)
	}
	if e.Profile == ProfileBootstrap || e.Profile == ProfileClaim {
		return fmt.Errorf("%s is a %s certificate: it is not renewed (its factory window would become a certificate's lifetime); a device that missed it gets a new one: %s",
			s.d.path(e.Cert), e.Profile, explain.Reissue(string(e.Profile), e.Name, s.d.Path))
	}
	abs := func(p string) string {
		if filepath.IsAbs(p) {
			return p
		}
		return s.d.path(p)
	}
	certPath := abs(e.Cert)
	data, err := readFile(certPath)
	if err != nil {
		return fmt.Errorf("renew %s: %w", e.Name, err)
	}
	certs, err := ParseCerts(data, certPath)
	if err != nil {
		return err
	}
	old := certs[0]
	if Fingerprint(old) != e.Fingerprint {
		return fmt.Errorf("%s is not the certificate %s records for %s (serial %s): it was replaced by hand; restore it, or issue a new one: %s",
			certPath, s.d.path(IndexFile), e.Name, e.Serial, reissue(e, s.d.Path))
	}
	var (
		pub     = old.PublicKey
		newKey  crypto.Signer
		keyPath string
	)
	if e.Key != "" {
		keyPath = abs(e.Key)
		if !fileExists(keyPath) {
			return errs.New(fmt.Sprintf("%s exists but its key %s is missing: restore the key, or issue a new pair: %s", certPath, keyPath, reissue(e, s.d.Path)), ErrHalfPair)
		}
	}
	switch {
	case o.Rekey && e.Key == "":
		return errs.New(fmt.Sprintf("%s was signed from a CSR or issued with its key in a batch bundle: its key is on the device, so a new key must come from there; have the device make a new CSR and sign it: %s",
			certPath, explain.SignCSR(s.d.Path)), ErrRekeyCSR)
	case o.Rekey:
		// The kept predecessor's key would be overwritten: refuse while
		// a certificate still valid uses it.
		if displaced := s.idx.find(prevPath(e.Cert)); displaced != nil && displaced.Key == prevPath(e.Key) && displaced.Status != "revoked" &&
			s.d.now().Before(displaced.NotAfter) && fileExists(prevPath(keyPath)) {
			return fmt.Errorf("%s is the key of %s (serial %s), still valid until %s: a new key now would destroy it; revoke that certificate first (%s), or renew without a new key",
				prevPath(keyPath), prevPath(certPath), displaced.Serial, displaced.NotAfter.Format(time.DateOnly), explain.RevokeSerial(displaced.Serial, s.d.Path))
		}
		kt, err := ParseKeyType(keyTypeOf(old.PublicKey))
		if err != nil {
			kt = DefaultKeyType
		}
		if newKey, err = GenerateKey(kt); err != nil {
			return err
		}
		pub = newKey.Public()
	case e.Key != "":
		k, err := ReadKey(keyPath, nil)
		if err != nil {
			return err
		}
		if !keyMatches(k, old.PublicKey) {
			return fmt.Errorf("%s does not match %s: restore the right key, or renew with a new one: %s", keyPath, certPath, explain.Renew(e.Name, s.d.Path, true))
		}
	}
	if err := s.refuseCompromisedKey(pub, "renew "+certPath); err != nil {
		return err
	}
	iss, err := s.issuer()
	if err != nil {
		return err
	}
	nb, na := s.validity(o.Days)
	if na.After(iss.Cert.NotAfter) {
		s.rep.warn("%s would outlive its CA: it ends with the CA on %s", certPath, iss.Cert.NotAfter.Format(time.DateOnly))
	}
	subj := old.Subject
	subj.ExtraNames = nil
	cert, err := iss.Sign(Template{Profile: e.Profile, Subject: subj, Hosts: Hosts{DNS: old.DNSNames, IPs: old.IPAddresses},
		PublicKey: pub, NotBefore: nb, NotAfter: na})
	if err != nil {
		return err
	}
	if displaced := s.idx.find(prevPath(e.Cert)); displaced != nil && displaced.Status != "revoked" && s.d.now().Before(displaced.NotAfter) {
		s.rep.warn("%s held an earlier certificate (serial %s), still valid until %s; it is no longer kept on disk: if nothing uses it, revoke it: %s",
			prevPath(certPath), displaced.Serial, displaced.NotAfter.Format(time.DateOnly), explain.RevokeSerial(displaced.Serial, s.d.Path))
	}
	// The predecessor first, with the old file's mode and group, then the
	// new files in place of the old ones.
	if err := s.txn.AddLike(prevPath(certPath), data, certPath, 0o644); err != nil {
		return err
	}
	if err := s.txn.AddLike(certPath, EncodeCerts(append([]*x509.Certificate{cert}, iss.Chain...)...), certPath, 0o644); err != nil {
		return err
	}
	prev := &s.idx.Certificates[i]
	prev.Cert = prevPath(e.Cert)
	if newKey != nil {
		oldKey, err := readFile(keyPath)
		if err != nil {
			return fmt.Errorf("renew %s: %w", e.Name, err)
		}
		pemKey, err := marshalKey(newKey, nil)
		if err != nil {
			return err
		}
		if err := s.txn.AddLike(prevPath(keyPath), oldKey, keyPath, 0o600); err != nil {
			return err
		}
		if err := s.txn.AddLike(keyPath, pemKey, keyPath, 0o600); err != nil {
			return err
		}
		prev.Key = prevPath(e.Key)
	}
	prev.ReplacedBy = FormatSerial(cert)
	s.idx.Put(e.Name, e.Profile, cert, e.Cert, e.Key)
	detail := fmt.Sprintf("serial %s, until %s; the old one (valid until %s) is kept as %s", FormatSerial(cert), cert.NotAfter.UTC().Format(time.DateOnly),
		e.NotAfter.Format(time.DateOnly), filepath.Base(prevPath(certPath)))
	if newKey != nil {
		detail = "new key, " + detail
	}
	s.rep.add("renewed", string(e.Profile)+" certificate", certPath, detail)
	return nil
}

// reissue is the command that makes a new certificate for an entry.
func reissue(e Entry, dir string) string {
	switch e.Profile {
	case ProfileClient:
		return explain.ReissueClient(e.Name, dir)
	case ProfileServer, ProfileBridge:
		if e.Key == "" {
			return explain.SignCSR(dir)
		}
		return explain.ReissueServer(e.Name, dir, nil)
	}
	return explain.Reissue(string(e.Profile), e.Name, dir)
}

// window formats a duration as whole days when it is some ("30 days").
func window(d time.Duration) string {
	if day := 24 * time.Hour; d%day == 0 {
		if d == day {
			return "1 day"
		}
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}
