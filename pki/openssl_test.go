package pki

// Interoperability with the real openssl: verify, x509 -ext, s_server and
// s_client handshakes, CSRs from openssl req and CA keys from openssl genrsa.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

func TestOpenSSLVerifyAndExtensions(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	for _, kt := range KeyTypes {
		for _, inter := range []bool{false, true} {
			name := string(kt)
			if inter {
				name += "/intermediate"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				dir := t.TempDir()
				mustInit(t, dir, InitOptions{KeyType: kt, Intermediate: inter, Clients: []string{"alice"}, Hosts: []string{"localhost", "127.0.0.1", "::1"}})
				args := []string{"verify", "-CAfile", "ca.crt"}
				if inter {
					args = append(args, "-untrusted", "intermediate.crt")
				}
				for _, c := range []struct{ file, purpose string }{{"server.crt", "sslserver"}, {"clients/alice.crt", "sslclient"}} {
					out := testutil.MustRun(t, dir, openssl, append(args, "-purpose", c.purpose, c.file)...)
					if !strings.Contains(out, c.file+": OK") {
						t.Fatalf("openssl verify %s: %s", c.file, out)
					}
				}
				// The wrong purpose is refused: a client certificate cannot serve.
				if out, err := testutil.Run(t, dir, nil, openssl, append(args, "-purpose", "sslserver", "clients/alice.crt")...); err == nil {
					t.Fatalf("a client certificate verified as a server:\n%s", out)
				}
				ext := func(file string) string {
					return testutil.MustRun(t, dir, openssl, "x509", "-in", file, "-noout", "-ext", "subjectAltName,extendedKeyUsage,keyUsage,basicConstraints")
				}
				srv := ext("server.crt")
				for _, want := range []string{"TLS Web Server Authentication", "DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1", "CA:FALSE", "Digital Signature"} {
					if !strings.Contains(srv, want) {
						t.Errorf("server.crt lacks %q:\n%s", want, srv)
					}
				}
				if strings.Contains(srv, "Client Authentication") {
					t.Errorf("server.crt allows client authentication:\n%s", srv)
				}
				cli := ext("clients/alice.crt")
				if !strings.Contains(cli, "TLS Web Client Authentication") || strings.Contains(cli, "Server Authentication") {
					t.Errorf("client EKU wrong:\n%s", cli)
				}
				rsa := strings.HasPrefix(string(kt), "rsa")
				if strings.Contains(cli, "Key Encipherment") != rsa {
					t.Errorf("keyEncipherment present=%v for %s:\n%s", !rsa, kt, cli)
				}
				ca := ext("ca.crt")
				if !strings.Contains(ca, "CA:TRUE, pathlen:1") || !strings.Contains(ca, "Certificate Sign, CRL Sign") {
					t.Errorf("root CA extensions:\n%s", ca)
				}
				if inter {
					ic := ext("intermediate.crt")
					if !strings.Contains(ic, "CA:TRUE, pathlen:0") {
						t.Errorf("intermediate extensions:\n%s", ic)
					}
				}
				// openssl reads every key mqttctl writes.
				for _, k := range []string{"ca.key", "server.key", "clients/alice.key"} {
					testutil.MustRun(t, dir, openssl, "pkey", "-in", k, "-noout")
				}
			})
		}
	}
}

// handshake runs s_client against an s_server and reports whether the server
// answered (it does only after accepting the client certificate).
func handshake(t *testing.T, openssl, dir string, port int, certArgs ...string) (ok bool, out string) {
	t.Helper()
	args := append([]string{"s_client", "-ign_eof", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-servername", "localhost",
		"-verify_return_error", "-verify_hostname", "localhost", "-CAfile", "ca.crt"}, certArgs...)
	out, _ = testutil.Run(t, dir, []byte("GET / HTTP/1.0\r\n\r\n"), openssl, args...)
	return strings.Contains(out, "HTTP/1.0 200 ok") && strings.Contains(out, "Verify return code: 0 (ok)"), out
}

