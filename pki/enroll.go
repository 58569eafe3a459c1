package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/internal/errs"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/internal/ident"
)

// Kinds of enrolment refusals (errors.Is), for the EST server's status
// codes.
var (
	// ErrEnrollAuth: the request is not authorised (a wrong, used, revoked
	// or expired token; no, a foreign, a revoked or an expired
	// certificate): 401.
	ErrEnrollAuth = errors.New("not authorised to enrol")
	// ErrEnrollPolicy: authorised, but the request asks for what the
	// policy does not give (another name, a weak key, extensions): 403.
	ErrEnrollPolicy = errors.New("refused by the enrolment policy")
)

// How an enrolment was authorised (Enrolled.How, the audit log).
const (
	AuthToken     = "token"
	AuthBootstrap = "bootstrap-certificate"
	AuthRenewal   = "current-certificate"
	// A claim certificate (provisioning over MQTT) with a token, or alone
	// for a name under its prefix.
	AuthClaimToken  = "claim-certificate+token"
	AuthClaimPrefix = "claim-certificate+prefix"
)

// EnrollRequest is one EST simpleenroll or simplereenroll.
type EnrollRequest struct {
	CSR *x509.CertificateRequest
	// Reenroll: authorised by Peer, the device's current certificate
	// (simplereenroll). Otherwise by TokenName/Token, or by Peer being a
	// bootstrap certificate.
	Reenroll bool
	// Claim: Peer is a claim certificate asking for a device's
	// certificate (provisioning over MQTT), with TokenName/Token or, for a
	// name under the claim's prefix, alone.
	Claim            bool
	TokenName, Token string
	Peer             []*x509.Certificate // TLS client certificates, leaf first
	// RenewAfterExpiry lets an expired certificate re-enrol within this
	// long after its end (0: never).
	RenewAfterExpiry time.Duration
	Days             int // 0: DefaultLeafDays
}

// Enrolled is an issued certificate.
type Enrolled struct {
	Name  string
	Cert  *x509.Certificate
	Chain []*x509.Certificate // intermediates, if any
	How   string
	// AuthSerial is the serial of the certificate that authorised it
	// (AuthRenewal, AuthBootstrap), for the audit log.
	AuthSerial string
	// Repeat: the certificate was issued before, to a request whose
	// answer the device did not get; it is answered again, not issued.
	Repeat bool
}

func refuse(kind error, format string, a ...any) error {
	return errs.New(fmt.Sprintf(format, a...), kind)
}

