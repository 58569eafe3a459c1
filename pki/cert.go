// Package pki makes and checks the certificates and keys of an MQTT
// deployment: a root CA (optionally an intermediate), broker (server) and
// client certificates with separate key usages, CSR signing, inspection and
// a directory check. Keys are written unencrypted PKCS#8 with mode 0600
// (brokers start headless) except CA keys, which may be encrypted.
package pki

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/url"
	"slices"
	"strings"
	"time"

	"go.step.sm/crypto/x509util"

	"github.com/mqttctl/mqttctl/internal/errs"
)

// Profile says what a certificate is for; it alone decides the extensions.
type Profile string

// Certificate profiles.
const (
	ProfileRoot         Profile = "root"
	ProfileIntermediate Profile = "intermediate"
	ProfileServer       Profile = "server"
	ProfileClient       Profile = "client"
	// ProfileBridge is for a broker that also connects to another broker as a
	// client (mosquitto bridges): serverAuth and clientAuth.
	ProfileBridge Profile = "bridge"
	// ProfileBootstrap is a device's factory certificate: clientAuth, but
	// accepted only by the enrolment server (enroll serve), to obtain the
	// device's client certificate. It carries BootstrapPolicy and the OU
	// BootstrapOU so that serve's MQTT listeners can refuse it, and no
	// config mqttctl writes names it as an identity.
	ProfileBootstrap Profile = "bootstrap"
	// ProfileClaim is a certificate shared by a batch of devices (claim.go):
	// accepted only by serve's listeners that provision, where it may only
	// ask for a device's own certificate on $mqttctl/provision. It carries
	// ClaimPolicy and the OU ClaimOU, and, like a bootstrap certificate,
	// no digitalSignature (mosquitto refuses it).
	ProfileClaim Profile = "claim"
)

// BootstrapPolicy is the certificate policy that marks a bootstrap
// certificate (a 2.25 UUID OID, ITU-T X.667).
var BootstrapPolicy = mustOID("2.25.107744459101731994776231864044854695804")

func mustOID(s string) x509.OID {
	o, err := x509.ParseOID(s)
	if err != nil {
		panic(err)
	}
	return o
}

// IsBootstrap reports whether c is a bootstrap certificate (it carries
// BootstrapPolicy, or the OU BootstrapOU): the one test of the mark, for
// serve's listeners, the EST server, check and reindex.
func IsBootstrap(c *x509.Certificate) bool {
	for _, p := range c.Policies {
		if p.Equal(BootstrapPolicy) {
			return true
		}
	}
	return hasBootstrapOU(c.Subject)
}

// ErrBootstrapMark: a subject for another profile asks for the OU that
// marks a bootstrap certificate.
var ErrBootstrapMark = errors.New("the bootstrap mark in another profile")

// hasBootstrapOU reports whether the subject has the OU BootstrapOU (in
// any case).
func hasBootstrapOU(n pkix.Name) bool {
	return slices.ContainsFunc(n.OrganizationalUnit, func(ou string) bool { return strings.EqualFold(ou, BootstrapOU) })
}

// checkNotBootstrapOU refuses a subject of a profile other than
// bootstrap that has the OU BootstrapOU: serve would refuse such a
// certificate as a bootstrap one while mosquitto accepts it.
func checkNotBootstrapOU(n pkix.Name, what string) error {
	if hasBootstrapOU(n) {
		return errs.New(fmt.Sprintf("%s has the OU %q, the mark of a bootstrap certificate (serve refuses such a certificate as a client, mosquitto does not): make it without that OU", what, BootstrapOU), ErrBootstrapMark)
	}
	return nil
}

// ParseProfile validates a leaf --profile value.
func ParseProfile(s string) (Profile, error) {
	switch p := Profile(s); p {
	case ProfileServer, ProfileClient, ProfileBridge, ProfileBootstrap, ProfileClaim:
		return p, nil
	}
	return "", fmt.Errorf("unknown profile %q: use server, client, bridge, bootstrap or claim", s)
}

// IsCA reports whether the profile is a CA profile.
func (p Profile) IsCA() bool { return p == ProfileRoot || p == ProfileIntermediate }

