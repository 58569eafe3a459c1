package broker

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/pki"
)

// opensslCiphers maps OpenSSL cipher names (what mosquitto's `ciphers`
// takes) to Go's TLS 1.2 suites. Go offers only secure AEAD/ECDHE suites
// here; anything else is refused with a clear error.
var opensslCiphers = map[string]uint16{
	"ECDHE-ECDSA-AES128-GCM-SHA256": tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-ECDSA-AES256-GCM-SHA384": tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-ECDSA-CHACHA20-POLY1305": tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-RSA-AES128-GCM-SHA256":   tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	"ECDHE-RSA-AES256-GCM-SHA384":   tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	"ECDHE-RSA-CHACHA20-POLY1305":   tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	"ECDHE-ECDSA-AES128-SHA256":     tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-RSA-AES128-SHA256":       tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256,
	"ECDHE-ECDSA-AES128-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA,
	"ECDHE-ECDSA-AES256-SHA":        tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA,
	"ECDHE-RSA-AES128-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA,
	"ECDHE-RSA-AES256-SHA":          tls.TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA,
}

var tls13Suites = map[string]bool{"TLS_AES_128_GCM_SHA256": true, "TLS_AES_256_GCM_SHA384": true, "TLS_CHACHA20_POLY1305_SHA256": true}

// ParseCiphers maps an OpenSSL cipher list ("A:B:C") to Go suite IDs.
func ParseCiphers(list string) ([]uint16, error) {
	var out []uint16
	for _, name := range strings.FieldsFunc(list, func(r rune) bool { return r == ':' || r == ',' || r == ' ' }) {
		id, ok := opensslCiphers[name]
		if !ok {
			known := make([]string, 0, len(opensslCiphers))
			for k := range opensslCiphers {
				known = append(known, k)
			}
			slices.Sort(known)
			return nil, fmt.Errorf("cipher %q is not supported by the bundled broker (OpenSSL keywords such as HIGH or !aNULL are not either): list suites by name from: %s", name, strings.Join(known, ", "))
		}
		out = append(out, id)
	}
	if len(out) == 0 {
		return nil, errors.New("ciphers is empty")
	}
	return out, nil
}

// errCertFile marks errors about certfile itself.
var errCertFile = errors.New("certfile")

// tlsState holds a listener's TLS material; certificate and CRL can be
// swapped by a reload while connections are being accepted.
type tlsState struct {
	spec *confgen.TLS
	pos  map[string]confgen.Pos // where each option was set; "" is the listener
	cert atomic.Pointer[tls.Certificate]
	crls atomic.Pointer[crlIndex]
	// crlBroken is set while crlfile cannot be used: nobody new gets in.
	crlBroken atomic.Bool
	conf      *tls.Config
	// cas are the CA certificates read at start (for the metrics).
	cas []*x509.Certificate
	// clientCAs is set with disable_client_cert_date_checks: the pool
	// verifyIgnoringDates checks client certificates against.
	clientCAs *x509.CertPool
	// caSum identifies the CA certificates read at start (cafile and
	// capath), which a reload does not apply: casChanged tells.
	caSum [sha256.Size]byte
}