// Enroll authorises an enrolment and issues its client certificate, in one
// journaled change with the token's redemption: a crash leaves either
// both (the certificate recorded, the token used) or neither, and two uses
// of one token, serialised by the directory's lock, issue one certificate.
// Only the CSR's public key is used (its signature is checked); the
// subject and extensions come from the client profile.
func (d *Dir) Enroll(r EnrollRequest) (*Enrolled, error) {
	if r.Days == 0 {
		r.Days = DefaultLeafDays
	}
	if _, err := leafDays(r.Days, false); err != nil {
		return nil, err
	}
	if err := CheckEnrollCSR(r.CSR); err != nil {
		return nil, err
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	if r.Claim && len(r.Peer) == 0 {
		return nil, refuse(ErrEnrollAuth, "no claim certificate")
	}
	if !r.Reenroll && (r.TokenName != "" || r.Token != "") && !d.tokenMayMatch(r.TokenName, r.Token) {
		return nil, errs.New(fmt.Sprintf("token of %q: no unused token of that name matches", r.TokenName), ErrEnrollAuth)
	}
	s, err := d.begin()
	if err != nil {
		return nil, err
	}
	defer s.end()
	if s.root == nil {
		return nil, noCA(d.Path)
	}
	tf, err := d.loadTokens()
	if err != nil {
		return nil, err
	}
	now := d.now()
	cn := r.CSR.Subject.CommonName
	out := &Enrolled{Name: cn}
	var (
		tok       *Token
		replace   bool
		bootstrap string // the fingerprint of the bootstrap certificate that authorised it
		subj      = pkix.Name{CommonName: cn, Organization: []string{orgOf(s.root, DefaultOrg)}, OrganizationalUnit: []string{ClientOU}}
	)
	switch {
	case r.Claim:
		e, leaf, err := s.peerEntry(r.Peer, x509.ExtKeyUsageClientAuth, 0)
		if err != nil {
			return nil, err
		}
		if e.Profile != ProfileClaim || !IsClaim(leaf) {
			return nil, refuse(ErrEnrollAuth, "the TLS client certificate is a %s certificate, not a claim certificate: only a claim certificate provisions a device", e.Profile)
		}
		out.AuthSerial = e.Serial
		if r.TokenName != "" || r.Token != "" {
			var again []*x509.Certificate
			if tok, again, err = s.redeemToken(tf, r, now); again != nil {
				return &Enrolled{Name: cn, Cert: again[0], Chain: again[1:], How: AuthClaimToken, AuthSerial: e.Serial, Repeat: true}, nil
			} else if err != nil {
				return nil, err
			}
			out.How, replace = AuthClaimToken, tok.Replace
			break
		}
		prefix := ClaimPrefix(leaf)
		if prefix == "" {
			return nil, refuse(ErrEnrollAuth, "the claim certificate %s (serial %s) provisions only with a one-time token (it was issued without a prefix): send the device's token with the request", e.Name, e.Serial)
		}
		if !strings.HasPrefix(cn, prefix) || len(cn) == len(prefix) {
			return nil, refuse(ErrEnrollPolicy, "the request's CN %q does not start with %q, the prefix the claim certificate %s may provision without a token: name the device %sSOMETHING, or send its token", cn, prefix, e.Name, prefix)
		}
		if tf.unused(cn, now) >= 0 {
			return nil, refuse(ErrEnrollPolicy, "%s has an unused enrolment token: it enrols with that token, not by the claim's prefix", cn)
		}
		// The device whose answer was lost asks again for the same key
		// (the CSR's signature proves it holds it) within the repeat
		// window: the same certificate, nothing issued.
		slot := filepath.ToSlash(filepath.Join(ClientsDir, cn+".crt"))
		if cur := s.idx.find(slot); cur != nil && now.Sub(cur.NotBefore) < TokenRepeatWindow+clockSkew {
			if again := s.repeatOf(slot, cur, cur.Serial, r.CSR); again != nil {
				return &Enrolled{Name: cn, Cert: again[0], Chain: again[1:], How: AuthClaimPrefix, AuthSerial: e.Serial, Repeat: true}, nil
			}
		}
		out.How = AuthClaimPrefix
	case r.Reenroll:
		e, leaf, err := s.peerEntry(r.Peer, x509.ExtKeyUsageClientAuth, r.RenewAfterExpiry)
		if err != nil {
			return nil, err
		}
		if e.Profile == ProfileBootstrap || IsBootstrap(leaf) {
			return nil, refuse(ErrEnrollAuth, "the TLS client certificate (serial %s) carries the bootstrap mark: a bootstrap certificate enrols at simpleenroll; re-enrolment takes the device's client certificate", e.Serial)
		}
		if e.Profile != ProfileClient {
			return nil, refuse(ErrEnrollAuth, "the TLS client certificate is a %s certificate: re-enrolment takes the device's client certificate", e.Profile)
		}
		// Only the name's current certificate renews: a replaced one
		// (even the last, kept as .prev) would let a stolen old pair
		// renew beside the device for ever.
		slot := filepath.ToSlash(filepath.Join(ClientsDir, e.Name+".crt"))
		if cur := s.idx.find(slot); e.ReplacedBy != "" || isPrev(e.Cert) || cur == nil || cur.Fingerprint != e.Fingerprint {
			// The device whose answer was lost (or whose swap crashed)
			// asks again with the pair it still holds, for the key the
			// lost certificate certifies (the CSR's signature proves it
			// holds that key): it gets that certificate again, and
			// nothing is issued.
			if again := s.repeatOf(slot, cur, e.ReplacedBy, r.CSR); again != nil {
				return &Enrolled{Name: e.Name, Cert: again[0], Chain: again[1:], How: AuthRenewal, AuthSerial: e.Serial, Repeat: true}, nil
			}
			now := "none"
			if cur != nil {
				now = cur.Serial
			}
			return nil, refuse(ErrEnrollAuth, "a certificate that a renewal replaced cannot renew: use the current one (the TLS client certificate %s has serial %s; %s's current certificate has serial %s)", e.Name, e.Serial, e.Name, now)
		}
		if !bytes.Equal(r.CSR.RawSubject, leaf.RawSubject) && r.CSR.Subject.String() != leaf.Subject.String() {
			return nil, refuse(ErrEnrollPolicy, "the request's subject %q is not the certificate's %q (RFC 7030 4.2.2: re-enrolment keeps the subject)", r.CSR.Subject, leaf.Subject)
		}
		if !slices.Equal(SANs(leaf), SANs(&x509.Certificate{DNSNames: r.CSR.DNSNames, IPAddresses: r.CSR.IPAddresses, EmailAddresses: r.CSR.EmailAddresses, URIs: r.CSR.URIs})) {
			return nil, refuse(ErrEnrollPolicy, "the request's subjectAltName is not the certificate's (RFC 7030 4.2.2)")
		}
		out.Name, out.How, out.AuthSerial, replace = e.Name, AuthRenewal, e.Serial, true
		subj = leaf.Subject
		subj.ExtraNames = nil
	case r.TokenName != "" || r.Token != "":
		var again []*x509.Certificate
		if tok, again, err = s.redeemToken(tf, r, now); again != nil {
			return &Enrolled{Name: cn, Cert: again[0], Chain: again[1:], How: AuthToken, Repeat: true}, nil
		} else if err != nil {
			return nil, err
		}
		out.How, replace = AuthToken, tok.Replace
	case len(r.Peer) > 0:
		e, leaf, err := s.peerEntry(r.Peer, x509.ExtKeyUsageClientAuth, 0)
		if err != nil {
			return nil, err
		}
		if e.Profile != ProfileBootstrap || !IsBootstrap(leaf) {
			return nil, refuse(ErrEnrollAuth, "the TLS client certificate is a %s certificate, not a bootstrap one: a device re-enrols at simplereenroll", e.Profile)
		}
		if cn != e.Name {
			return nil, refuse(ErrEnrollPolicy, "the request's CN %q is not the bootstrap certificate's name %q", cn, e.Name)
		}
		if used := s.bootstrapUsed(e); used != "" {
			return nil, refuse(ErrEnrollAuth, "the bootstrap certificate %s (serial %s) enrols its name once, and %s has a client certificate from after it (serial %s): the device renews with that one, or enrols again with a new token", e.Name, e.Serial, e.Name, used)
		}
		out.How, out.AuthSerial, bootstrap = AuthBootstrap, e.Serial, e.Fingerprint
	default:
		return nil, refuse(ErrEnrollAuth, "no credentials: give NAME:TOKEN (HTTP Basic) or a bootstrap certificate (TLS client authentication)")
	}
	rel := filepath.ToSlash(filepath.Join(ClientsDir, out.Name+".crt"))
	cur := s.idx.find(rel)
	if cur != nil && cur.Status != "revoked" && now.Before(cur.NotAfter) && !replace {
		return nil, refuse(ErrEnrollPolicy, "%s already has a certificate (serial %s, until %s): a device renews it at simplereenroll", out.Name, cur.Serial, cur.NotAfter.Format(time.DateOnly))
	}
	if err := s.checkSubjectFree(subj, rel); err != nil {
		return nil, errs.New(err.Error(), ErrEnrollPolicy)
	}
	if err := s.checkIdentityFree(subj.CommonName, rel, replace); err != nil {
		return nil, errs.New(err.Error(), ErrEnrollPolicy)
	}
	if err := s.refuseCompromisedKey(r.CSR.PublicKey, "enrol "+out.Name); err != nil {
		return nil, errs.New(err.Error(), ErrEnrollPolicy)
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, err
	}
	nb, na := s.validity(r.Days)
	cert, err := iss.Sign(Template{Profile: ProfileClient, Subject: subj, PublicKey: r.CSR.PublicKey, NotBefore: nb, NotAfter: na})
	if err != nil {
		return nil, err
	}
	if err := s.placeEnrolled(rel, cur, cert, iss); err != nil {
		return nil, err
	}
	if bootstrap != "" {
		// Used: it enrols no more (in the same change as the certificate).
		s.idx.Certificates[s.idx.byFingerprint(bootstrap)].Enrolled = FormatSerial(cert)
	}
	if tok != nil {
		s.idx.find(rel).Token = tok.SHA256
		tok.UsedAt, tok.Serial = now.UTC().Truncate(time.Second), FormatSerial(cert)
		if err := s.stageTokens(tf); err != nil {
			return nil, err
		}
	}
	if err := s.commit(); err != nil {
		return nil, err
	}
	out.Cert, out.Chain = cert, iss.Chain
	return out, nil
}

// redeemToken finds the request's unused token (marked used in tf, which
// the caller stages) for a request whose CN is the token's name. A token
// used less than TokenRepeatWindow ago for the CSR's key gives instead the
// certificate it was used for (again), to a device whose answer was lost.
func (s *state) redeemToken(tf *tokenFile, r EnrollRequest, now time.Time) (*Token, []*x509.Certificate, error) {
	cn := r.CSR.Subject.CommonName
	tok, err := tf.redeem(r.TokenName, r.Token, now)
	if err != nil {
		if used := tf.usedRecently(r.TokenName, r.Token, now); used != nil && cn == r.TokenName {
			slot := filepath.ToSlash(filepath.Join(ClientsDir, cn+".crt"))
			if again := s.repeatOf(slot, s.idx.find(slot), used.Serial, r.CSR); again != nil {
				return nil, again, nil
			}
		}
		return nil, nil, errs.New(fmt.Sprintf("token of %q: %v", r.TokenName, err), ErrEnrollAuth)
	}
	if cn != r.TokenName {
		return nil, nil, refuse(ErrEnrollPolicy, "the request's CN %q is not the token's name %q", cn, r.TokenName)
	}
	for _, e := range s.idx.Certificates {
		if e.Token != "" && e.Token == tok.SHA256 {
			return nil, nil, refuse(ErrEnrollAuth, "the token of %q was used for certificate serial %s (index.yaml), though %s calls it unused: %s looks restored from an older copy; make a new token", r.TokenName, e.Serial, TokensFile, TokensFile)
		}
	}
	return tok, nil, nil
}

// placeEnrolled stages an enrolled certificate at rel (its key is on the
// device) and records it; a certificate already there is kept as its
// predecessor (rel's .prev.crt), as pki renew does, and stays valid until
// it expires or is revoked.
func (s *state) placeEnrolled(rel string, cur *Entry, cert *x509.Certificate, iss *Issuer) error {
	path := s.d.path(rel)
	data := EncodeCerts(append([]*x509.Certificate{cert}, iss.Chain...)...)
	name := cert.Subject.CommonName
	if cur == nil || !fileExists(path) {
		if err := fsx.MkdirPrivate(s.d.path(ClientsDir)); err != nil {
			return err
		}
		if err := s.txn.Add(path, data, 0o644, false); err != nil {
			return err
		}
		s.idx.Put(name, ProfileClient, cert, rel, "")
		return nil
	}
	old, err := readFile(path)
	if err != nil {
		return err
	}
	if err := s.txn.AddLike(s.d.path(prevPath(rel)), old, path, 0o644); err != nil {
		return err
	}
	if err := s.txn.AddLike(path, data, path, 0o644); err != nil {
		return err
	}
	// A key the directory holds for the old certificate stays where it is
	// (a journal may only remove kept predecessors): the old entry keeps
	// naming it, and the new certificate's key is on the device.
	prev := &s.idx.Certificates[s.idx.byFingerprint(cur.Fingerprint)]
	prev.Cert = prevPath(rel)
	prev.ReplacedBy = FormatSerial(cert)
	s.idx.Put(cur.Name, ProfileClient, cert, rel, "")
	return nil
}

// bootstrapUsed returns the serial of a client certificate of the
// bootstrap certificate b's name that b enrolled (recorded in b's entry),
// or that was issued after b (an index rebuilt from the files has no
// record); "" when b has not been used.
func (s *state) bootstrapUsed(b *Entry) string {
	if b.Enrolled != "" {
		return b.Enrolled
	}
	for _, e := range s.idx.Certificates {
		if e.Name == b.Name && e.Profile == ProfileClient && e.NotBefore.After(b.NotBefore) {
			return e.Serial
		}
	}
	return ""
}

// repeatOf returns the certificate (and chain) at slot when it is the
// current, valid certificate cur, of serial want (the one that replaced
// the peer's, or the one a token was used for), and it certifies the
// CSR's key; otherwise nil.
func (s *state) repeatOf(slot string, cur *Entry, want string, csr *x509.CertificateRequest) []*x509.Certificate {
	if cur == nil || want == "" || normSerial(cur.Serial) != normSerial(want) || cur.Status == "revoked" || !s.d.now().Before(cur.NotAfter) {
		return nil
	}
	data, err := readFile(s.d.path(slot))
	if err != nil {
		return nil
	}
	certs, err := ParseCerts(data, slot)
	if err != nil || Fingerprint(certs[0]) != cur.Fingerprint {
		return nil
	}
	if k, ok := certs[0].PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(csr.PublicKey) {
		return nil
	}
	return certs
}

// peerEntry verifies a TLS client's certificate chain against the
// directory's CA (now, or at its end when it ended less than grace ago),
// and returns its index entry, which must not be revoked (the index holds
// crl.pem's revocations too).
func (s *state) peerEntry(peer []*x509.Certificate, eku x509.ExtKeyUsage, grace time.Duration) (*Entry, *x509.Certificate, error) {
	if len(peer) == 0 {
		return nil, nil, refuse(ErrEnrollAuth, "no TLS client certificate")
	}
	leaf := peer[0]
	roots, inter := x509.NewCertPool(), x509.NewCertPool()
	roots.AddCert(s.root)
	if s.inter != nil {
		inter.AddCert(s.inter)
	}
	now := s.d.now()
	at := now
	if now.After(leaf.NotAfter) && grace > 0 && now.Before(leaf.NotAfter.Add(grace)) {
		at = leaf.NotAfter.Add(-time.Second)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: at, KeyUsages: []x509.ExtKeyUsage{eku}}); err != nil {
		return nil, nil, refuse(ErrEnrollAuth, "the TLS client certificate (CN %q, serial %s) does not verify against this CA: %v", leaf.Subject.CommonName, FormatSerial(leaf), err)
	}
	i := s.idx.byFingerprint(Fingerprint(leaf))
	if i < 0 {
		return nil, nil, refuse(ErrEnrollAuth, "the TLS client certificate (serial %s) is not in %s", FormatSerial(leaf), IndexFile)
	}
	e := &s.idx.Certificates[i]
	if e.Status == "revoked" {
		return nil, nil, refuse(ErrEnrollAuth, "the TLS client certificate %s (serial %s) is revoked", e.Name, e.Serial)
	}
	return e, leaf, nil
}

