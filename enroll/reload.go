package enroll

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"
)

// CertReloader serves the certificate and key files as they are: after a
// renewal (pki renew server) the next handshake gets the new pair, without
// a restart. It looks at the files (size and modification time) at most
// once per Interval; a new pair that does not load (half written, a key
// that does not match) is logged and the old one kept.
type CertReloader struct {
	CertFile, KeyFile string
	Log               *slog.Logger
	Interval          time.Duration // 0: one second

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   string
	checked time.Time
}

// NewCertReloader loads the pair (an error if it does not load).
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{CertFile: certFile, KeyFile: keyFile, Log: log, Interval: time.Second}
	stamp, err := r.stampNow()
	if err != nil {
		return nil, err
	}
	c, err := r.load()
	if err != nil {
		return nil, err
	}
	r.cert, r.stamp, r.checked = c, stamp, time.Now()
	return r, nil
}

func (r *CertReloader) stampNow() (string, error) {
	var stamp string
	for _, f := range []string{r.CertFile, r.KeyFile} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		stamp += fmt.Sprintf("%d:%d:%d;", fi.Size(), fi.ModTime().UnixNano(), ino(fi))
	}
	return stamp, nil
}

func (r *CertReloader) load() (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(r.CertFile, r.KeyFile)
	if err != nil {
		return nil, err
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, err
		}
	}
	return &c, nil
}

// Reload loads the files if they changed since the last load (force: in
// any case), and reports whether the served pair changed.
func (r *CertReloader) Reload(force bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.checked = time.Now()
	stamp, err := r.stampNow()
	if err != nil {
		r.Log.Error("the server's certificate files cannot be read; serving the previous pair", "cert", r.CertFile, "key", r.KeyFile, "error", err.Error())
		return false
	}
	if stamp == r.stamp && !force {
		return false
	}
	c, err := r.load()
	if err != nil {
		// Kept: the next look tries again (the other file may be on its way).
		r.Log.Error("the server's new certificate and key do not load; serving the previous pair", "cert", r.CertFile, "key", r.KeyFile, "error", err.Error())
		return false
	}
	r.stamp = stamp
	if c.Leaf.Equal(r.cert.Leaf) {
		return false
	}
	r.cert = c
	r.Log.Info("serving a new server certificate", "cert", r.CertFile, "serial", fmt.Sprintf("%X", c.Leaf.SerialNumber), "not_after", c.Leaf.NotAfter.UTC().Format(time.RFC3339))
	return true
}

// GetCertificate is for tls.Config.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	r.mu.Lock()
	due := time.Since(r.checked) >= r.Interval
	r.mu.Unlock()
	if due {
		r.Reload(false)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cert, nil
}