func sumCAs(cas []*x509.Certificate) [sha256.Size]byte {
	h := sha256.New()
	for _, c := range cas {
		h.Write(c.Raw)
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// casChanged reports whether cafile or capath now hold other certificates
// than the listener trusts (those read at start).
func (st *tlsState) casChanged() bool {
	cas, err := loadCAs(st.spec)
	return err != nil || sumCAs(cas) != st.caSum
}

// crlIndex holds a listener's CRLs by the CA that signed them (its subject
// and public key), their signatures checked once when loaded, and each
// CRL's revoked serials in a set: a handshake then costs a few map
// lookups instead of a signature check per CRL.
type crlIndex map[string][]indexedCRL

type indexedCRL struct {
	issuer     string // for messages
	thisUpdate time.Time
	nextUpdate time.Time
	revoked    map[string]struct{} // serial numbers' bytes
}

func caKey(c *x509.Certificate) string {
	return string(c.RawSubject) + "\x00" + string(c.RawSubjectPublicKeyInfo)
}

func readPEMCerts(path string) ([]*x509.Certificate, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %w", err)
	}
	return pki.ParseCerts(data, path)
}

// loadCertificate reads certfile and keyfile. The served chain is certfile's
// certificates plus, as OpenSSL does for mosquitto, any intermediate from
// the CA files that issued the last one.
func loadCertificate(spec *confgen.TLS, cas []*x509.Certificate) (*tls.Certificate, error) {
	certPEM, err := readFile(spec.CertFile)
	if err != nil {
		return nil, fmt.Errorf("%w %s: %w", errCertFile, spec.CertFile, err)
	}
	if _, err := pki.ParseCerts(certPEM, spec.CertFile); err != nil {
		return nil, fmt.Errorf("%w: %w (certfile must hold the server certificate, then its chain)", errCertFile, err)
	}
	keyPEM, err := readFile(spec.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("keyfile %s: %w", spec.KeyFile, err)
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		switch {
		case strings.Contains(string(keyPEM), "ENCRYPTED"):
			return nil, fmt.Errorf("keyfile %s is encrypted; a broker starts without a terminal: decrypt it (openssl pkey -in %s -out NEW)", spec.KeyFile, spec.KeyFile)
		case strings.Contains(string(keyPEM), "BEGIN CERTIFICATE") && !strings.Contains(string(keyPEM), "PRIVATE KEY"):
			return nil, fmt.Errorf("keyfile %s holds a certificate, not a private key: are certfile and keyfile swapped?", spec.KeyFile)
		case strings.Contains(err.Error(), "does not match"):
			return nil, fmt.Errorf("keyfile %s does not match certfile %s: give the key made with that certificate", spec.KeyFile, spec.CertFile)
		}
		return nil, fmt.Errorf("keyfile %s with certfile %s: %w", spec.KeyFile, spec.CertFile, err)
	}
	last, err := x509.ParseCertificate(cert.Certificate[len(cert.Certificate)-1])
	if err != nil {
		return nil, err
	}
	for range 4 {
		if last.Subject.String() == last.Issuer.String() {
			break
		}
		var next *x509.Certificate
		for _, ca := range cas {
			if ca.Subject.String() == last.Issuer.String() && ca.Subject.String() != ca.Issuer.String() && last.CheckSignatureFrom(ca) == nil {
				next = ca
			}
		}
		if next == nil {
			break
		}
		cert.Certificate = append(cert.Certificate, next.Raw)
		last = next
	}
	cert.Leaf, _ = x509.ParseCertificate(cert.Certificate[0])
	return &cert, nil
}

func loadCAs(spec *confgen.TLS) ([]*x509.Certificate, error) {
	var cas []*x509.Certificate
	if spec.CAFile != "" {
		c, err := readPEMCerts(spec.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cafile: %w", err)
		}
		cas = append(cas, c...)
	}
	if spec.CAPath != "" {
		entries, err := os.ReadDir(spec.CAPath)
		if err != nil {
			return nil, fmt.Errorf("capath: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() {
				continue
			}
			if c, err := readPEMCerts(filepath.Join(spec.CAPath, e.Name())); err == nil {
				cas = append(cas, c...)
			}
		}
	}
	return cas, nil
}

func loadCRLs(path string) ([]*x509.RevocationList, error) {
	data, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("crlfile: %w", err)
	}
	var out []*x509.RevocationList
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "X509 CRL" {
			continue
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("crlfile %s: %w", path, err)
		}
		out = append(out, crl)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("crlfile %s: no CRL found", path)
	}
	return out, nil
}

// at places err at the line of option key (the listener's line when the
// option was not set).
func (st *tlsState) at(key string, err error) error {
	p, ok := st.pos[key]
	if !ok {
		p = st.pos[""]
	}
	return &confgen.ConfigError{Pos: p, Err: err}
}