// CheckEnrollCSR applies the enrolment policy to a request: its signature
// verifies; its CN is a valid MQTT identity; its key is P-256, P-384,
// Ed25519 or RSA of 2048 to 8192 bits; it asks for no extension a client
// certificate would not have (a CA, names, anything unknown). Refusals
// wrap ErrEnrollPolicy.
func CheckEnrollCSR(csr *x509.CertificateRequest) error {
	if csr == nil {
		return refuse(ErrEnrollPolicy, "no request")
	}
	switch k := csr.PublicKey.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return refuse(ErrEnrollPolicy, "the key is on curve %s: use P-256, P-384, Ed25519 or RSA of 2048 bits or more", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 || n > 8192 {
			return refuse(ErrEnrollPolicy, "the key is RSA-%d: use RSA of 2048 to 8192 bits, P-256, P-384 or Ed25519", n)
		}
	default:
		return refuse(ErrEnrollPolicy, "the key type %T is not accepted: use P-256, P-384, Ed25519 or RSA of 2048 bits or more", csr.PublicKey)
	}
	if err := csr.CheckSignature(); err != nil {
		return refuse(ErrEnrollPolicy, "the request's signature does not verify: %v", err)
	}
	if csr.Subject.CommonName == "" {
		return refuse(ErrEnrollPolicy, "the request has no CN (the device's name)")
	}
	if err := checkOneCN(csr.Subject); err != nil {
		return errs.New(err.Error(), ErrEnrollPolicy)
	}
	if err := ident.Validate(csr.Subject.CommonName); err != nil {
		return refuse(ErrEnrollPolicy, "the request's CN is the device's MQTT identity: %v", err)
	}
	if isPrev(csr.Subject.CommonName + ".crt") {
		return refuse(ErrEnrollPolicy, "the request's CN %q ends in %q, kept for the certificates a renewal replaces", csr.Subject.CommonName, prevSuffix)
	}
	for _, e := range csr.Extensions {
		if err := allowedExtension(e); err != nil {
			return refuse(ErrEnrollPolicy, "the request asks for %v; the client profile sets the extensions: make the request without it", err)
		}
	}
	return nil
}

