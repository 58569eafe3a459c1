package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// Level grades a check finding.
type Level string

// Finding levels.
const (
	LevelOK    Level = "ok"
	LevelWarn  Level = "warn"
	LevelError Level = "error"
)

// Finding is one result of Dir.Check.
type Finding struct {
	Level   Level  `json:"level"`
	Path    string `json:"path"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
	// Expiring marks a certificate in use that has ended or ends within
	// the window (CheckOptions.Within): what needs renewing.
	Expiring bool `json:"expiring,omitempty"`
}

func (f Finding) String() string {
	s := fmt.Sprintf("%-5s %s: %s", strings.ToUpper(string(f.Level)), f.Path, f.Message)
	if f.Fix != "" {
		s += " (fix: " + f.Fix + ")"
	}
	return s
}

// CheckOptions configures Dir.Check.
type CheckOptions struct {
	// Hosts must all be among the server certificate's names.
	Hosts []string
	// Server names the server certificate the hosts are checked against:
	// "server" (server.crt, the default) or a name under servers/.
	Server string
	// BrokerGroup is the group mqttctl gives read access to the broker's
	// files (config mosquitto, up): the exact access it grants (g+x on
	// directories, g+r on the broker's key) is not reported. "" means
	// "mosquitto".
	BrokerGroup string
	// Within is the expiry window: a certificate in use that ends within
	// it is reported (Finding.Expiring). 0 means ExpiryWarning (30 days).
	Within time.Duration
}

// NeedsRenewal reports whether any finding is a certificate that needs
// renewing (see CheckOptions.Within).
func NeedsRenewal(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Expiring })
}

// grantedToBroker reports whether st belongs to the broker group and has
// exactly the group access mqttctl grants it (want: 0o010 for
// directories, 0o040 for keys), so that a mode mqttctl set on purpose is
// not reported as a risk.
func (c *checker) grantedToBroker(st fs.FileInfo, want fs.FileMode) bool {
	if st.Mode().Perm()&0o070 != want {
		return false
	}
	name := c.o.BrokerGroup
	if name == "" {
		name = "mosquitto"
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return false
	}
	_, gid, ok := fsx.Owner(st)
	return ok && strconv.Itoa(gid) == g.Gid
}

// HasErrors reports whether any finding is an error.
func HasErrors(fs []Finding) bool {
	for _, f := range fs {
		if f.Level == LevelError {
			return true
		}
	}
	return false
}

type checked struct {
	path    string // relative to the directory
	keyPath string
	profile Profile
	certs   []*x509.Certificate
	// replaced: a renewal (or --force) replaced this certificate; it is
	// kept until it expires and is not reported as needing renewal.
	replaced bool
	// revoked is the index entry that records this certificate revoked.
	revoked *Entry
}

type checker struct {
	d        *Dir
	o        CheckOptions
	now      time.Time
	out      []Finding
	roots    *x509.CertPool
	inters   *x509.CertPool
	root     *x509.Certificate
	rootHave bool
}

func (c *checker) add(l Level, path, msg, fix string) {
	c.out = append(c.out, Finding{Level: l, Path: path, Message: msg, Fix: fix})
}

// Check inspects the whole directory: the chain of every certificate, that
// each key matches its certificate, usages fit the profile, validity (expired
// or expiring within 30 days), distinct subjects, file modes, and that the
// given hosts are among the server certificate's names. It never changes a
// file.
func (d *Dir) Check(o CheckOptions) ([]Finding, error) {
	st, err := os.Stat(d.Path)
	if err != nil {
		return nil, fmt.Errorf("check %s: %w", d.Path, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", d.Path)
	}
	c := &checker{d: d, o: o, now: d.now(), roots: x509.NewCertPool(), inters: x509.NewCertPool()}
	c.checkDirMode(d.Path, st)

	if fileExists(d.path(JournalFile)) {
		c.add(LevelError, d.path(JournalFile), "a change to the directory was interrupted (a crash or kill) and is not complete yet; until it is, files may disagree",
			"complete it (pki check changes nothing): mqttctl pki list"+explain.DirFlag(d.Path))
	}
	idx, err := LoadIndex(d.Path)
	if err != nil {
		c.add(LevelError, filepath.Join(d.Path, IndexFile), err.Error(), "")
		idx = &Index{}
	}
	if idx.Rebuilt {
		c.add(LevelWarn, filepath.Join(d.Path, IndexFile), idx.RebuildNote(d.path(IndexFile)), "save it: mqttctl pki crl"+explain.DirFlag(d.Path))
	}
	for _, n := range idx.Notes {
		c.add(LevelWarn, filepath.Join(d.Path, IndexFile), n, "save it: mqttctl pki crl"+explain.DirFlag(d.Path))
	}

	var items []checked
	addItem := func(rel, key string, p Profile, replaced bool) {
		var revoked *Entry
		for i := range idx.Certificates {
			if e := &idx.Certificates[i]; e.Cert == filepath.ToSlash(rel) && e.Status == "revoked" {
				revoked = e
			}
		}
		full := d.path(rel)
		data, err := readFile(full)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				c.add(LevelError, full, err.Error(), "")
			}
			return
		}
		certs, err := ParseCerts(data, full)
		if err != nil {
			c.add(LevelError, full, err.Error(), "")
			return
		}
		if revoked != nil && revoked.Fingerprint != Fingerprint(certs[0]) {
			revoked = nil
		}
		items = append(items, checked{path: rel, keyPath: key, profile: p, certs: certs, replaced: replaced, revoked: revoked})
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	addItem(RootCertFile, RootKeyFile, ProfileRoot, false)
	addItem(IntermediateCertFile, IntermediateKeyFile, ProfileIntermediate, false)
	addItem(ServerCertFile, ServerKeyFile, ProfileServer, false)
	for _, sub := range []struct {
		dir string
		p   Profile
	}{{ServersDir, ProfileServer}, {ClientsDir, ProfileClient}} {
		matches, _ := filepath.Glob(filepath.Join(d.Path, sub.dir, "*.crt"))
		slices.Sort(matches)
		if len(matches) > 0 {
			if dst, err := os.Stat(d.path(sub.dir)); err == nil {
				c.checkDirMode(d.path(sub.dir), dst)
			}
		}
		for _, m := range matches {
			rel, _ := filepath.Rel(d.Path, m)
			p, key, replaced := sub.p, strings.TrimSuffix(rel, ".crt")+".key", isPrev(rel)
			if e := idx.find(filepath.ToSlash(rel)); e != nil {
				if e.Profile == ProfileBridge {
					p = ProfileBridge
				}
				// The index knows: a renewal that kept the key, or a signed
				// CSR whose key is on the device ("").
				key = filepath.FromSlash(e.Key)
				replaced = replaced || e.ReplacedBy != ""
			}
			addItem(rel, key, p, replaced)
		}
	}
	seen := map[string]bool{}
	for _, it := range items {
		seen[filepath.ToSlash(it.path)] = true
	}
	for _, e := range idx.Certificates {
		if seen[e.Cert] || e.Profile.IsCA() || e.Status == "revoked" || e.ReplacedBy != "" {
			continue
		}
		rel := filepath.FromSlash(e.Cert)
		if !fileExists(d.path(rel)) && !filepath.IsAbs(rel) {
			c.add(LevelWarn, d.path(rel), "listed in index.yaml but missing", "restore it, or ignore if it was deleted on purpose")
			continue
		}
		addItem(rel, filepath.FromSlash(e.Key), e.Profile, false)
	}

	for _, it := range items {
		if it.profile == ProfileRoot {
			c.root = it.certs[0]
			c.roots.AddCert(it.certs[0])
			c.rootHave = true
		}
		if it.profile == ProfileIntermediate {
			c.inters.AddCert(it.certs[0])
		}
	}
	subjects := map[string]string{}
	for _, it := range items {
		c.checkItem(it)
		s := it.certs[0].Subject.String()
		if it.replaced {
			continue // the predecessor has its successor's subject on purpose
		}
		if prev, dup := subjects[s]; dup {
			c.add(LevelError, d.path(it.path), fmt.Sprintf("has the same subject %q as %s", s, d.path(prev)),
				"reissue one of them with a distinct name; identical subjects make brokers and clients fail in confusing ways")
		} else {
			subjects[s] = it.path
		}
	}

	c.checkCRL(idx)

	if len(o.Hosts) > 0 {
		name := o.Server
		if name == "" {
			name = "server"
		}
		lp := leafPaths(ProfileServer, name)
		var srv *checked
		for i := range items {
			if items[i].path == lp.cert {
				srv = &items[i]
			}
		}
		if srv == nil {
			c.add(LevelError, d.path(lp.cert), "no such server certificate to check the hosts against", "issue it: "+explain.IssueServer(name, d.Path, o.Hosts))
		} else {
			leaf := srv.certs[0]
			have := Names(leaf)
			for _, h := range o.Hosts {
				if err := leaf.VerifyHostname(strings.Trim(h, "[]")); err != nil {
					p := explain.NameMismatch(h, have, d.Path)
					p.Fix = explain.ReissueServer(name, d.Path, append(have, h))
					c.add(LevelError, d.path(lp.cert), p.Message, p.Fix)
				} else {
					c.add(LevelOK, d.path(lp.cert), "names "+h, "")
				}
			}
		}
	}
	return c.out, nil
}

// checkCRL reports a crl.pem that makes brokers refuse every client
// certificate of its CA: expired or not yet valid (errors, whatever the
// expiry window), or expiring within a week (a warning).
func (c *checker) checkCRL(idx *Index) {
	full := c.d.path(CRLFile)
	data, err := readFile(full)
	if errors.Is(err, fs.ErrNotExist) {
		if idx.CRLNumber > 0 {
			c.add(LevelError, full, fmt.Sprintf("is missing, though %s records CRL number %d: brokers configured with it refuse to start or keep an old one", IndexFile, idx.CRLNumber),
				explain.WriteCRL(c.d.Path)+", then reload the broker")
		}
		return
	}
	if cas, cerr := caCerts(c.d.Path); cerr == nil && err == nil {
		if disk, derr := readDiskCRL(c.d.Path, cas); derr != nil {
			c.add(LevelError, full, derr.Error(), "")
			return
		} else if disk.Number < idx.CRLNumber {
			c.add(LevelError, full, fmt.Sprintf("is CRL number %d, but number %d was written since: an older copy (a restored backup?) that may revoke less", disk.Number, idx.CRLNumber),
				explain.WriteCRL(c.d.Path)+", then reload the broker")
		}
	}
	const within = 7 * 24 * time.Hour // a nightly pki crl keeps it far from this
	for len(data) > 0 && err == nil {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		crl, perr := x509.ParseRevocationList(b.Bytes)
		if perr != nil {
			err = perr
			break
		}
		issuer := crl.Issuer.String()
		var p explain.Problem
		switch {
		case !crl.NextUpdate.IsZero() && c.now.After(crl.NextUpdate):
			p = explain.CRLExpired(full, issuer, crl.NextUpdate)
		case c.now.Before(crl.ThisUpdate):
			p = explain.CRLNotYetValid(full, issuer, crl.ThisUpdate)
		case !crl.NextUpdate.IsZero() && crl.NextUpdate.Sub(c.now) < within:
			c.out = append(c.out, Finding{Level: LevelWarn, Path: full, Expiring: true,
				Message: fmt.Sprintf("the CRL of %s expires on %s: brokers then refuse every client certificate of that CA", issuer, crl.NextUpdate.UTC().Format(time.DateOnly)),
				Fix:     explain.WriteCRL(c.d.Path) + ", then reload the broker"})
			continue
		default:
			c.add(LevelOK, full, fmt.Sprintf("CRL of %s: valid until %s", issuer, crl.NextUpdate.UTC().Format(time.DateOnly)), "")
			continue
		}
		c.add(LevelError, full, p.Message, p.Fix)
	}
	if err != nil {
		c.add(LevelError, full, "cannot be read: "+err.Error(), explain.WriteCRL(c.d.Path))
	}
}

func (c *checker) checkDirMode(path string, st fs.FileInfo) {
	m := st.Mode().Perm()
	switch {
	case m&0o007 != 0:
		c.add(LevelWarn, path, fmt.Sprintf("directory mode %04o lets every user in (the keys are still 0600)", m), "chmod 700 "+path)
	case m&0o070 != 0 && !c.grantedToBroker(st, 0o010):
		c.add(LevelWarn, path, fmt.Sprintf("directory mode %04o lets the group in", m), "chmod 700 "+path+" unless that group is the broker's")
	}
}

func (c *checker) checkItem(it checked) {
	full := c.d.path(it.path)
	leaf := it.certs[0]
	var good []string

	// File modes.
	if st, err := os.Stat(full); err == nil && st.Mode().Perm()&0o022 != 0 {
		c.add(LevelError, full, fmt.Sprintf("mode %04o lets others change the certificate", st.Mode().Perm()), "chmod 644 "+full)
	}
	c.checkKey(it, leaf, &good)

	// Profile and usages.
	switch it.profile {
	case ProfileRoot, ProfileIntermediate:
		if !leaf.IsCA {
			c.add(LevelError, full, "is not a CA certificate (CA:FALSE)", "")
		}
		if leaf.KeyUsage&x509.KeyUsageCertSign == 0 {
			c.add(LevelError, full, "lacks keyCertSign key usage", "")
		}
		if it.profile == ProfileRoot && leaf.CheckSignatureFrom(leaf) != nil {
			c.add(LevelError, full, "is not self-signed; ca.crt must be the root that clients trust", "put the root CA in ca.crt")
		}
	default:
		c.checkUsages(it, leaf, full, &good)
	}

	// Chain.
	if it.profile != ProfileRoot && c.rootHave {
		inters := c.inters.Clone()
		for _, x := range it.certs[1:] {
			inters.AddCert(x)
		}
		usage := []x509.ExtKeyUsage{x509.ExtKeyUsageAny}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: c.roots, Intermediates: inters, CurrentTime: c.now, KeyUsages: usage})
		var inv x509.CertificateInvalidError
		switch {
		case err == nil:
			good = append(good, "chain verifies to "+RootCertFile)
		case errors.As(err, &inv) && inv.Reason == x509.Expired:
			// reported below with the dates
		case errors.As(err, new(x509.UnknownAuthorityError)):
			c.add(LevelError, full, fmt.Sprintf("is not signed by this directory's CA (issuer %q)", leaf.Issuer), "reissue it from this CA, or sign its CSR: "+explain.SignCSR(c.d.Path))
		default:
			c.add(LevelError, full, "chain does not verify: "+err.Error(), "")
		}
		if it.profile != ProfileIntermediate && len(it.certs) == 1 && leaf.Issuer.String() != c.root.Subject.String() {
			c.add(LevelWarn, full, "holds only the leaf, but it is signed by an intermediate; TLS peers need the chain", "append intermediate.crt to "+full)
		}
	}

	// Validity.
	within := c.o.Within
	if within == 0 {
		within = ExpiryWarning
	}
	switch {
	case it.revoked != nil:
		c.add(LevelWarn, full, fmt.Sprintf("revoked on %s (%s): brokers that read %s refuse it; it is not renewed",
			it.revoked.RevokedAt.UTC().Format(time.DateOnly), it.revoked.RevocationReason, CRLFile),
			"nothing to do; if the device is to come back, give it a new certificate: "+reissueFix(it, c.d.Path))
		return
	case it.replaced && c.now.After(leaf.NotAfter):
		c.add(LevelWarn, full, fmt.Sprintf("replaced by a renewal and expired on %s", leaf.NotAfter.UTC().Format(time.DateOnly)),
			"nothing to do: the next pki crl, renew or revoke removes it")
	case it.replaced:
		good = append(good, fmt.Sprintf("replaced by a renewal; still valid until %s", leaf.NotAfter.UTC().Format(time.DateOnly)))
	case c.now.After(leaf.NotAfter):
		p := explain.Expired(string(it.profile)+" certificate", leaf.NotAfter, renewFix(it, c.d.Path))
		c.out = append(c.out, Finding{Level: LevelError, Path: full, Message: p.Message, Fix: p.Fix, Expiring: true})
	case c.now.Before(leaf.NotBefore):
		p := explain.NotYetValid(string(it.profile)+" certificate", leaf.NotBefore)
		c.add(LevelError, full, p.Message, p.Fix)
	case leaf.NotAfter.Sub(c.now) < within:
		c.out = append(c.out, Finding{Level: LevelWarn, Path: full, Expiring: true, Fix: renewFix(it, c.d.Path),
			Message: fmt.Sprintf("expires on %s, in %d days", leaf.NotAfter.UTC().Format(time.DateOnly), int(leaf.NotAfter.Sub(c.now).Hours()/24))})
	default:
		good = append(good, fmt.Sprintf("valid until %s", leaf.NotAfter.UTC().Format(time.DateOnly)))
	}
	if len(good) > 0 {
		c.add(LevelOK, full, string(it.profile)+": "+strings.Join(good, "; "), "")
	}
}

func reissueFix(it checked, dir string) string {
	name := strings.TrimSuffix(filepath.Base(it.path), ".crt")
	switch it.profile {
	case ProfileRoot, ProfileIntermediate:
		return "make a new CA and reissue its certificates"
	case ProfileClient:
		return explain.ReissueClient(name, dir)
	case ProfileBootstrap, ProfileClaim:
		return explain.Reissue(string(it.profile), name, dir)
	}
	return explain.ReissueServer(name, dir, nil)
}

func renewFix(it checked, dir string) string {
	if it.profile.IsCA() {
		return "make a new CA and reissue its certificates"
	}
	return explain.Renew(strings.TrimSuffix(filepath.Base(it.path), ".crt"), dir, false)
}

func (c *checker) checkKey(it checked, leaf *x509.Certificate, good *[]string) {
	if it.keyPath == "" {
		return
	}
	kp := it.keyPath
	if !filepath.IsAbs(kp) {
		kp = c.d.path(kp)
	}
	st, err := os.Stat(kp)
	if errors.Is(err, fs.ErrNotExist) {
		if it.profile.IsCA() {
			c.add(LevelWarn, kp, "CA key is missing: new certificates cannot be issued", "restore it if it is kept offline on purpose")
		} else {
			c.add(LevelError, kp, "key is missing", reissueFix(it, c.d.Path))
		}
		return
	} else if err != nil {
		c.add(LevelError, kp, err.Error(), "")
		return
	}
	m := st.Mode().Perm()
	switch {
	case m&0o007 != 0:
		c.add(LevelError, kp, fmt.Sprintf("key mode %04o is readable by every user", m), "chmod 600 "+kp)
	case m&0o070 != 0 && !c.grantedToBroker(st, 0o040):
		c.add(LevelWarn, kp, fmt.Sprintf("key mode %04o is readable by the group", m), "chmod 600 "+kp+" unless the group is the broker's")
	}
	data, err := readFile(kp)
	if err != nil {
		c.add(LevelError, kp, err.Error(), "")
		return
	}
	var pw []byte
	if isEncryptedKey(data) {
		if !it.profile.IsCA() {
			c.add(LevelError, kp, "key is encrypted: a broker or client started without a terminal cannot use it",
				"decrypt it: openssl pkey -in "+kp+" -out "+kp+".new && mv "+kp+".new "+kp)
			return
		}
		*good = append(*good, "key encrypted")
		if c.d.CAPassword == nil {
			return // cannot compare without the password; check never prompts
		}
		if pw, err = c.d.CAPassword(); err != nil {
			c.add(LevelError, kp, err.Error(), "")
			return
		}
	}
	k, err := parseKey(data, kp, pw)
	if err != nil {
		c.add(LevelError, kp, err.Error(), "")
		return
	}
	if !keyMatches(k, leaf.PublicKey) {
		p := explain.KeyMismatch(kp, c.d.path(it.path))
		c.add(LevelError, kp, p.Message, reissueFix(it, c.d.Path))
		return
	}
	*good = append(*good, "key matches")
}

func (c *checker) checkUsages(it checked, leaf *x509.Certificate, full string, good *[]string) {
	if leaf.IsCA {
		c.add(LevelError, full, "is a CA certificate where a leaf is expected", "reissue it: "+reissueFix(it, c.d.Path))
		return
	}
	has := func(u x509.ExtKeyUsage) bool { return slices.Contains(leaf.ExtKeyUsage, u) }
	server, client, anyU := has(x509.ExtKeyUsageServerAuth), has(x509.ExtKeyUsageClientAuth), has(x509.ExtKeyUsageAny)
	switch it.profile {
	case ProfileServer:
		if !server && !anyU {
			c.add(LevelError, full, "lacks serverAuth: TLS clients will reject it as a broker certificate", reissueFix(it, c.d.Path))
		} else if client || anyU {
			c.add(LevelWarn, full, "also allows clientAuth: it could be used as a client certificate", "reissue with the server profile, or as a bridge on purpose")
		}
	case ProfileClient:
		if !client && !anyU {
			c.add(LevelError, full, "lacks clientAuth: brokers will reject it as a client certificate", reissueFix(it, c.d.Path))
		} else if server || anyU {
			c.add(LevelWarn, full, "also allows serverAuth: this client could act as a broker", "reissue it with the client profile")
		}
	case ProfileBridge:
		if !(server && client) && !anyU {
			c.add(LevelError, full, "a bridge certificate needs serverAuth and clientAuth", "")
		}
	case ProfileBootstrap:
		if !client || !IsBootstrap(leaf) {
			c.add(LevelError, full, "a bootstrap certificate needs clientAuth and the bootstrap mark", reissueFix(it, c.d.Path))
		}
		if leaf.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
			c.add(LevelWarn, full, "a bootstrap certificate with digitalSignature: mosquitto would accept it as a client certificate", reissueFix(it, c.d.Path))
		}
	case ProfileClaim:
		if !client || !IsClaim(leaf) {
			c.add(LevelError, full, "a claim certificate needs clientAuth and the claim mark", reissueFix(it, c.d.Path))
		}
		if leaf.KeyUsage&x509.KeyUsageDigitalSignature != 0 {
			c.add(LevelWarn, full, "a claim certificate with digitalSignature: mosquitto would accept it as a client certificate", reissueFix(it, c.d.Path))
		}
	}
	if leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 && it.profile != ProfileBootstrap && it.profile != ProfileClaim {
		c.add(LevelError, full, "lacks digitalSignature key usage: TLS handshakes fail", reissueFix(it, c.d.Path))
	}
	if leaf.KeyUsage&(x509.KeyUsageCertSign|x509.KeyUsageCRLSign) != 0 {
		c.add(LevelError, full, "a leaf may not sign certificates or CRLs", reissueFix(it, c.d.Path))
	}
	if days := leaf.NotAfter.Sub(leaf.NotBefore).Hours() / 24; days > LeafMaxDays+1 {
		c.add(LevelWarn, full, fmt.Sprintf("is valid for %.0f days; Apple clients reject leaves over %d", days, LeafMaxDays), "")
	}
	*good = append(*good, "usages "+strings.Join(summarizeCert(leaf, c.now).ExtKeyUsage, ","))
}