func TestOpenSSLHandshake(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	for _, inter := range []bool{false, true} {
		t.Run(fmt.Sprintf("intermediate=%v", inter), func(t *testing.T) {
			dir := t.TempDir()
			mustInit(t, dir, InitOptions{Intermediate: inter, Clients: []string{"alice"}, Hosts: []string{"localhost", "127.0.0.1"}})
			other := filepath.Join(dir, "other")
			mustInit(t, other, InitOptions{CAName: "Other CA", Clients: []string{"eve"}, Hosts: []string{"localhost"}})
			port := testutil.FreePort(t)
			_, log := testutil.Start(t, dir, openssl, "s_server", "-accept", fmt.Sprintf("127.0.0.1:%d", port),
				"-cert", "server.crt", "-cert_chain", "server.crt", "-key", "server.key", "-CAfile", "ca.crt", "-Verify", "1", "-verify_return_error", "-www")
			testutil.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 10e9)

			if ok, out := handshake(t, openssl, dir, port, "-cert", "clients/alice.crt", "-cert_chain", "clients/alice.crt", "-key", "clients/alice.key"); !ok {
				t.Fatalf("valid client refused:\n%s\nserver:\n%s", out, log.String())
			}
			cases := []struct {
				name  string
				args  []string
				alert string
			}{
				{"no client certificate", nil, "certificate required"},
				{"another CA's client", []string{"-cert", "other/clients/eve.crt", "-key", "other/clients/eve.key"}, "unknown ca"},
				{"server certificate as client", []string{"-cert", "server.crt", "-cert_chain", "server.crt", "-key", "server.key"}, "unsupported certificate"},
			}
			for _, c := range cases {
				if ok, out := handshake(t, openssl, dir, port, c.args...); ok || !strings.Contains(out, c.alert) {
					t.Errorf("%s: accepted=%v, want refusal with %q:\n%s", c.name, ok, c.alert, out)
				}
			}
			// The client refuses a server whose name does not match.
			out, _ := testutil.Run(t, dir, nil, openssl, "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port),
				"-verify_return_error", "-verify_hostname", "broker.example.com", "-CAfile", "ca.crt",
				"-cert", "clients/alice.crt", "-key", "clients/alice.key")
			if !strings.Contains(out, "hostname mismatch") {
				t.Errorf("hostname mismatch not reported:\n%s", out)
			}
		})
	}
}

func TestSignOpenSSLCSR(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{Hosts: []string{"localhost"}})
	work := t.TempDir()
	testutil.MustRun(t, work, openssl, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", "dev.key", "-out", "dev.csr", "-subj", "/CN=device-7/O=Acme",
		"-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
		"-addext", "subjectAltName=DNS:evil.example.com")
	csr, err := ReadCSR(filepath.Join(work, "dev.csr"))
	if err != nil {
		t.Fatal(err)
	}
	d := &Dir{Path: dir}
	cert, _, err := d.SignCSR(csr, SignOptions{Profile: ProfileClient, Out: filepath.Join(work, "dev.crt")})
	if err != nil {
		t.Fatal(err)
	}
	if cert.IsCA || cert.Subject.CommonName != "device-7" {
		t.Fatalf("IsCA=%v CN=%q", cert.IsCA, cert.Subject.CommonName)
	}
	ext := testutil.MustRun(t, work, openssl, "x509", "-in", "dev.crt", "-noout", "-ext", "basicConstraints,keyUsage,extendedKeyUsage,subjectAltName")
	if !strings.Contains(ext, "CA:FALSE") || strings.Contains(ext, "Certificate Sign") || strings.Contains(ext, "evil") || !strings.Contains(ext, "TLS Web Client Authentication") {
		t.Fatalf("signed certificate took extensions from the CSR:\n%s", ext)
	}
	out := testutil.MustRun(t, work, openssl, "verify", "-CAfile", filepath.Join(dir, "ca.crt"), "-purpose", "sslclient", "dev.crt")
	if !strings.Contains(out, "OK") {
		t.Fatal(out)
	}
	// A server CSR with --host names.
	testutil.MustRun(t, work, openssl, "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "b.key", "-out", "b.csr", "-subj", "/CN=broker2.example.com")
	csr, _ = ReadCSR(filepath.Join(work, "b.csr"))
	if _, _, err := d.SignCSR(csr, SignOptions{Profile: ProfileServer, Hosts: []string{"broker2.example.com", "192.0.2.7"}, Out: filepath.Join(work, "b.crt")}); err != nil {
		t.Fatal(err)
	}
	out = testutil.MustRun(t, work, openssl, "verify", "-CAfile", filepath.Join(dir, "ca.crt"), "-purpose", "sslserver", "-verify_ip", "192.0.2.7", "b.crt")
	if !strings.Contains(out, "OK") {
		t.Fatal(out)
	}
	// Refuses to overwrite without --force.
	if _, _, err := d.SignCSR(csr, SignOptions{Profile: ProfileServer, Out: filepath.Join(work, "b.crt")}); err == nil {
		t.Fatal("signing over an existing file without Force succeeded")
	}
}

