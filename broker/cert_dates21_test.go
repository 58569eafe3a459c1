package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
)

// testCA issues certificates for the date tests.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign, NotBefore: time.Now().Add(-30 * 24 * time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return &testCA{cert: c, key: key}
}

// issue writes NAME.crt and NAME.key in dir, valid from nb to na.
func (ca *testCA) issue(t *testing.T, dir, name string, server bool, nb, na time.Time) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: name}, NotBefore: nb, NotAfter: na,
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = []string{"localhost"}
		tmpl.IPAddresses = []net.IP{net.ParseIP("127.0.0.1")}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	write := func(f, kind string, b []byte, mode os.FileMode) {
		if err := os.WriteFile(filepath.Join(dir, f), pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: b}), mode); err != nil {
			t.Fatal(err)
		}
	}
	write(name+".crt", "CERTIFICATE", der, 0o644)
	write(name+".key", "EC PRIVATE KEY", kder, 0o644) // test keys: mosquitto drops to its user before reading them
}

// TestDifferentialClientCertDates runs mosquitto 2.1's
// disable_client_cert_date_checks under 2.1.2 and the bundled broker: on a
// listener with it, expired and not yet valid client certificates get in,
// one from another CA does not; on one without it, only the valid one gets
// in. Both brokers answer every client alike.
func TestDifferentialClientCertDates(t *testing.T) {
	bin := testutil.Mosquitto21(t)
	dir := testutil.ReachableDir(t)
	now := time.Now()
	ca, other := newTestCA(t, "test CA"), newTestCA(t, "other CA")
	ca.issue(t, dir, "server", true, now.Add(-time.Hour), now.Add(24*time.Hour))
	ca.issue(t, dir, "valid", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	ca.issue(t, dir, "expired", false, now.Add(-10*24*time.Hour), now.Add(-24*time.Hour))
	ca.issue(t, dir, "future", false, now.Add(24*time.Hour), now.Add(10*24*time.Hour))
	other.issue(t, dir, "stranger", false, now.Add(-time.Hour), now.Add(24*time.Hour))
	if err := os.WriteFile(filepath.Join(dir, "ca.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.cert.Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	listener := "\nlistener %d 127.0.0.1\ncafile %[3]s/ca.crt\ncertfile %[3]s/server.crt\nkeyfile %[3]s/server.key\nrequire_certificate true\nuse_identity_as_username true\n"
	clients := []string{"valid", "expired", "future", "stranger"}
	var got [2][]string
	for i, name := range []string{"mosquitto 2.1.2", "mqttctl"} {
		ports := testutil.FreePorts(t, 2)
		conf := fmt.Sprintf("allow_anonymous false"+listener+"disable_client_cert_date_checks true\n", ports[0], 0, dir) +
			fmt.Sprintf(listener, ports[1], 0, dir)
		log := startOn21OrServe(t, i == 0, filepath.Join(bin, "mosquitto"), dir, "d.conf", conf, ports)
		for _, p := range ports {
			for _, cl := range clients {
				out, err := exec.Command(filepath.Join(bin, "mosquitto_pub"), "-h", "localhost", "-p", fmt.Sprint(p), "--cafile", filepath.Join(dir, "ca.crt"),
					"--cert", filepath.Join(dir, cl+".crt"), "--key", filepath.Join(dir, cl+".key"), "-t", "a/1", "-m", "x", "-q", "1", "-i", cl).CombinedOutput()
				r := "logged in"
				if err != nil {
					r = "refused" // the TLS alert's wording is OpenSSL's or Go's
				}
				got[i] = append(got[i], r)
				_ = out
			}
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log:\n%s", name, log.String())
			}
		})
	}
	want := []string{"logged in", "logged in", "logged in", "refused", "logged in", "refused", "refused", "refused"}
	j := 0
	for _, l := range []string{"with disable_client_cert_date_checks", "without"} {
		for _, cl := range clients {
			if got[0][j] != got[1][j] || got[0][j] != want[j] {
				t.Errorf("%s, client %s: mosquitto 2.1.2 %s, mqttctl %s, want %s", l, cl, got[0][j], got[1][j], want[j])
			}
			j++
		}
	}
	t.Logf("mosquitto 2.1.2 %s\nmqttctl %s", strings.Join(got[0], ", "), strings.Join(got[1], ", "))
}
