package pki

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"strings"
	"time"
)

// Summary describes one object found in a file: a certificate, CSR, key or
// CRL. Fields that do not apply are empty.
type Summary struct {
	File        string    `json:"file"`
	Kind        string    `json:"kind"` // certificate, csr, private-key, public-key, crl
	Index       int       `json:"index,omitempty"`
	Subject     string    `json:"subject,omitempty"`
	Issuer      string    `json:"issuer,omitempty"`
	Serial      string    `json:"serial,omitempty"`
	KeyType     string    `json:"key_type,omitempty"`
	SANs        []string  `json:"sans,omitempty"`
	KeyUsage    []string  `json:"key_usage,omitempty"`
	ExtKeyUsage []string  `json:"ext_key_usage,omitempty"`
	IsCA        bool      `json:"is_ca,omitempty"`
	PathLen     *int      `json:"path_len,omitempty"`
	SelfSigned  bool      `json:"self_signed,omitempty"`
	NotBefore   time.Time `json:"not_before,omitzero"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	DaysLeft    *int      `json:"days_left,omitempty"`
	Status      string    `json:"status,omitempty"` // valid, expired, not-yet-valid, expiring
	Profile     string    `json:"profile,omitempty"`
	Fingerprint string    `json:"sha256,omitempty"`
	Encrypted   bool      `json:"encrypted,omitempty"`
	Revoked     int       `json:"revoked,omitempty"`
	Note        string    `json:"note,omitempty"`
}

var keyUsageNames = []struct {
	u    x509.KeyUsage
	name string
}{
	{x509.KeyUsageDigitalSignature, "digitalSignature"},
	{x509.KeyUsageContentCommitment, "nonRepudiation"},
	{x509.KeyUsageKeyEncipherment, "keyEncipherment"},
	{x509.KeyUsageDataEncipherment, "dataEncipherment"},
	{x509.KeyUsageKeyAgreement, "keyAgreement"},
	{x509.KeyUsageCertSign, "keyCertSign"},
	{x509.KeyUsageCRLSign, "cRLSign"},
	{x509.KeyUsageEncipherOnly, "encipherOnly"},
	{x509.KeyUsageDecipherOnly, "decipherOnly"},
}

var extKeyUsageNames = map[x509.ExtKeyUsage]string{
	x509.ExtKeyUsageAny:             "any",
	x509.ExtKeyUsageServerAuth:      "serverAuth",
	x509.ExtKeyUsageClientAuth:      "clientAuth",
	x509.ExtKeyUsageCodeSigning:     "codeSigning",
	x509.ExtKeyUsageEmailProtection: "emailProtection",
	x509.ExtKeyUsageTimeStamping:    "timeStamping",
	x509.ExtKeyUsageOCSPSigning:     "OCSPSigning",
}

// profileOf guesses the profile of a certificate from its extensions.
func profileOf(c *x509.Certificate) string {
	if c.IsCA {
		if c.CheckSignatureFrom(c) == nil && c.Subject.String() == c.Issuer.String() {
			return string(ProfileRoot)
		}
		return string(ProfileIntermediate)
	}
	if IsBootstrap(c) {
		return string(ProfileBootstrap)
	}
	if IsClaim(c) {
		return string(ProfileClaim)
	}
	var server, client bool
	for _, u := range c.ExtKeyUsage {
		server = server || u == x509.ExtKeyUsageServerAuth || u == x509.ExtKeyUsageAny
		client = client || u == x509.ExtKeyUsageClientAuth || u == x509.ExtKeyUsageAny
	}
	switch {
	case len(c.ExtKeyUsage) == 0:
		return "any (no extendedKeyUsage)"
	case server && client:
		return string(ProfileBridge)
	case server:
		return string(ProfileServer)
	case client:
		return string(ProfileClient)
	}
	return "other"
}

// summarizeCert describes a certificate at time now.
func summarizeCert(c *x509.Certificate, now time.Time) Summary {
	s := Summary{
		Kind:        "certificate",
		Subject:     c.Subject.String(),
		Issuer:      c.Issuer.String(),
		Serial:      FormatSerial(c),
		KeyType:     keyTypeOf(c.PublicKey),
		SANs:        SANs(c),
		IsCA:        c.IsCA,
		NotBefore:   c.NotBefore.UTC(),
		NotAfter:    c.NotAfter.UTC(),
		Fingerprint: Fingerprint(c),
		Profile:     profileOf(c),
		SelfSigned:  c.Subject.String() == c.Issuer.String() && c.CheckSignatureFrom(c) == nil,
	}
	for _, k := range keyUsageNames {
		if c.KeyUsage&k.u != 0 {
			s.KeyUsage = append(s.KeyUsage, k.name)
		}
	}
	for _, u := range c.ExtKeyUsage {
		if n, ok := extKeyUsageNames[u]; ok {
			s.ExtKeyUsage = append(s.ExtKeyUsage, n)
		} else {
			s.ExtKeyUsage = append(s.ExtKeyUsage, fmt.Sprintf("eku(%d)", u))
		}
	}
	if c.IsCA && (c.MaxPathLen > 0 || c.MaxPathLenZero) {
		pl := c.MaxPathLen
		s.PathLen = &pl
	}
	days := int(c.NotAfter.Sub(now).Hours() / 24)
	s.DaysLeft = &days
	e := Entry{NotBefore: c.NotBefore, NotAfter: c.NotAfter}
	s.Status = e.StatusAt(now)
	return s
}

// inspect describes every PEM block in data (or a single DER certificate).
func inspect(data []byte, name string, now time.Time) ([]Summary, error) {
	var out []Summary
	rest := data
	n := 0
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		n++
		s, err := summarizeBlock(block, now)
		if err != nil {
			return nil, fmt.Errorf("%s: block %d (%s): %w", name, n, block.Type, err)
		}
		s.File = name
		out = append(out, s)
	}
	if n == 0 {
		if c, err := x509.ParseCertificate(data); err == nil {
			s := summarizeCert(c, now)
			s.File = name
			return []Summary{s}, nil
		}
		if csr, err := x509.ParseCertificateRequest(data); err == nil {
			s := summarizeCSR(csr)
			s.File = name
			return []Summary{s}, nil
		}
		return nil, fmt.Errorf("%s: no PEM block and not a DER certificate or CSR", name)
	}
	certs := 0
	for _, s := range out {
		if s.Kind == "certificate" {
			certs++
		}
	}
	if certs > 1 {
		i := 0
		for k := range out {
			if out[k].Kind == "certificate" {
				i++
				out[k].Index = i
			}
		}
	}
	return out, nil
}

func summarizeCSR(csr *x509.CertificateRequest) Summary {
	s := Summary{Kind: "csr", Subject: csr.Subject.String(), KeyType: keyTypeOf(csr.PublicKey)}
	s.SANs = SANs(&x509.Certificate{DNSNames: csr.DNSNames, IPAddresses: csr.IPAddresses, EmailAddresses: csr.EmailAddresses, URIs: csr.URIs})
	if err := csr.CheckSignature(); err != nil {
		s.Note = "signature does not verify"
	} else {
		s.Note = "signature ok"
	}
	for _, e := range csr.Extensions {
		if e.Id.Equal(oidBasicConstraints) {
			s.Note += "; requests basicConstraints (ignored by mqttctl pki sign)"
		}
	}
	return s
}

func summarizeBlock(block *pem.Block, now time.Time) (Summary, error) {
	switch block.Type {
	case "CERTIFICATE":
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return Summary{}, err
		}
		return summarizeCert(c, now), nil
	case "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST":
		csr, err := x509.ParseCertificateRequest(block.Bytes)
		if err != nil {
			return Summary{}, err
		}
		return summarizeCSR(csr), nil
	case "X509 CRL":
		crl, err := x509.ParseRevocationList(block.Bytes)
		if err != nil {
			return Summary{}, err
		}
		s := Summary{Kind: "crl", Issuer: crl.Issuer.String(), NotBefore: crl.ThisUpdate.UTC(), NotAfter: crl.NextUpdate.UTC(), Revoked: len(crl.RevokedCertificateEntries)}
		if !crl.NextUpdate.IsZero() {
			days := int(crl.NextUpdate.Sub(now).Hours() / 24)
			s.DaysLeft = &days
			if now.After(crl.NextUpdate) {
				s.Status = "expired"
				s.Note = "an expired CRL makes mosquitto reject every client: regenerate it"
			} else {
				s.Status = "valid"
			}
		}
		return s, nil
	case "PUBLIC KEY":
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return Summary{}, err
		}
		return Summary{Kind: "public-key", KeyType: keyTypeOf(pub), Fingerprint: spkiFingerprint(block.Bytes)}, nil
	}
	if strings.HasSuffix(block.Type, "PRIVATE KEY") {
		s := Summary{Kind: "private-key"}
		enc := block.Type == "ENCRYPTED PRIVATE KEY" || block.Headers["Proc-Type"] == "4,ENCRYPTED"
		if enc {
			s.Encrypted = true
			s.Note = "encrypted"
			if block.Type == "ENCRYPTED PRIVATE KEY" {
				if err := checkPKCS8Encryption(block.Bytes); err != nil {
					s.Note = err.Error()
				} else {
					s.Note = "encrypted (PKCS#8 PBES2)"
				}
			} else {
				s.Note = "encrypted (legacy PEM " + block.Headers["DEK-Info"] + ")"
			}
			return s, nil
		}
		k, err := parseKey(pem.EncodeToMemory(block), "key", nil)
		if err != nil {
			return Summary{}, err
		}
		s.KeyType = keyTypeOf(k)
		if der, err := x509.MarshalPKIXPublicKey(k.Public()); err == nil {
			s.Fingerprint = spkiFingerprint(der)
			s.Note = "public key SHA-256 shown; " + keyFormat(block.Type)
		}
		return s, nil
	}
	return Summary{}, fmt.Errorf("unknown PEM type %q", block.Type)
}

func keyFormat(t string) string {
	switch t {
	case "RSA PRIVATE KEY":
		return "PKCS#1"
	case "EC PRIVATE KEY":
		return "SEC1"
	}
	return "PKCS#8"
}

func spkiFingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	return colonHex(sum[:])
}

// InspectFile reads a file and describes its contents.
func InspectFile(path string, now time.Time) ([]Summary, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return inspect(data, path, now)
}

// WriteText prints a summary for people.
func (s Summary) WriteText(w io.Writer) {
	head := s.File + ": " + s.Kind
	if s.Index > 0 {
		head += fmt.Sprintf(" %d", s.Index)
	}
	if s.Profile != "" {
		head += " (" + s.Profile + ")"
	}
	fmt.Fprintln(w, head)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(w, "  %-12s %s\n", k+":", v)
		}
	}
	row("Subject", s.Subject)
	row("Issuer", s.Issuer)
	row("Serial", s.Serial)
	row("Key", s.KeyType)
	row("SANs", strings.Join(s.SANs, ", "))
	usage := strings.Join(append(append([]string(nil), s.KeyUsage...), s.ExtKeyUsage...), ", ")
	row("Usage", usage)
	if s.Kind == "certificate" {
		ca := "no"
		if s.IsCA {
			ca = "yes"
			if s.PathLen != nil {
				ca += fmt.Sprintf(", path length %d", *s.PathLen)
			}
		}
		row("CA", ca)
	}
	if !s.NotAfter.IsZero() {
		label := "Valid"
		if s.Kind == "crl" {
			label = "Updates"
		}
		v := fmt.Sprintf("%s to %s", s.NotBefore.Format("2006-01-02 15:04 MST"), s.NotAfter.Format("2006-01-02 15:04 MST"))
		if s.DaysLeft != nil {
			switch s.Status {
			case "expired":
				v += fmt.Sprintf(" (EXPIRED %d days ago)", -*s.DaysLeft)
			case "not-yet-valid":
				v += " (NOT YET VALID)"
			default:
				v += fmt.Sprintf(" (%d days left)", *s.DaysLeft)
			}
		}
		row(label, v)
	}
	if s.Kind == "crl" {
		row("Revoked", fmt.Sprint(s.Revoked))
	}
	row("SHA-256", s.Fingerprint)
	row("Note", s.Note)
}