// opensslCA makes a root CA with openssl, its key made by genArgs, in a new
// pki directory.
func opensslCA(t *testing.T, openssl string, genArgs ...string) string {
	dir := t.TempDir()
	testutil.MustRun(t, dir, openssl, genArgs...)
	testutil.MustRun(t, dir, openssl, "req", "-new", "-x509", "-days", "365", "-key", "ca.key", "-passin", "pass:s3cret",
		"-out", "ca.crt", "-subj", "/CN=Legacy CA/O=Ops", "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign")
	return dir
}

func TestOpenSSLEncryptedCAKeys(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	right := func() ([]byte, error) { return []byte("s3cret"), nil }
	wrong := func() ([]byte, error) { return []byte("guess"), nil }
	for _, c := range []struct {
		name string
		gen  []string
	}{
		{"genrsa -des3 (PKCS#8, OpenSSL 3)", []string{"genrsa", "-des3", "-passout", "pass:s3cret", "-out", "ca.key", "2048"}},
		{"genrsa -des3 -traditional (legacy PEM)", []string{"genrsa", "-des3", "-traditional", "-passout", "pass:s3cret", "-out", "ca.key", "2048"}},
		{"genpkey EC aes256", []string{"genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-aes256", "-pass", "pass:s3cret", "-out", "ca.key"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := opensslCA(t, openssl, c.gen...)
			_, err := (&Dir{Path: dir, CAPassword: wrong}).Issue(IssueOptions{Profile: ProfileClient, Name: "bob"})
			if !errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), "ca.key") {
				t.Fatalf("wrong password: %v", err)
			}
			if _, err := os.Stat(filepath.Join(dir, "clients", "bob.key")); err == nil {
				t.Fatal("a failed issue left a key behind")
			}
			if _, err := (&Dir{Path: dir, CAPassword: right}).Issue(IssueOptions{Profile: ProfileClient, Name: "bob"}); err != nil {
				t.Fatalf("right password: %v", err)
			}
			out := testutil.MustRun(t, dir, openssl, "verify", "-CAfile", "ca.crt", "clients/bob.crt")
			if !strings.Contains(out, "OK") {
				t.Fatal(out)
			}
		})
	}
	// Encryptions mqttctl cannot read get a clear error, not "wrong password".
	for _, c := range []struct{ name, want string }{
		{"PBE-SHA1-3DES", "PBE-SHA1-3DES"},
		{"scrypt", "scrypt"},
		{"hmacWithSHA512", "hmacWithSHA512"},
	} {
		t.Run("unsupported "+c.name, func(t *testing.T) {
			dir := t.TempDir()
			testutil.MustRun(t, dir, openssl, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", "plain.key")
			args := []string{"pkcs8", "-topk8", "-in", "plain.key", "-out", "ca.key", "-passout", "pass:s3cret"}
			switch c.name {
			case "PBE-SHA1-3DES":
				args = append(args, "-v1", "PBE-SHA1-3DES")
			case "scrypt":
				args = append(args, "-scrypt")
			default:
				args = append(args, "-v2", "aes-256-cbc", "-v2prf", "hmacWithSHA512")
			}
			testutil.MustRun(t, dir, openssl, args...)
			_, err := ReadKey(filepath.Join(dir, "ca.key"), []byte("s3cret"))
			if err == nil || errors.Is(err, ErrWrongPassword) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "openssl pkcs8") {
				t.Fatalf("error = %v, want one naming %s and the conversion command", err, c.want)
			}
		})
	}
}

func TestOpenSSLReadsEncryptedCAKey(t *testing.T) {
	openssl := testutil.RequireBinary(t, "openssl")
	dir := t.TempDir()
	mustInit(t, dir, InitOptions{CAKeyPassword: []byte("pw-for-ca"), Hosts: []string{"localhost"}})
	out := testutil.MustRun(t, dir, openssl, "pkey", "-in", "ca.key", "-passin", "pass:pw-for-ca", "-noout", "-text")
	if !strings.Contains(out, "Private-Key") && !strings.Contains(out, "priv:") {
		t.Fatalf("openssl could not read the encrypted CA key:\n%s", out)
	}
	if out, err := testutil.Run(t, dir, nil, openssl, "pkey", "-in", "ca.key", "-passin", "pass:wrong", "-noout"); err == nil {
		t.Fatalf("openssl read the CA key with a wrong password:\n%s", out)
	}
	asn := testutil.MustRun(t, dir, openssl, "asn1parse", "-in", "ca.key")
	if !strings.Contains(asn, "PBES2") || !strings.Contains(asn, "aes-256-cbc") {
		t.Fatalf("CA key is not PBES2 AES-256:\n%s", asn)
	}
}