var oidCN = asn1.ObjectIdentifier{2, 5, 4, 3}

// checkOneCN refuses a subject with more than one CN (/CN=alice/CN=bob):
// programs disagree on which is the name (Go takes the last, others the
// first).
func checkOneCN(n pkix.Name) error {
	var cns []string
	for _, a := range n.Names {
		if a.Type.Equal(oidCN) {
			cns = append(cns, fmt.Sprint(a.Value))
		}
	}
	if len(cns) > 1 {
		return fmt.Errorf("the request's subject has %d CNs (%s): programs disagree on which one names it; make it with exactly one", len(cns), strings.Join(cns, ", "))
	}
	return nil
}

var (
	oidKeyUsage     = asn1.ObjectIdentifier{2, 5, 29, 15}
	oidExtKeyUsage  = asn1.ObjectIdentifier{2, 5, 29, 37}
	oidSubjectKeyID = asn1.ObjectIdentifier{2, 5, 29, 14}
	oidClientAuth   = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 3, 2}
	oidSAN          = asn1.ObjectIdentifier{2, 5, 29, 17}
)

// allowedExtension accepts a requested extension the client profile gives
// anyway: basicConstraints CA:FALSE, keyUsage within digitalSignature and
// keyEncipherment, extKeyUsage clientAuth, a subjectKeyIdentifier.
func allowedExtension(e pkix.Extension) error {
	switch {
	case e.Id.Equal(oidBasicConstraints):
		var bc struct {
			IsCA bool `asn1:"optional"`
			Max  int  `asn1:"optional,default:-1"`
		}
		if rest, err := asn1.Unmarshal(e.Value, &bc); err != nil || len(rest) > 0 || bc.IsCA {
			return errors.New("basicConstraints CA:TRUE (a CA certificate)")
		}
	case e.Id.Equal(oidKeyUsage):
		var bits asn1.BitString
		if rest, err := asn1.Unmarshal(e.Value, &bits); err != nil || len(rest) > 0 {
			return errors.New("an unreadable keyUsage")
		}
		for i := 0; i < bits.BitLength; i++ {
			if bits.At(i) == 1 && i != 0 && i != 2 { // digitalSignature, keyEncipherment
				return fmt.Errorf("keyUsage bit %d (beyond digitalSignature and keyEncipherment)", i)
			}
		}
	case e.Id.Equal(oidExtKeyUsage):
		var ekus []asn1.ObjectIdentifier
		if rest, err := asn1.Unmarshal(e.Value, &ekus); err != nil || len(rest) > 0 {
			return errors.New("an unreadable extKeyUsage")
		}
		for _, u := range ekus {
			if !u.Equal(oidClientAuth) {
				return fmt.Errorf("extKeyUsage %s (a client certificate has clientAuth only)", u)
			}
		}
	case e.Id.Equal(oidSubjectKeyID):
	case e.Id.Equal(oidSAN):
		return errors.New("subjectAltName (a client is named by its CN only)")
	default:
		return fmt.Errorf("the extension %s", e.Id)
	}
	return nil
}

// CheckIssuer opens the directory as an enrolment would and reads the
// issuing CA's key (asking CAPassword if it is encrypted): a server checks
// at start that it will be able to issue.
func (d *Dir) CheckIssuer() error {
	if !fileExists(d.path(RootCertFile)) {
		return noCA(d.Path)
	}
	s, err := d.begin()
	if err != nil {
		return err
	}
	defer s.end()
	if _, err := d.loadTokens(); err != nil {
		return err
	}
	_, err = s.issuer()
	return err
}
