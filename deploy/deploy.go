// Package deploy lays out a complete local deployment in one directory, as
// `mqttctl up` does: a pki (CA, broker certificate, a demo client), a
// password file, an ACL and a mosquitto.conf that both mosquitto and
// `mqttctl serve` run. Every step reuses what exists, so running it again
// changes nothing.
package deploy

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/pki"
)

// DemoClient is the client certificate (and password user) made for trying
// the broker.
const DemoClient = "demo"

// Layout names the files of a deployment directory.
type Layout struct {
	Dir, PKI, Passwd, DemoPassword, ACL, Conf, Data string
	Listen                                          string
	Host                                            string // host part to dial
	Port                                            int
	// WebSockets is the wss listener's [ADDR]:PORT ("" for none) and
	// WSPort its port.
	WebSockets string
	WSPort     int
}

// NewLayout returns the file names below dir (made absolute); websockets
// is the address of a wss listener, "" for none.
func NewLayout(dir, listen, websockets string) (*Layout, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bind, port, err := confgen.SplitListen(listen)
	if err != nil {
		return nil, err
	}
	host := "localhost"
	if bind != "" && bind != "127.0.0.1" && bind != "::1" {
		host = bind
	}
	l := &Layout{
		Dir: abs, PKI: filepath.Join(abs, "pki"), Passwd: filepath.Join(abs, "passwd"),
		DemoPassword: filepath.Join(abs, "demo.password"), ACL: filepath.Join(abs, "acl"),
		Conf: filepath.Join(abs, "mosquitto.conf"), Data: filepath.Join(abs, "data"),
		Listen: listen, Host: host, Port: port, WebSockets: websockets,
	}
	if websockets != "" {
		if _, l.WSPort, err = confgen.SplitListen(websockets); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// Step is one thing Prepare made or reused.
type Step struct {
	Verb, What, Path string
}

// DemoACL is the ACL `up` writes: each client owns devices/<its name>/#,
// the demo client may use demo/# and read $SYS.
const DemoACL = `# written by mqttctl up; edit freely (mqttctl acl add ...)
pattern readwrite devices/%u/#

user demo
topic readwrite demo/#
topic read $SYS/#
`

// Prepare creates what is missing and returns what it did. group, when
// not empty and running as root, is given read access to the files the
// config names (mosquitto started as root drops to that user).
func Prepare(l *Layout, group string) ([]Step, []string, error) {
	var steps []Step
	var notes []string
	if err := fsx.MkdirPrivate(l.Dir); err != nil {
		return nil, nil, err
	}
	rep, err := (&pki.Dir{Path: l.PKI}).Init(pki.InitOptions{Clients: []string{DemoClient}})
	if err != nil {
		return nil, nil, err
	}
	verb := "reused"
	if rep.Changed() {
		verb = "created"
	}
	steps = append(steps, Step{verb, "certificates (CA, broker, demo client)", l.PKI})
	notes = append(notes, rep.Warnings...)

	verb = "reused"
	if _, err := os.Stat(l.Passwd); errors.Is(err, fs.ErrNotExist) {
		pw := make([]byte, 12)
		if _, err := rand.Read(pw); err != nil {
			return nil, nil, err
		}
		secret := base64.RawURLEncoding.EncodeToString(pw)
		hash, err := confgen.HashPassword([]byte(secret), 0)
		if err != nil {
			return nil, nil, err
		}
		var t fsx.Txn
		if err := t.Add(l.DemoPassword, []byte(secret+"\n"), 0o600, false); err != nil {
			return nil, nil, err
		}
		if err := t.Add(l.Passwd, []byte(DemoClient+":"+hash+"\n"), 0o600, false); err != nil {
			t.Abort()
			return nil, nil, err
		}
		if err := t.Commit(); err != nil {
			return nil, nil, err
		}
		verb = "created"
	}
	steps = append(steps, Step{verb, "password file (user demo; password in demo.password)", l.Passwd})

	verb = "reused"
	if _, err := os.Stat(l.ACL); errors.Is(err, fs.ErrNotExist) {
		if err := fsx.WriteFile(l.ACL, []byte(DemoACL), 0o600, false); err != nil {
			return nil, nil, err
		}
		verb = "created"
	} else if _, err := confgen.ReadACL(l.ACL); err != nil {
		return nil, nil, err
	}
	steps = append(steps, Step{verb, "ACL", l.ACL})

	if err := os.MkdirAll(l.Data, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create %s: %w", l.Data, err)
	}
	c, err := confgen.GenerateMosquitto(confgen.MosquittoOptions{PKIDir: l.PKI, Mode: "mtls", ACLFile: l.ACL, Listen: l.Listen, DataDir: l.Data, WebSockets: l.WebSockets})
	if err != nil {
		return nil, nil, err
	}
	c.Header = append(c.Header, "Written by mqttctl up; run it with mqttctl serve -c FILE or mosquitto -c FILE.")
	data := c.Marshal()
	old, err := os.ReadFile(l.Conf)
	switch {
	case err == nil && bytes.Equal(old, data):
		steps = append(steps, Step{"reused", "mosquitto.conf", l.Conf})
	case err == nil:
		if err := fsx.WriteFile(l.Conf, data, 0o644, true); err != nil {
			return nil, nil, err
		}
		steps = append(steps, Step{"updated", "mosquitto.conf (listener changed)", l.Conf})
	default:
		if err := fsx.WriteFile(l.Conf, data, 0o644, false); err != nil {
			return nil, nil, err
		}
		steps = append(steps, Step{"created", "mosquitto.conf", l.Conf})
	}
	if group != "" && os.Geteuid() == 0 {
		r, _ := c.Resolve()
		a, err := confgen.GrantBrokerAccess(r, group, l.Dir)
		if err != nil {
			return nil, nil, err
		}
		if !a.NoGroup {
			// mosquitto writes its persistence file in the data directory.
			// Sticky: the group may add its own files there, never rename
			// or remove serve's (its database, journal and TLS ticket
			// keys, which serve also refuses unless it wrote them).
			if g, err := user.LookupGroup(group); err == nil {
				if gid, err := strconv.Atoi(g.Gid); err == nil {
					_ = os.Chown(l.Data, -1, gid)
					_ = os.Chmod(l.Data, 0o770|os.ModeSticky)
				}
			}
			notes = append(notes, fmt.Sprintf("the %s group can read the files mosquitto.conf names, so mosquitto started as root works too", group))
			notes = append(notes, a.Warnings...)
		}
	}
	return steps, notes, nil
}

// ListenError is a listen address of the layout that cannot be bound.
type ListenError struct {
	Addr       string
	WebSockets bool // the wss listener's address, else the MQTT one
	Err        error
}

func (e *ListenError) Error() string {
	which := "the mutual-TLS listener"
	if e.WebSockets {
		which = "the wss listener"
	}
	return fmt.Sprintf("listen on %s (%s): %v", e.Addr, which, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// CheckListen binds every listen address of the layout (all at once, so two
// that are the same are caught too) and lets go of them: a port in use is
// found before Prepare writes anything.
func (l *Layout) CheckListen() error {
	type listen struct {
		addr string
		ws   bool
	}
	addrs := []listen{{l.Listen, false}}
	if l.WebSockets != "" {
		addrs = append(addrs, listen{l.WebSockets, true})
	}
	for _, a := range addrs {
		bind, port, err := confgen.SplitListen(a.addr)
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(bind, strconv.Itoa(port)))
		if err != nil {
			return &ListenError{Addr: a.addr, WebSockets: a.ws, Err: err}
		}
		defer ln.Close()
	}
	return nil
}
