package confgen_test

// Tests against the real mosquitto 2.0: generated configs, password files and
// ACLs loaded by the broker, with mosquitto_pub/sub and openssl s_client as
// clients.

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/pki"
)

type broker struct {
	port int
	dir  string
	log  *testutil.SyncBuffer
}

// startMosquitto generates the config for o on a free port and runs mosquitto.
func startMosquitto(t *testing.T, dir string, o confgen.MosquittoOptions) *broker {
	t.Helper()
	return startVersion(t, testutil.Mosquitto2011(t), dir, o)
}

// startVersion is startMosquitto with the given mosquitto version.
func startVersion(t *testing.T, mq testutil.Mosquitto, dir string, o confgen.MosquittoOptions) *broker {
	t.Helper()
	port := testutil.FreePort(t)
	o.Listen = fmt.Sprintf("127.0.0.1:%d", port)
	o.DataDir = filepath.Join(dir, "data")
	c, err := confgen.GenerateMosquitto(o)
	if err != nil {
		t.Fatal(err)
	}
	return &broker{port: port, dir: dir, log: mq.Start(t, dir, c)}
}

func (b *broker) args(extra ...string) []string {
	return append([]string{"-h", "localhost", "-p", fmt.Sprint(b.port), "-q", "1"}, extra...)
}

// publishRetained publishes a retained message and returns the client's output and error.
func (b *broker) publish(t *testing.T, topic, msg string, auth ...string) (string, error) {
	pub := testutil.RequireBinary(t, "mosquitto_pub")
	return testutil.Run(t, b.dir, nil, pub, b.args(append(auth, "-t", topic, "-m", msg, "-r")...)...)
}

// receive subscribes and waits up to wait seconds for one message.
func (b *broker) receive(t *testing.T, topic string, wait int, auth ...string) (string, bool) {
	sub := testutil.RequireBinary(t, "mosquitto_sub")
	out, err := testutil.Run(t, b.dir, nil, sub, b.args(append(auth, "-t", topic, "-C", "1", "-W", fmt.Sprint(wait))...)...)
	return out, err == nil
}

