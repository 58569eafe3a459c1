package broker

import (
	"crypto/tls"
	"errors"
	"os"
	"strings"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/mqttwire"

	"github.com/mqttctl/mqttctl/confgen"
)

// DefaultWatchInterval is how often serve looks at the certificate, key and
// CRL files of its TLS listeners.
const DefaultWatchInterval = time.Second

// stamp identifies a file's version: a rename-replace (how mqttctl writes)
// changes the inode, an edit in place the time or size.
type stamp struct {
	mod  time.Time
	size int64
	ino  uint64
	err  bool
}

func stampOf(path string) stamp {
	st, err := os.Stat(path)
	if err != nil {
		return stamp{err: true}
	}
	return stamp{mod: st.ModTime(), size: st.Size(), ino: inode(st)}
}

// watchedFiles is what the watcher last saw of one listener's files.
type watchedFiles struct {
	cert, key, crl stamp
}

// watch reloads a TLS listener's certificate and key when they change
// (renewal without downtime: connected clients stay) and its CRL when it
// changes, disconnecting every connected client whose certificate chain
// the new CRL revokes. mosquitto reads these files only at start and on
// SIGHUP, and checks revocation only at the handshake.
func (b *Broker) watch(every time.Duration, stop <-chan struct{}) {
	seen := map[*listenerState]watchedFiles{}
	for _, ls := range b.listeners {
		if ls.tls != nil {
			seen[ls] = b.stamps(ls)
		}
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastRotate := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if b.tickets != nil && time.Since(lastRotate) >= time.Minute {
			lastRotate = time.Now()
			if changed, err := b.tickets.rotate(lastRotate); err != nil {
				b.log.Error("TLS ticket key rotation failed; the current keys stay in use", "error", err)
			} else if changed {
				b.tickets.apply(b.tlsConfs())
				b.log.Info("TLS ticket key rotated", "file", b.tickets.path)
			}
		}
		for ls, old := range seen {
			cur := b.stamps(ls)
			if cur.cert != old.cert || cur.key != old.key {
				if err := ls.tls.reloadCert(); err != nil {
					b.log.Error("certificate change not applied; the previous certificate stays in use", "listener", ls.id, "error", err)
				} else {
					b.log.Info("certificate reloaded: new handshakes use it, connected clients stay", "listener", ls.id,
						"serial", serialOf(ls.tls.cert.Load()))
				}
			}
			if cur.crl != old.crl {
				b.reloadCRL(ls)
			}
			seen[ls] = cur
		}
	}
}

func (b *Broker) stamps(ls *listenerState) watchedFiles {
	w := watchedFiles{cert: stampOf(ls.spec.TLS.CertFile), key: stampOf(ls.spec.TLS.KeyFile)}
	if ls.spec.TLS.CRLFile != "" {
		w.crl = stampOf(ls.spec.TLS.CRLFile)
	}
	return w
}

func serialOf(c *tls.Certificate) string {
	if c == nil || c.Leaf == nil {
		return ""
	}
	return c.Leaf.SerialNumber.Text(16)
}

// reloadCRL applies a changed crlfile and disconnects connected clients it
// revokes. A CRL that cannot be used refuses every new client until a good
// one is written (fail closed).
func (b *Broker) reloadCRL(ls *listenerState) {
	if err := ls.tls.reloadCRL(); err != nil {
		b.log.Error("CRL unusable: every new client on this listener is refused until it is fixed", "listener", ls.id,
			"file", ls.spec.TLS.CRLFile, "error", err)
		return
	}
	b.log.Info("CRL reloaded", "listener", ls.id, "file", ls.spec.TLS.CRLFile)
	b.warnCRL(ls)
	b.dropRevoked(ls)
}

// warnCRL logs what makes the listener's CRL refuse clients wholesale
// (expired, not yet valid, a CA without a CRL).
func (b *Broker) warnCRL(ls *listenerState) {
	for _, err := range ls.tls.crlProblems() {
		msg := err.Error()
		var ce *confgen.ConfigError
		if errors.As(err, &ce) {
			msg = strings.TrimPrefix(msg, ce.Pos.String()+": ")
		}
		b.log.Warn("crlfile refuses clients", "listener", ls.id, "file", ls.spec.TLS.CRLFile, "problem", msg)
	}
}

// dropRevoked disconnects the listener's clients whose verified chain the
// current CRL revokes.
func (b *Broker) dropRevoked(ls *listenerState) {
	var drop []*engine.Client
	b.srv.Clients(func(cl *engine.Client) bool {
		if cl.Listener != ls.id {
			return true
		}
		if cn, err := b.revokedClient(ls, cl); err != nil {
			b.log.Info("client disconnected: its certificate is revoked", "listener", ls.id, "client", cl.ID, "cert_cn", cn, "reason", err.Error())
			drop = append(drop, cl)
		}
		return true
	})
	for _, cl := range drop {
		b.srv.DisconnectClient(cl, mqttwire.NotAuthorized)
	}
}

// revokedClient returns, as an error, why the current CRL of ls refuses
// the verified chain cl connected with (nil: not revoked, or no TLS
// client certificate), and the certificate's CN.
func (b *Broker) revokedClient(ls *listenerState, cl *engine.Client) (string, error) {
	if ls.tls == nil || cl.TLS == nil || len(cl.TLS.PeerCertificates) == 0 {
		return "", nil
	}
	chains, err := ls.tls.chains(*cl.TLS)
	if err == nil {
		err = ls.tls.revoked(chains)
	}
	return cl.TLS.PeerCertificates[0].Subject.CommonName, err
}
