package confgen

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCheckMosquittoFiles: an ACL or password-file line mosquitto cannot
// parse is an error at FILE:LINE behind the option that names the file
// (mosquitto refuses to start on it, and 2.1 quits on SIGHUP).
func TestCheckMosquittoFiles(t *testing.T) {
	const goodHash = "$7$101$y6lBUgZh7NRK1qm7$WUwcq6NrCg/ZR6PpKGwAYNnhc7qNiqqRVRohfXhldPlm9JbE4d7M3ZbFDS4Xa0Zmyq6lLU47KhgOTePrXkI7SA=="
	for _, tc := range []struct {
		name, acl, passwd string
		want              []string // "" : no error
	}{
		{"good", "user alice\ntopic read a/#\n", "alice:" + goodHash + "\n", nil},
		{"bad ACL line", "user alice\nbogus line\n", "alice:" + goodHash + "\n", []string{"mosquitto.conf:1: error: acl_file", "acl:2: unknown keyword \"bogus\""}},
		{"bad access", "topic READ x\n", "", []string{"acl:1: invalid access type"}},
		{"duplicate user", "", "alice:" + goodHash + "\nalice:" + goodHash + "\n", []string{"mosquitto.conf:2: error: password_file", "passwd:2: user \"alice\" again (first on line 1): mosquitto 2.1 refuses"}},
		{"bad hash", "", "alice:" + goodHash + "\nbob:$7$nope\n", []string{"mosquitto.conf:2: error: password_file", "passwd:2: user \"bob\": unusable hash"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			os.WriteFile(filepath.Join(dir, "acl"), []byte(tc.acl), 0o600)
			os.WriteFile(filepath.Join(dir, "passwd"), []byte(tc.passwd), 0o600)
			conf := "acl_file " + filepath.Join(dir, "acl") + "\npassword_file " + filepath.Join(dir, "passwd") + "\nlistener 1883 127.0.0.1\n"
			os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o600)
			c, err := Load(filepath.Join(dir, "mosquitto.conf"))
			if err != nil {
				t.Fatal(err)
			}
			_, ds := c.CheckMosquitto()
			var errs []string
			for _, d := range ds {
				if !d.Warning {
					errs = append(errs, d.String())
				}
			}
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("errors on a good config: %v", errs)
				}
				return
			}
			if len(errs) != 1 {
				t.Fatalf("want one error, got %q", errs)
			}
			for _, w := range tc.want {
				if !strings.Contains(errs[0], w) {
					t.Errorf("%q does not say %q", errs[0], w)
				}
			}
		})
	}
}

// TestCheckMosquittoTLSFiles: a certificate that does not match its key
// (2.1 quits on it on SIGHUP), a CA file and a CRL that hold nothing
// usable are errors at the option's line.
func TestCheckMosquittoTLSFiles(t *testing.T) {
	dir := t.TempDir()
	pair := func(name string) (string, string) {
		t.Helper()
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		kder, _ := x509.MarshalPKCS8PrivateKey(k)
		crt, key := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
		os.WriteFile(crt, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
		os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600)
		return crt, key
	}
	crt, key := pair("a")
	other, _ := pair("b")
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not PEM\n"), 0o600)
	for _, tc := range []struct {
		name, cafile, certfile, crlfile string
		want                            string
	}{
		{"good", crt, crt, "", ""},
		{"key mismatch", crt, other, "", "mosquitto.conf:4: error: certfile: " + other + " with keyfile " + key + ": tls: private key does not match public key"},
		{"CA without a certificate", junk, crt, "", "mosquitto.conf:3: error: cafile: " + junk + " holds no PEM CERTIFICATE"},
		{"CRL without a CRL", crt, crt, junk, "mosquitto.conf:6: error: crlfile: " + junk + " holds no PEM X509 CRL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			conf := "listener 8883 127.0.0.1\nallow_anonymous true\ncafile " + tc.cafile + "\ncertfile " + tc.certfile + "\nkeyfile " + key + "\n"
			if tc.crlfile != "" {
				conf += "crlfile " + tc.crlfile + "\n"
			}
			c, err := Parse([]byte(conf), "mosquitto.conf")
			if err != nil {
				t.Fatal(err)
			}
			_, ds := c.CheckMosquitto()
			var errs []string
			for _, d := range ds {
				if !d.Warning {
					errs = append(errs, d.String())
				}
			}
			if tc.want == "" && len(errs) > 0 || tc.want != "" && (len(errs) != 1 || !strings.Contains(errs[0], tc.want)) {
				t.Fatalf("errors %q, want %q", errs, tc.want)
			}
		})
	}
}
