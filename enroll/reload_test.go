package enroll

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/pki"
)

// TestCertReloader: finding 6 of the adversarial pass. After pki renew
// server the next handshake gets the new certificate (before: the old one
// until a restart); a pair that does not load is logged and the previous
// one served.
func TestCertReloader(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pki")
	d := &pki.Dir{Path: dir}
	if _, err := d.Init(pki.InitOptions{Hosts: []string{"localhost"}}); err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	r, err := NewCertReloader(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	r.Interval = 0
	serial := func() string {
		c, err := r.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Leaf.SerialNumber.String()
	}
	first := serial()
	for _, rekey := range []bool{false, true} {
		before := serial()
		if _, err := d.Renew(pki.RenewOptions{Name: "server", Rekey: rekey}); err != nil {
			t.Fatal(err)
		}
		if serial() == before {
			t.Fatalf("rekey=%v: the renewed server certificate is not served", rekey)
		}
	}
	renewed := serial()
	if renewed == first || !strings.Contains(logs.String(), "serving a new server certificate") {
		t.Fatalf("no reload logged:\n%s", logs.String())
	}
	// A broken certificate file: logged, the previous pair kept.
	if err := os.WriteFile(filepath.Join(dir, pki.ServerCertFile), []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if serial() != renewed || !strings.Contains(logs.String(), "do not load; serving the previous pair") {
		t.Fatalf("a broken pair:\n%s", logs.String())
	}
	if _, err := NewCertReloader(filepath.Join(dir, pki.ServerCertFile), filepath.Join(dir, pki.ServerKeyFile), nil); err == nil {
		t.Fatal("a broken pair at start is accepted")
	}
}