// newTLSState builds the tls.Config of a listener with mosquitto's
// semantics: tls_version is a minimum (TLS 1.2 by default), a client
// certificate is requested only with require_certificate, and crlfile is
// checked for the client's certificate. It reads every file and reports
// every problem, each at its option's line.
func newTLSState(l confgen.ListenerSpec) (*tlsState, error) {
	spec := l.TLS
	pos := map[string]confgen.Pos{"": l.Pos}
	for k, p := range l.OptionPos {
		pos[k] = p
	}
	st := &tlsState{spec: spec, pos: pos}
	var errs []error
	cas, err := loadCAs(spec)
	st.caSum = sumCAs(cas)
	st.cas = cas
	if err != nil {
		key := "cafile"
		if strings.HasPrefix(err.Error(), "capath") {
			key = "capath"
		}
		errs = append(errs, st.at(key, err))
	}
	if cert, err := loadCertificate(spec, cas); err != nil {
		key := "keyfile"
		if errors.Is(err, errCertFile) {
			key = "certfile"
		}
		errs = append(errs, st.at(key, err))
	} else {
		st.cert.Store(cert)
	}
	if spec.CRLFile != "" {
		if crls, err := loadCRLs(spec.CRLFile); err != nil {
			errs = append(errs, st.at("crlfile", err))
		} else if idx, err := indexCRLs(crls, cas, st.cert.Load()); err != nil {
			errs = append(errs, st.at("crlfile", err))
		} else {
			st.crls.Store(&idx)
		}
	}
	conf := &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return st.cert.Load(), nil
		},
	}
	switch spec.TLSVersion {
	case "", "tlsv1.2":
	case "tlsv1.3":
		conf.MinVersion = tls.VersionTLS13
	default:
		errs = append(errs, st.at("tls_version", fmt.Errorf("tls_version %s is not supported: use tlsv1.2 or tlsv1.3", spec.TLSVersion)))
	}
	if spec.Ciphers != "" {
		if conf.CipherSuites, err = ParseCiphers(spec.Ciphers); err != nil {
			errs = append(errs, st.at("ciphers", err))
		}
	}
	if spec.CiphersTLS13 != "" {
		for _, n := range strings.Split(spec.CiphersTLS13, ":") {
			if !tls13Suites[n] {
				errs = append(errs, st.at("ciphers_tls1.3", fmt.Errorf("ciphers_tls1.3 %q: unknown suite %q (TLS 1.3 suites: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256)", spec.CiphersTLS13, n)))
			}
		}
	}
	if spec.RequireCertificate {
		if len(cas) == 0 && err == nil {
			errs = append(errs, st.at("require_certificate", errors.New("require_certificate needs cafile or capath with at least one CA")))
		}
		pool := x509.NewCertPool()
		for _, c := range cas {
			pool.AddCert(c)
		}
		conf.ClientCAs = pool
		conf.ClientAuth = tls.RequireAndVerifyClientCert
		if spec.DisableClientCertDateChecks {
			// Go cannot leave the dates out of its own verification:
			// verifyIgnoringDates does it, in VerifyConnection.
			conf.ClientAuth = tls.RequireAnyClientCert
			st.clientCAs = pool
		}
		// VerifyConnection, unlike VerifyPeerCertificate, also runs when a
		// client resumes a TLS session: a ticket from before a revocation
		// must not let the client in.
		conf.VerifyConnection = func(cs tls.ConnectionState) error {
			if spec.DisableClientCertDateChecks {
				if _, err := st.chains(cs); err != nil {
					return err
				}
			}
			if len(cs.PeerCertificates) > 0 && pki.IsBootstrap(cs.PeerCertificates[0]) {
				// A factory certificate is for the enrolment server only.
				return errBootstrap
			}
			if len(cs.PeerCertificates) > 0 && pki.IsClaim(cs.PeerCertificates[0]) && !l.Provision {
				// A claim certificate only provisions, where the listener
				// serves $mqttctl/provision.
				return errClaim
			}
			if spec.CRLFile != "" {
				return st.checkCRL(cs)
			}
			return nil
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	st.conf = conf
	return st, nil
}

// indexCRLs indexes the CRLs by the CA that signed them. It refuses a CRL
// that no CA of the listener signed: checkCRL would skip it, and every
// certificate it lists would get in.
func indexCRLs(crls []*x509.RevocationList, cas []*x509.Certificate, served *tls.Certificate) (crlIndex, error) {
	candidates := append([]*x509.Certificate(nil), cas...)
	if served != nil {
		for _, der := range served.Certificate[1:] {
			if c, err := x509.ParseCertificate(der); err == nil && c.IsCA {
				candidates = append(candidates, c)
			}
		}
	}
	idx := crlIndex{}
	for _, crl := range crls {
		ic := indexedCRL{issuer: crl.Issuer.String(), thisUpdate: crl.ThisUpdate, nextUpdate: crl.NextUpdate, revoked: make(map[string]struct{}, len(crl.RevokedCertificateEntries))}
		for _, r := range crl.RevokedCertificateEntries {
			ic.revoked[string(r.SerialNumber.Bytes())] = struct{}{}
		}
		signed := map[string]bool{}
		for _, ca := range candidates {
			if k := caKey(ca); !signed[k] && crl.CheckSignatureFrom(ca) == nil {
				signed[k] = true
				idx[k] = append(idx[k], ic)
			}
		}
		if len(signed) == 0 {
			return nil, fmt.Errorf("the CRL issued by %q is not signed by any CA of this listener (cafile, capath, or the chain in certfile): revocations in it would be ignored; give the CRL of the CA that issues the client certificates", crl.Issuer)
		}
	}
	return idx, nil
}

// errRevoked is what a revoked client certificate gets; Go sends the
// bad_certificate alert.
var errRevoked = errors.New("client certificate is revoked")

// errBootstrap refuses a bootstrap certificate (pki issue bootstrap): it
// only lets a device enrol at mqttctl enroll serve, never log in.
var errBootstrap = errors.New("client certificate is a bootstrap certificate: it is accepted only by the enrolment server (mqttctl enroll serve), which gives the device its client certificate")

// errClaim refuses a claim certificate (pki issue claim) on a listener
// that does not provision.
var errClaim = errors.New("client certificate is a claim certificate: it is accepted only by a listener with '# mqttctl: provision_by_claim on', where it may only ask for a device's certificate")

func (st *tlsState) checkCRL(cs tls.ConnectionState) error {
	chains, err := st.chains(cs)
	if err != nil {
		return err
	}
	return st.revoked(chains)
}

// chains are the verified chains of a connection's client certificate: Go's,
// or, with disable_client_cert_date_checks, verifyIgnoringDates's.
func (st *tlsState) chains(cs tls.ConnectionState) ([][]*x509.Certificate, error) {
	if st.clientCAs == nil || cs.VerifiedChains != nil {
		return cs.VerifiedChains, nil
	}
	return verifyIgnoringDates(cs.PeerCertificates, st.clientCAs, st.cas)
}

// verifyIgnoringDates verifies a client's chain as Go's TLS server does
// (the listener's CAs, client authentication) except for the certificates'
// validity periods, as mosquitto 2.1 does with disable_client_cert_date_checks
// (its OpenSSL callback forgives "not yet valid" and "expired" for every
// certificate of the chain, and nothing else). Go checks the dates of the
// whole chain against one time, so the chain is verified at the latest
// notBefore of the certificates involved, at which every certificate of a
// chain whose periods overlap is valid: a chain whose certificates were
// never valid at the same time is refused (OpenSSL would let it in).
func verifyIgnoringDates(certs []*x509.Certificate, roots *x509.CertPool, cas []*x509.Certificate) ([][]*x509.Certificate, error) {
	if len(certs) == 0 {
		return nil, errors.New("no client certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	chains, err := certs[0].Verify(opts)
	if err == nil {
		return chains, nil
	}
	for _, c := range append(append([]*x509.Certificate(nil), certs...), cas...) {
		opts.CurrentTime = c.NotBefore
		if chains, err2 := certs[0].Verify(opts); err2 == nil {
			return chains, nil
		}
	}
	return nil, err
}

// errCRLBroken refuses every client while the crlfile cannot be read: a
// revocation must never be lost to a bad write.
var errCRLBroken = errors.New("the crlfile cannot be read; every client certificate is refused until it can")

// revoked reports, as an error, whether any certificate of the verified
// chains (the leaf or an intermediate) is revoked by a CRL its issuer
// signed, whether the CRL of the leaf's issuer is missing, whether such a
// CRL has expired or is not valid yet (OpenSSL then refuses every client,
// and so does serve), or whether the CRL is unreadable.
func (st *tlsState) revoked(chains [][]*x509.Certificate) error {
	if st.crlBroken.Load() {
		return errCRLBroken
	}
	idx := st.crls.Load()
	if idx == nil {
		return nil
	}
	now := time.Now()
	for _, chain := range chains {
		for i := 0; i+1 < len(chain); i++ {
			cert, issuer := chain[i], chain[i+1]
			crls := (*idx)[caKey(issuer)]
			if len(crls) == 0 && i == 0 {
				// No CRL from the leaf's issuer: OpenSSL (mosquitto sets
				// X509_V_FLAG_CRL_CHECK) refuses the client ("unable to get
				// certificate CRL"), and so does serve: a revocation that
				// cannot be checked must not let the client in. CRL_CHECK
				// covers the leaf only; an intermediate is checked when
				// its issuer's CRL is there.
				p := explain.CRLMissing(st.spec.CRLFile, issuer.Subject.String())
				return &crlError{refusal: refusedCRLMissing, msg: p.Message + "; fix: " + p.Fix}
			}
			for _, crl := range crls {
				if err := crl.validAt(st.spec.CRLFile, now); err != nil {
					return err
				}
				if _, ok := crl.revoked[string(cert.SerialNumber.Bytes())]; ok {
					return errRevoked
				}
			}
		}
	}
	return nil
}

// validAt reports an expired or not yet valid CRL: OpenSSL refuses every
// certificate it covers ("CRL has expired", "CRL is not yet valid").
func (c indexedCRL) validAt(file string, now time.Time) error {
	var p explain.Problem
	r := refusedCRLExpired
	switch {
	case !c.nextUpdate.IsZero() && now.After(c.nextUpdate):
		p = explain.CRLExpired(file, c.issuer, c.nextUpdate)
	case now.Before(c.thisUpdate):
		p, r = explain.CRLNotYetValid(file, c.issuer, c.thisUpdate), refusedCRLNotYetValid
	default:
		return nil
	}
	return &crlError{refusal: r, msg: p.Message + "; fix: " + p.Fix}
}

// crlProblems reports, at the crlfile line, what makes the listener's CRL
// refuse clients wholesale: an expired or not yet valid CRL (an error), a
// CA of cafile or capath with no CRL in crlfile (a warning: every client
// certificate it issues is refused). config check reports them; serve logs
// them at start and at each reload.
func (st *tlsState) crlProblems() []error {
	idx := st.crls.Load()
	if idx == nil || st.spec.CRLFile == "" {
		return nil
	}
	var out []error
	now := time.Now()
	said := map[string]bool{}
	for _, crls := range *idx {
		for _, crl := range crls {
			if err := crl.validAt(st.spec.CRLFile, now); err != nil && !said[err.Error()] {
				said[err.Error()] = true
				out = append(out, st.at("crlfile", err))
			}
		}
	}
	cas, err := loadCAs(st.spec)
	if err != nil {
		return out
	}
	seen := map[string]bool{}
	for _, ca := range cas {
		k := caKey(ca)
		if !ca.IsCA || len((*idx)[k]) > 0 || seen[k] {
			continue
		}
		seen[k] = true
		p := explain.CRLMissing(st.spec.CRLFile, ca.Subject.String())
		ce := st.at("crlfile", errors.New(p.Message+"; fix: "+p.Fix))
		ce.(*confgen.ConfigError).Warning = true
		out = append(out, ce)
	}
	return out
}

// reload re-reads certfile, keyfile and crlfile (SIGHUP).
func (st *tlsState) reload() error {
	return errors.Join(st.reloadCert(), st.reloadCRL())
}

// reloadCert re-reads certfile and keyfile. New handshakes use the new pair
// at once; connected clients keep their sessions. On error (a pair that
// does not match, say) the old pair stays in use.
func (st *tlsState) reloadCert() error {
	cas, err := loadCAs(st.spec)
	if err != nil {
		return err
	}
	cert, err := loadCertificate(st.spec, cas)
	if err != nil {
		return err
	}
	st.cert.Store(cert)
	return nil
}

// reloadCRL re-reads crlfile. It fails closed: while the file cannot be
// read or is not signed by the listener's CA, every new client is refused.
func (st *tlsState) reloadCRL() error {
	if st.spec.CRLFile == "" {
		return nil
	}
	cas, err := loadCAs(st.spec)
	if err == nil {
		var crls []*x509.RevocationList
		if crls, err = loadCRLs(st.spec.CRLFile); err == nil {
			var idx crlIndex
			if idx, err = indexCRLs(crls, cas, st.cert.Load()); err == nil {
				st.crls.Store(&idx)
				st.crlBroken.Store(false)
				return nil
			}
		}
	}
	st.crlBroken.Store(true)
	return fmt.Errorf("%w: %w", errCRLBroken, err)
}

// readFile reads a file the broker is configured with (certificate, key,
// CA, CRL): a regular file of at most 64 MiB, refused at once if it is a
// FIFO or device, so that a reload never blocks or fills memory.
func readFile(path string) ([]byte, error) { return fsx.ReadRegular(path, 64<<20) }