// ExtKeyUsage returns the extended key usages of a leaf profile.
func (p Profile) ExtKeyUsage() []x509.ExtKeyUsage {
	switch p {
	case ProfileServer:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	case ProfileClient, ProfileBootstrap, ProfileClaim:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	case ProfileBridge:
		return []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	return nil
}

// Default validity periods.
const (
	DefaultLeafDays         = 365
	DefaultCADays           = 3650
	DefaultIntermediateDays = 1825
	// LeafWarnDays is the CA/Browser Forum limit; longer leaves get a warning.
	LeafWarnDays = 398
	// LeafMaxDays is the Apple limit; longer leaves need --force.
	LeafMaxDays = 825
	// clockSkew backdates NotBefore so that clients with a slightly slow
	// clock accept a certificate made a moment ago.
	clockSkew = time.Minute
)

// Template is what mqttctl puts in a certificate. Nothing else is copied
// from a CSR or elsewhere.
type Template struct {
	Profile   Profile
	Subject   pkix.Name
	Hosts     Hosts // SANs; for a server the CN is added when it is a host name
	PublicKey crypto.PublicKey
	NotBefore time.Time
	NotAfter  time.Time
	// ClaimPrefix: for a claim certificate, the prefix of the device names
	// it may provision without a token ("": tokens only).
	ClaimPrefix string
}

// Issuer is a CA that signs certificates.
type Issuer struct {
	Cert *x509.Certificate
	Key  crypto.Signer
	// Chain holds the certificates between Cert and the root (excluding the
	// root), in order; empty when Cert is the root.
	Chain []*x509.Certificate
}

// randomSerial returns a positive 128-bit random serial number.
func randomSerial() (*big.Int, error) {
	limit := new(big.Int).Lsh(big.NewInt(1), 128)
	for {
		n, err := rand.Int(rand.Reader, limit)
		if err != nil {
			return nil, fmt.Errorf("generate serial number: %w", err)
		}
		if n.Sign() > 0 {
			return n, nil
		}
	}
}

func (t *Template) x509() (*x509.Certificate, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	c := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               t.Subject,
		NotBefore:             t.NotBefore.UTC().Truncate(time.Second),
		NotAfter:              t.NotAfter.UTC().Truncate(time.Second),
		BasicConstraintsValid: true,
	}
	switch t.Profile {
	case ProfileRoot:
		c.IsCA = true
		c.MaxPathLen = 1
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	case ProfileIntermediate:
		c.IsCA = true
		c.MaxPathLen = 0
		c.MaxPathLenZero = true
		c.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	case ProfileServer, ProfileClient, ProfileBridge, ProfileBootstrap, ProfileClaim:
		c.KeyUsage = x509.KeyUsageDigitalSignature
		if _, ok := t.PublicKey.(*rsa.PublicKey); ok {
			c.KeyUsage |= x509.KeyUsageKeyEncipherment
		}
		if t.Profile == ProfileBootstrap {
			c.Policies = []x509.OID{BootstrapPolicy}
			// Not digitalSignature: OpenSSL's TLS servers (mosquitto)
			// refuse it as a client certificate ("unsupported certificate
			// purpose"), as serve does by the policy; the enrolment server
			// ignores key usage.
			c.KeyUsage = x509.KeyUsageContentCommitment
		}
		if t.Profile == ProfileClaim {
			c.Policies = []x509.OID{ClaimPolicy}
			c.KeyUsage = x509.KeyUsageContentCommitment // as bootstrap: mosquitto refuses it
			if t.ClaimPrefix != "" {
				c.URIs = []*url.URL{claimPrefixURI(t.ClaimPrefix)}
			}
		}
		c.ExtKeyUsage = t.Profile.ExtKeyUsage()
		hosts := t.Hosts
		if t.Profile == ProfileServer && t.Subject.CommonName != "" {
			// Modern clients ignore the CN: repeat it as a SAN. (A
			// bridge's CN is its MQTT name, not a host.)
			if h, err := parseHosts([]string{t.Subject.CommonName}); err == nil {
				merged, _ := parseHosts(append(h.All(), hosts.All()...))
				hosts = merged
			}
		}
		c.DNSNames = hosts.DNS
		c.IPAddresses = hosts.IPs
	default:
		return nil, fmt.Errorf("unknown profile %q", t.Profile)
	}
	if !c.NotAfter.After(c.NotBefore) {
		return nil, fmt.Errorf("certificate would be valid from %s to %s: the end is not after the start", c.NotBefore, c.NotAfter)
	}
	if t.Profile == ProfileServer || t.Profile == ProfileBridge {
		if len(c.DNSNames) == 0 && len(c.IPAddresses) == 0 {
			return nil, errs.New("a server certificate needs at least one host name or IP address", ErrNeedsHosts)
		}
	}
	return c, nil
}