func newPKI(t *testing.T, dir string, intermediate bool, clients ...string) string {
	t.Helper()
	p := filepath.Join(dir, "pki")
	if _, err := (&pki.Dir{Path: p}).Init(pki.InitOptions{Intermediate: intermediate, Clients: clients, Hosts: []string{"localhost", "127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	return p
}

func certArgs(p, name string) []string {
	return []string{"--cafile", filepath.Join(p, "ca.crt"), "--cert", filepath.Join(p, "clients", name+".crt"), "--key", filepath.Join(p, "clients", name+".key")}
}

func TestMosquittoMutualTLS(t *testing.T) {
	for _, inter := range []bool{false, true} {
		t.Run(fmt.Sprintf("intermediate=%v", inter), func(t *testing.T) {
			dir := testutil.ReachableDir(t)
			p := newPKI(t, dir, inter, "alice")
			d := &pki.Dir{Path: p}
			past := time.Now().Add(-72 * time.Hour)
			if _, err := d.Issue(pki.IssueOptions{Profile: pki.ProfileClient, Name: "expired", NotBefore: past.Add(-time.Hour), NotAfter: past}); err != nil {
				t.Fatal(err)
			}
			other := newPKI(t, filepath.Join(dir, "o"), false, "mallory")
			b := startMosquitto(t, dir, confgen.MosquittoOptions{PKIDir: p, Mode: "mtls"})

			if out, err := b.publish(t, "t/1", "hello", certArgs(p, "alice")...); err != nil {
				t.Fatalf("valid client refused: %v %s\n%s", err, out, b.log.String())
			}
			if out, ok := b.receive(t, "t/1", 3, certArgs(p, "alice")...); !ok || !strings.Contains(out, "hello") {
				t.Fatalf("message not delivered: %q\n%s", out, b.log.String())
			}
			for name, auth := range map[string][]string{
				"no certificate":      {"--cafile", filepath.Join(p, "ca.crt")},
				"another CA's client": {"--cafile", filepath.Join(p, "ca.crt"), "--cert", filepath.Join(other, "clients/mallory.crt"), "--key", filepath.Join(other, "clients/mallory.key")},
				"expired certificate": certArgs(p, "expired"),
			} {
				if out, err := b.publish(t, "t/2", "x", auth...); err == nil {
					t.Errorf("%s: accepted\n%s", name, out)
				}
			}
			// openssl s_client sees a verified chain.
			openssl := testutil.RequireBinary(t, "openssl")
			out, _ := testutil.Run(t, dir, []byte{}, openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", b.port),
				"-verify_return_error", "-verify_hostname", "localhost", "-CAfile", filepath.Join(p, "ca.crt"),
				"-cert", filepath.Join(p, "clients/alice.crt"), "-cert_chain", filepath.Join(p, "clients/alice.crt"), "-key", filepath.Join(p, "clients/alice.key"))
			if !strings.Contains(out, "Verify return code: 0 (ok)") {
				t.Fatalf("s_client:\n%s", out)
			}
		})
	}
}

func TestMosquittoOneWayTLSWithPasswords(t *testing.T) {
	dir := testutil.ReachableDir(t)
	p := newPKI(t, dir, false)
	pw := filepath.Join(dir, "passwd")
	if err := confgen.EditPasswordFile(pw, true, func(pf *confgen.PasswordFile) error {
		h, err := confgen.HashPassword([]byte("s3cret!"), 0)
		pf.Set("bob", h)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b := startMosquitto(t, dir, confgen.MosquittoOptions{PKIDir: p, Mode: "tls", PasswordFile: pw})
	ca := []string{"--cafile", filepath.Join(p, "ca.crt")}
	if out, err := b.publish(t, "t/ok", "hi", append(ca, "-u", "bob", "-P", "s3cret!")...); err != nil {
		t.Fatalf("mqttctl password refused by mosquitto: %s\n%s", out, b.log.String())
	}
	if out, ok := b.receive(t, "t/ok", 3, append(ca, "-u", "bob", "-P", "s3cret!")...); !ok || !strings.Contains(out, "hi") {
		t.Fatalf("not delivered: %s", out)
	}
	out, err := b.publish(t, "t/no", "x", append(ca, "-u", "bob", "-P", "wrong")...)
	if err == nil || !strings.Contains(out, "not authorised") {
		t.Fatalf("wrong password: err=%v %s", err, out)
	}
}

// TestMosquittoACLMatchesMatcher: the ACL matcher serve uses allows what
// mosquitto 2.0.11 and 2.1.2 (its acl-file code) allow, on the same file.
func TestMosquittoACLMatchesMatcher(t *testing.T) {
	dir := testutil.ReachableDir(t)
	p := newPKI(t, dir, false)
	aclText := `# anonymous rules are unused here: anonymous is off
topic read public/#

pattern readwrite devices/%u/#
pattern read shared/%c/status
pattern readwrite cdev/%c/#

user admin
topic readwrite #

user alice
topic readwrite alice/#
topic read sensors/+/temp
topic deny sensors/secret/temp
topic write commands/#
topic readwrite tenants/acme.corp/#

user carol
topic read carol/in
`
	aclPath := filepath.Join(dir, "acl")
	if err := os.WriteFile(aclPath, []byte(aclText), 0o600); err != nil {
		t.Fatal(err)
	}
	acl, err := confgen.ParseACL([]byte(aclText), aclPath)
	if err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "passwd")
	confgen.EditPasswordFile(pw, true, func(pf *confgen.PasswordFile) error {
		for _, u := range []string{"admin", "alice", "carol", "dave"} {
			h, _ := confgen.HashPassword([]byte(u+"-pw"), 0)
			pf.Set(u, h)
		}
		return nil
	})
	// Both versions at once: the cases mostly wait for messages that do not come.
	testutil.EachMosquittoParallel(t, func(t *testing.T, mq testutil.Mosquitto) {
		vdir := filepath.Join(dir, mq.Name()) // its own mosquitto.conf and data
		if err := os.Mkdir(vdir, 0o711); err != nil {
			t.Fatal(err)
		}
		checkACL(t, startVersion(t, mq, vdir, confgen.MosquittoOptions{PKIDir: p, Mode: "tls", PasswordFile: pw, ACLFile: aclPath}), p, acl)
	})
}

// checkACL compares what mosquitto b lets each user publish and receive
// with what acl allows.
func checkACL(t *testing.T, b *broker, p string, acl *confgen.ACL) {
	dir := b.dir
	auth := func(u, id string) []string {
		return []string{"--cafile", filepath.Join(p, "ca.crt"), "-u", u, "-P", u + "-pw", "-i", id}
	}
	cases := []struct {
		user, topic string
		access      confgen.Access
		id          string // default USER-client
	}{
		{"alice", "alice/x", confgen.Write, ""},
		{"alice", "alice/x/y", confgen.Read, ""},
		{"alice", "sensors/kitchen/temp", confgen.Read, ""},
		{"alice", "sensors/kitchen/temp", confgen.Write, ""},
		{"alice", "sensors/secret/temp", confgen.Read, ""},
		{"alice", "commands/door", confgen.Write, ""},
		{"alice", "commands/door", confgen.Read, ""},
		{"alice", "devices/alice/state", confgen.Write, ""},
		{"alice", "devices/bob/state", confgen.Write, ""},
		{"carol", "carol/in", confgen.Read, ""},
		{"carol", "carol/in", confgen.Write, ""},
		{"dave", "devices/dave/x", confgen.Read, ""},
		{"dave", "public/news", confgen.Read, ""},
		{"dave", "shared/dave-client/status", confgen.Read, ""},
		{"dave", "shared/other/status", confgen.Read, ""},
		// issue 17: what the RabbitMQ and EMQX translations must not grant.
		{"dave", "cdev/victim/cmd", confgen.Write, ".*"},
		{"dave", "cdev/victim/cmd", confgen.Write, "x|.*"},
		{"dave", "cdev/d1/cmd", confgen.Write, "d1"},
		{"dave", "devices/dave/x", confgen.Write, "c+1"}, // patterns give nothing to a client id with '+'
		{"alice", "tenants/acme/corp/x", confgen.Write, ""},
		{"alice", "tenants/acme.corp/x", confgen.Write, ""},
	}
	allowed, denied := 0, 0
	for i, c := range cases {
		topic := c.topic
		id := c.id
		if id == "" {
			id = c.user + "-client"
		}
		want := acl.Allowed(confgen.Client{Username: c.user, ClientID: id}, topic, c.access)
		msg := fmt.Sprintf("m%d", i)
		var got bool
		if c.access == confgen.Write {
			b.publish(t, topic, msg, auth(c.user, id)...)
			out, ok := b.receive(t, topic, 1, auth("admin", "admin-obs")...)
			got = ok && strings.Contains(out, msg)
		} else {
			if out, err := b.publish(t, topic, msg, auth("admin", "admin-pub")...); err != nil {
				t.Fatalf("admin publish: %s", out)
			}
			out, ok := b.receive(t, topic, 1, auth(c.user, id)...)
			got = ok && strings.Contains(out, msg)
		}
		// Clear the retained message for the next case on the same topic.
		pub := testutil.RequireBinary(t, "mosquitto_pub")
		testutil.Run(t, dir, nil, pub, b.args(append(auth("admin", "admin-clr"), "-t", topic, "-r", "-n")...)...)
		if got != want {
			t.Errorf("%s (client id %q) %s %s: mosquitto allowed=%v, matcher allowed=%v", c.user, id, c.access, topic, got, want)
		}
		if want {
			allowed++
		} else {
			denied++
		}
	}
	if allowed < 4 || denied < 4 {
		t.Fatalf("the table should exercise both outcomes: %d allowed, %d denied", allowed, denied)
	}
}

// TestMosquittoPasswdInterop: files mosquitto_passwd 2.0.11 and 2.1.2
// write are read and verified, and each version's mosquitto_passwd edits a
// file mqttctl wrote without complaint.
func TestMosquittoPasswdInterop(t *testing.T) {
	testutil.EachMosquitto(t, func(t *testing.T, mq testutil.Mosquitto) {
		mp := mq.Tool(t, "mosquitto_passwd")
		dir := t.TempDir()
		path := filepath.Join(dir, "passwd")
		testutil.MustRun(t, dir, mp, "-c", "-b", path, "bob", "hunter2")
		testutil.MustRun(t, dir, mp, "-b", path, "eve", "pa:ss word")
		pf, err := confgen.ReadPasswordFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !pf.Verify("bob", []byte("hunter2")) || !pf.Verify("eve", []byte("pa:ss word")) || pf.Verify("bob", []byte("hunter3")) {
			t.Fatalf("mosquitto_passwd file does not verify as expected:\n%s", pf.Marshal())
		}
		// mosquitto_passwd edits a file mqttctl wrote without complaint.
		err = confgen.EditPasswordFile(path, false, func(pf *confgen.PasswordFile) error {
			h, err := confgen.HashPassword([]byte("fromgo"), 0)
			pf.Set("gopher", h)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		out := testutil.MustRun(t, dir, mp, "-b", path, "zed", "z")
		if strings.Contains(out, "Corrupt") {
			t.Fatalf("mosquitto_passwd: %s", out)
		}
		pf, _ = confgen.ReadPasswordFile(path)
		if !pf.Verify("gopher", []byte("fromgo")) || !pf.Verify("zed", []byte("z")) || !pf.Verify("bob", []byte("hunter2")) {
			t.Fatalf("after a mosquitto_passwd edit:\n%s", pf.Marshal())
		}
	})
}
