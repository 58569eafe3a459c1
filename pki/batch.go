package pki

import (
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

// ManifestFile is the name of a batch's manifest in its bundle directory.
const ManifestFile = "manifest.json"

// BatchOptions configures Dir.IssueBatch.
type BatchOptions struct {
	File    string // the batch file's name, for messages
	Devices []BatchDevice
	KeyType KeyType
	Days    int
	// BundleDir, when set, receives a directory per device (BundleDir/NAME:
	// NAME.key, NAME.crt, ca.crt) and the batch's manifest.json. It must lie
	// outside the pki directory.
	BundleDir string
	P12       bool // also NAME.p12 and its generated password NAME.p12.pass
	CHeader   bool // also NAME.h: CA, certificate and key as C strings
	// Progress, when set, is called as devices are made (done of total).
	Progress func(done, total int)
}

// ManifestEntry is one device of a batch's manifest.
type ManifestEntry struct {
	Name     string    `json:"name"`
	Serial   string    `json:"serial"`
	NotAfter time.Time `json:"notAfter"`
	SHA256   string    `json:"sha256"`
	Cert     string    `json:"cert"`             // in the pki directory
	Bundle   string    `json:"bundle,omitempty"` // the device's bundle directory
}

// Manifest lists what one batch issued.
type Manifest struct {
	Issued  time.Time       `json:"issued"`
	CA      string          `json:"ca"` // SHA-256 fingerprint of the root CA
	Devices []ManifestEntry `json:"devices"`
}

// BatchResult says what Dir.IssueBatch wrote.
type BatchResult struct {
	Manifest     Manifest
	ManifestPath string // "" without a bundle directory
	Warnings     []string
}

// batchItem is one device on its way: its key, certificate and files.
type batchItem struct {
	dev   BatchDevice
	cert  *x509.Certificate
	files []batchFile
	err   error
}

type batchFile struct {
	path string // absolute, or relative to the pki directory (rel)
	rel  bool
	data []byte
	mode os.FileMode
}

// IssueBatch issues a client certificate and key for every device, all or
// nothing: a device whose name the index or the directory already has,
// or whose bundle files exist, refuses the whole batch (a BatchError with
// the lines), and nothing is written. Certificates go where pki issue
// client puts them (clients/NAME.crt, in the index), so that list, renew
// and revoke treat them like any client. Without a bundle directory the
// keys go there too (clients/NAME.key). With one, each key is written to
// its device's bundle only, as if the device had sent a CSR: the CA's
// machine keeps no copy of a fleet's keys once the bundles are delivered
// and deleted (renew re-signs the same key; export and renew --rekey say
// the key is on the device). Everything (index, clients/, bundles,
// manifest) is one journaled transaction with one sync pass: a crash
// leaves none or all of the batch.
func (d *Dir) IssueBatch(o BatchOptions) (res *BatchResult, err error) {
	if len(o.Devices) == 0 {
		return nil, fmt.Errorf("%s: no devices", o.File)
	}
	if o.KeyType == "" {
		o.KeyType = DefaultKeyType
	}
	if o.Days == 0 {
		o.Days = DefaultLeafDays
	}
	warn, err := leafDays(o.Days, false)
	if err != nil {
		return nil, err
	}
	if (o.P12 || o.CHeader) && o.BundleDir == "" {
		return nil, errors.New("a p12 or a C header goes into a device's bundle: give a bundle directory")
	}
	if !fileExists(d.path(RootCertFile)) {
		return nil, noCA(d.Path)
	}
	if o.BundleDir != "" {
		if err := d.checkBundleDir(o.BundleDir); err != nil {
			return nil, err
		}
	}
	// A refusal removes the directories this batch made, once s.end
	// (deferred below, so run first) has removed the staged files.
	var made madeDirs
	defer func() {
		if err != nil && !errors.Is(err, fsx.ErrCrashed) {
			made.remove()
		}
	}()
	keyWarn := o.KeyType.Warning()
	if o.CHeader && o.KeyType == Ed25519 {
		keyWarn = "the C headers hold Ed25519 keys, which ESP-IDF's and Arduino's mbedTLS cannot use for TLS (the device's handshake fails): for ESP32 firmware use the key type ec-p256 (the default)"
	}
	s, err := d.begin(warn, keyWarn)
	if err != nil {
		return nil, err
	}
	defer s.end()
	if err := s.checkBatchFree(o); err != nil {
		return nil, err
	}
	iss, err := s.issuer()
	if err != nil {
		return nil, err
	}
	nb, na := s.validity(o.Days)
	if na.After(iss.Cert.NotAfter) {
		s.rep.warn("the certificates would outlive their CA: they end with it on %s", iss.Cert.NotAfter.Format(time.DateOnly))
	}
	items := make([]batchItem, len(o.Devices))
	for i, dev := range o.Devices {
		items[i].dev = dev
	}
	b := batchMaker{o: o, iss: iss, root: s.root, org: orgOf(s.root, DefaultOrg), nb: nb, na: na}
	if err := b.makeAll(items); err != nil {
		return nil, err
	}
	res = &BatchResult{Manifest: Manifest{Issued: s.d.now().UTC().Truncate(time.Second), CA: Fingerprint(s.root)}}
	// The directories first (an empty one is all a crash before the
	// journal can leave), then every file in one transaction. A refusal
	// removes the directories it made (see above).
	if err := made.mkdir(s.d.path(ClientsDir)); err != nil {
		return nil, err
	}
	var outside []string
	for i := range items {
		it := &items[i]
		if o.BundleDir != "" {
			if err := made.mkdir(filepath.Join(o.BundleDir, it.dev.Name)); err != nil {
				return nil, err
			}
		}
		for _, f := range it.files {
			if !f.rel {
				outside = append(outside, f.path)
			}
		}
		p := leafPaths(ProfileClient, it.dev.Name)
		if o.BundleDir != "" {
			p.key = "" // in the bundle only
		}
		e := newEntry(it.dev.Name, ProfileClient, it.cert, p.cert, p.key)
		s.idx.Certificates = append(s.idx.Certificates, e)
		me := ManifestEntry{Name: e.Name, Serial: e.Serial, NotAfter: e.NotAfter, SHA256: e.Fingerprint, Cert: e.Cert}
		if o.BundleDir != "" {
			me.Bundle = filepath.Join(o.BundleDir, it.dev.Name)
		}
		res.Manifest.Devices = append(res.Manifest.Devices, me)
	}
	s.txn.SyncOnce = true
	if o.BundleDir != "" {
		res.ManifestPath = filepath.Join(o.BundleDir, ManifestFile)
		outside = append(outside, res.ManifestPath)
	}
	if err := s.txn.Prepare(outside...); err != nil {
		return nil, err
	}
	var files []fsx.File
	for _, it := range items {
		for _, f := range it.files {
			p := f.path
			if f.rel {
				p = s.d.path(p)
			}
			files = append(files, fsx.File{Path: p, Data: f.data, Perm: f.mode})
		}
	}
	// The index is marshalled while the files are written (both take a
	// while for thousands of devices).
	type marshalled struct {
		data []byte
		err  error
	}
	index := make(chan marshalled, 1)
	go func() {
		data, err := s.idx.Marshal()
		index <- marshalled{data, err}
	}()
	err = s.txn.AddMany(files)
	idx := <-index
	if err != nil {
		return nil, err
	}
	if idx.err != nil {
		return nil, idx.err
	}
	if res.ManifestPath != "" {
		data, err := json.MarshalIndent(res.Manifest, "", "  ")
		if err != nil {
			return nil, err
		}
		if err := s.txn.Add(res.ManifestPath, append(data, '\n'), 0o644, false); err != nil {
			return nil, err
		}
	}
	if err := s.commitIndex(idx.data); err != nil {
		return nil, err
	}
	res.Warnings = s.rep.Warnings
	return res, nil
}

// madeDirs are the directories a command made, to remove on refusal.
type madeDirs []string

// mkdir makes dir and its missing parents (0700), and records them.
func (m *madeDirs) mkdir(dir string) error {
	var missing []string
	for p := dir; ; p = filepath.Dir(p) {
		if _, err := os.Lstat(p); err == nil || filepath.Dir(p) == p {
			break
		}
		missing = append(missing, p)
	}
	err := fsx.MkdirPrivate(dir)
	for i := len(missing) - 1; i >= 0; i-- {
		if st, serr := os.Lstat(missing[i]); serr == nil && st.IsDir() {
			*m = append(*m, missing[i])
		}
	}
	return err
}

// remove removes the directories mkdir made, deepest first, if they are
// still empty.
func (m madeDirs) remove() {
	for i := len(m) - 1; i >= 0; i-- {
		os.Remove(m[i])
	}
}

// checkBundleDir refuses a bundle directory inside the pki directory, one
// that is not a directory, and one that holds a manifest already (a
// bundle directory per batch).
func (d *Dir) checkBundleDir(dir string) error {
	_, _, inside, err := d.locate(filepath.Join(dir, ManifestFile))
	if err != nil {
		return err
	}
	if inside {
		return fmt.Errorf("bundle directory %s is inside the pki directory %s: bundles are copies for the devices; choose a directory outside it", dir, d.Path)
	}
	if st, err := os.Stat(dir); err == nil && !st.IsDir() {
		return fmt.Errorf("bundle directory %s is not a directory: choose another", dir)
	}
	if fileExists(filepath.Join(dir, ManifestFile)) {
		return fmt.Errorf("%s exists: %s holds an earlier batch; give each batch its own bundle directory", filepath.Join(dir, ManifestFile), dir)
	}
	return nil
}

// checkBatchFree refuses, line by line, a device whose name the directory
// already has: an index entry or a file at clients/NAME.crt or .key, a
// valid client or bridge with the same MQTT identity, a subject in use, an
// unused enrolment token (the device would enrol into a refusal); and one
// whose bundle files exist.
func (s *state) checkBatchFree(o BatchOptions) error {
	bad := &BatchError{File: o.File}
	slots := map[string]*Entry{}
	folded := map[string]*Entry{} // foldName of clients/NAME.crt
	ids := map[string]*Entry{}
	subjects := map[string]*Entry{}
	now := s.d.now()
	for i := range s.idx.Certificates {
		e := &s.idx.Certificates[i]
		slots[slot(e.Cert)] = e
		folded[foldName(slot(e.Cert))] = e
		if e.Status == "revoked" || !now.Before(e.NotAfter) {
			continue
		}
		subjects[e.Subject] = e
		if e.Profile == ProfileClient || e.Profile == ProfileBridge {
			id := e.CN
			if id == "" && e.Profile == ProfileClient {
				id = e.Name
			}
			ids[id] = e
		}
	}
	for _, c := range []*x509.Certificate{s.root, s.inter} {
		if c != nil {
			subjects[c.Subject.String()] = &Entry{Cert: "the CA"}
		}
	}
	tf, err := s.d.loadTokens()
	if err != nil {
		return err
	}
	org := orgOf(s.root, DefaultOrg)
	for _, dev := range o.Devices {
		p := leafPaths(ProfileClient, dev.Name)
		var msg string
		switch e := slots[filepath.ToSlash(p.cert)]; {
		case e != nil:
			msg = fmt.Sprintf("%s is already in %s (%s, %s): renew it (%s) or take the line out", dev.Name, IndexFile, e.Cert, e.StatusAt(now), explain.Renew(dev.Name, s.d.Path, false))
		case folded[foldName(filepath.ToSlash(p.cert))] != nil:
			e := folded[foldName(filepath.ToSlash(p.cert))]
			msg = fmt.Sprintf("%s differs only in case from %s (%s) in %s: their files would be one file on a case-insensitive file system (a FAT USB stick, macOS); rename the device", dev.Name, e.Name, e.Cert, IndexFile)
		case fileExists(s.d.path(p.cert)) || fileExists(s.d.path(p.key)):
			msg = fmt.Sprintf("%s or %s exists but %s does not list it: run mqttctl pki reindex, or take the line out", s.d.path(p.cert), s.d.path(p.key), IndexFile)
		case ids[dev.Name] != nil:
			e := ids[dev.Name]
			msg = fmt.Sprintf("%q is already the MQTT identity of %s (valid until %s): take the line out or rename the device", dev.Name, e.Cert, e.NotAfter.Format(time.DateOnly))
		case subjects[batchSubject(dev, org).String()] != nil:
			msg = fmt.Sprintf("subject %q is already used by %s: choose another name or OU", batchSubject(dev, org).String(), subjects[batchSubject(dev, org).String()].Cert)
		case tf.unused(dev.Name, now) >= 0:
			msg = fmt.Sprintf("%s has an unused enrolment token (until %s), and its enrolment would be refused once the batch holds the name: revoke the token first (mqttctl enroll token revoke %s%s) or take the line out",
				dev.Name, tf.Tokens[tf.unused(dev.Name, now)].Expires.Format(time.RFC3339), explain.ShellWord(dev.Name), pkiFlag(s.d.Path))
		}
		if msg == "" && o.BundleDir != "" {
			msg = bundleNameClash(dev.Name)
		}
		if msg == "" && o.BundleDir != "" {
			if st, err := os.Lstat(filepath.Join(o.BundleDir, dev.Name)); err == nil && !st.IsDir() {
				msg = fmt.Sprintf("%s is there and is not a directory: give this batch a new bundle directory", filepath.Join(o.BundleDir, dev.Name))
			}
		}
		if msg == "" && o.BundleDir != "" {
			for _, f := range bundleNames(dev.Name, o) {
				if p := filepath.Join(o.BundleDir, dev.Name, f); fileExists(p) {
					msg = fmt.Sprintf("%s exists: give this batch a new bundle directory", p)
					break
				}
			}
		}
		if msg != "" && !bad.add(dev.Line, "%s", msg) {
			break
		}
	}
	return bad.orNil()
}

// pkiFlag is the --pki part of a suggested enroll command ("" for the
// default directory "pki").
func pkiFlag(dir string) string {
	if dir == "" || dir == "pki" {
		return ""
	}
	return " --pki " + explain.ShellWord(dir)
}

// batchSubject is a device's subject: CN the name, OU its OU (default
// ClientOU), O the CA's organisation.
func batchSubject(dev BatchDevice, org string) pkix.Name {
	ou := dev.OU
	if ou == "" {
		ou = ClientOU
	}
	return pkix.Name{CommonName: dev.Name, OrganizationalUnit: []string{ou}, Organization: []string{org}}
}

// bundleNameClash says why a device cannot have a bundle under its name
// ("" when it can): the name of its certificate would be the bundle's
// ca.crt (the device "ca"; "CA" too, on the case-insensitive file system
// of a USB stick), or its directory the batch's manifest.json.
func bundleNameClash(name string) string {
	if strings.EqualFold(name+".crt", RootCertFile) {
		return fmt.Sprintf("a device named %q would have its certificate %s.crt in place of the bundle's %s (the CA): choose another name", name, name, RootCertFile)
	}
	if strings.EqualFold(name, ManifestFile) {
		return fmt.Sprintf("a device named %q would have its bundle directory in place of the batch's %s: choose another name", name, ManifestFile)
	}
	return ""
}

// bundleNames are the files of a device's bundle directory.
func bundleNames(name string, o BatchOptions) []string {
	out := []string{name + ".key", name + ".crt", RootCertFile}
	if o.P12 {
		out = append(out, name+".p12", name+".p12.pass")
	}
	if o.CHeader {
		out = append(out, name+".h")
	}
	return out
}

// batchMaker makes the keys, certificates and files of a batch, on every
// core (key generation, signing and p12 encryption are the work; the
// files are written afterwards, in one transaction).
type batchMaker struct {
	o      BatchOptions
	iss    *Issuer
	root   *x509.Certificate
	org    string
	nb, na time.Time
}

func (b *batchMaker) makeAll(items []batchItem) error {
	var (
		next, done int
		mu         sync.Mutex
		wg         sync.WaitGroup
	)
	workers := min(runtime.GOMAXPROCS(0), len(items))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(items) {
					return
				}
				items[i].err = b.make(&items[i])
				mu.Lock()
				done++
				if b.o.Progress != nil && (done%100 == 0 || done == len(items)) {
					b.o.Progress(done, len(items))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for _, it := range items {
		if it.err != nil {
			return fmt.Errorf("%s:%d: %s: %w", b.o.File, it.dev.Line, it.dev.Name, it.err)
		}
	}
	return nil
}

func (b *batchMaker) make(it *batchItem) error {
	key, err := GenerateKey(b.o.KeyType)
	if err != nil {
		return err
	}
	hosts, err := parseHosts(it.dev.Hosts)
	if err != nil {
		return err
	}
	cert, err := b.iss.Sign(Template{Profile: ProfileClient, Subject: batchSubject(it.dev, b.org), Hosts: hosts,
		PublicKey: key.Public(), NotBefore: b.nb, NotAfter: b.na})
	if err != nil {
		return err
	}
	keyPEM, err := marshalKey(key, nil)
	if err != nil {
		return err
	}
	it.cert = cert
	certPEM := EncodeCerts(append([]*x509.Certificate{cert}, b.iss.Chain...)...)
	p := leafPaths(ProfileClient, it.dev.Name)
	it.files = append(it.files, batchFile{path: p.cert, rel: true, data: certPEM, mode: 0o644})
	if b.o.BundleDir == "" {
		it.files = append(it.files, batchFile{path: p.key, rel: true, data: keyPEM, mode: 0o600})
		return nil
	}
	dir := filepath.Join(b.o.BundleDir, it.dev.Name)
	name := it.dev.Name
	caPEM := EncodeCerts(b.root)
	it.files = append(it.files,
		batchFile{path: filepath.Join(dir, name+".key"), data: keyPEM, mode: 0o600},
		batchFile{path: filepath.Join(dir, name+".crt"), data: certPEM, mode: 0o644},
		batchFile{path: filepath.Join(dir, RootCertFile), data: caPEM, mode: 0o644})
	if b.o.P12 {
		pw := make([]byte, 16)
		if _, err := rand.Read(pw); err != nil {
			return err
		}
		password := hex.EncodeToString(pw)
		chain := append(append([]*x509.Certificate(nil), b.iss.Chain...), b.root)
		p12, err := encodeP12(key, cert, chain, password, name, false)
		if err != nil {
			return err
		}
		it.files = append(it.files,
			batchFile{path: filepath.Join(dir, name+".p12"), data: p12, mode: 0o600},
			batchFile{path: filepath.Join(dir, name+".p12.pass"), data: []byte(password + "\n"), mode: 0o600})
	}
	if b.o.CHeader {
		it.files = append(it.files, batchFile{path: filepath.Join(dir, name+".h"), data: CHeader(name, caPEM, certPEM, keyPEM), mode: 0o600})
	}
	return nil
}