// selfSign makes a root CA certificate for key.
func selfSign(t Template, key crypto.Signer) (*x509.Certificate, error) {
	if t.Profile != ProfileRoot {
		return nil, fmt.Errorf("only a root CA is self-signed, not a %s certificate", t.Profile)
	}
	t.PublicKey = key.Public()
	tmpl, err := t.x509()
	if err != nil {
		return nil, err
	}
	cert, err := x509util.CreateCertificate(tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("sign root CA: %w", err)
	}
	return cert, nil
}

// Sign issues a certificate for t.PublicKey. The validity is cut to end no
// later than the issuer's own; the subject may not equal the issuer's.
func (iss *Issuer) Sign(t Template) (*x509.Certificate, error) {
	if t.Profile == ProfileRoot {
		return nil, errors.New("a root CA cannot be signed by another CA")
	}
	if t.PublicKey == nil {
		return nil, errors.New("no public key to certify")
	}
	if t.Profile == ProfileIntermediate && iss.Cert.MaxPathLenZero {
		return nil, errors.New("the issuing CA has path length 0 and cannot sign another CA")
	}
	if t.Profile != ProfileClaim {
		if err := checkNotClaimOU(t.Subject, "the subject of a "+string(t.Profile)+" certificate"); err != nil {
			return nil, err
		}
	}
	if t.Profile != ProfileBootstrap {
		if err := checkNotBootstrapOU(t.Subject, "the subject of a "+string(t.Profile)+" certificate"); err != nil {
			return nil, err
		}
	}
	if t.Subject.String() == iss.Cert.Subject.String() {
		return nil, fmt.Errorf("subject %q equals the issuing CA's subject; identical subjects make TLS clients fail in confusing ways: choose another name", t.Subject)
	}
	if t.NotAfter.After(iss.Cert.NotAfter) {
		t.NotAfter = iss.Cert.NotAfter
	}
	tmpl, err := t.x509()
	if err != nil {
		return nil, err
	}
	cert, err := x509util.CreateCertificate(tmpl, iss.Cert, t.PublicKey, iss.Key)
	if err != nil {
		return nil, fmt.Errorf("sign %s certificate: %w", t.Profile, err)
	}
	return cert, nil
}

// EncodeCerts PEM-encodes certificates in order.
func EncodeCerts(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// ParseCerts reads every CERTIFICATE block of PEM data, in order.
func ParseCerts(data []byte, name string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", name, n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s: no certificate found (expected -----BEGIN CERTIFICATE-----)", name)
	}
	return certs, nil
}

// MaxDays bounds every validity period (100 years): longer ones overflow
// time arithmetic and serve no purpose.
const MaxDays = 36500

// ErrValidity is wrapped by the errors for a validity period that cannot
// be used.
var ErrValidity = errors.New("bad validity")

// validityDays checks a validity period in days for what (for example "the
// CA"): from 1 to MaxDays.
func validityDays(what string, days int) error {
	if days <= 0 || days > MaxDays {
		return errs.New(fmt.Sprintf("the validity of %s must be from 1 to %d days, not %d", what, MaxDays, days), ErrValidity)
	}
	return nil
}

// leafDays validates a leaf validity period in days: from 1 to MaxDays,
// above LeafMaxDays only with force (ErrNeedsForce), and above LeafWarnDays
// with a warning.
func leafDays(days int, force bool) (warning string, err error) {
	if err := validityDays("a certificate", days); err != nil {
		return "", err
	}
	switch {
	case days > LeafMaxDays && !force:
		return "", errs.New(fmt.Sprintf("a validity of %d days is over %d: Apple clients reject such certificates even from a private CA", days, LeafMaxDays), ErrValidity, ErrNeedsForce)
	case days > LeafWarnDays:
		return fmt.Sprintf("a validity of %d days is over %d; some clients reject it", days, LeafWarnDays), nil
	}
	return "", nil
}
