package main

import (
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mqttctl/mqttctl/pki"
)

func parseProm(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v\n%s", err, text)
	}
	return fams
}

func labelsOf(m *dto.Metric) map[string]string {
	out := map[string]string{}
	for _, l := range m.Label {
		out[l.GetName()] = l.GetValue()
	}
	return out
}

// TestPKIListPrometheus: -o prometheus parses, holds each certificate in
// use with its notAfter and the CRL with its nextUpdate, and --expiring
// keeps its exit status.
func TestPKIListPrometheus(t *testing.T) {
	dir := newPKIDir(t, "--client", "alice", "--client", "bob", "--host", "localhost")
	if code, _, e := runCLI(t, "", "pki", "revoke", "bob", "--dir", dir); code != 0 {
		t.Fatal(e)
	}
	entries, _, err := (&pki.Dir{Path: dir}).Entries()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "crl.pem"))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(data)
	crl, err := x509.ParseRevocationList(b.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	check := func(wantCerts []string) func(t *testing.T, stdout, _ string) {
		return func(t *testing.T, stdout, _ string) {
			fams := parseProm(t, stdout)
			got := map[string]float64{}
			for _, m := range fams[pki.MetricCertExpiry].GetMetric() {
				l := labelsOf(m)
				got[l["name"]+"/"+l["profile"]+"/"+l["serial"]] = m.GetGauge().GetValue()
			}
			want := map[string]float64{}
			for _, e := range entries {
				for _, n := range wantCerts {
					if e.Name == n {
						want[e.Name+"/"+string(e.Profile)+"/"+e.Serial] = float64(e.NotAfter.Unix())
					}
				}
			}
			if len(got) != len(want) {
				t.Errorf("certificates %v, want %v", got, want)
			}
			for k, v := range want {
				if got[k] != v {
					t.Errorf("%s: notAfter %v, want %v", k, got[k], v)
				}
			}
			crls := fams[pki.MetricCRLNextUpdate].GetMetric()
			if len(crls) != 1 || crls[0].GetGauge().GetValue() != float64(crl.NextUpdate.Unix()) ||
				labelsOf(crls[0])["file"] != filepath.Join(dir, "crl.pem") || labelsOf(crls[0])["issuer"] != crl.Issuer.String() {
				t.Errorf("CRL series %v, want one of %s, %s, nextUpdate %d", crls, filepath.Join(dir, "crl.pem"), crl.Issuer, crl.NextUpdate.Unix())
			}
		}
	}
	runSteps(t, []cliStep{
		{name: "all in use, not the revoked one", args: []string{"pki", "list", "--dir", dir, "-o", "prometheus"},
			check: check([]string{"ca", "server", "alice"})},
		{name: "nothing within 30 days: only the CRL, exit 0", args: []string{"pki", "list", "--dir", dir, "--expiring", "30d", "-o", "prometheus"},
			check: check(nil)},
		{name: "within 400 days: exit 1", args: []string{"pki", "list", "--dir", dir, "--expiring", "400d", "-o", "prometheus"}, code: 1,
			check: check([]string{"server", "alice"}), errOut: []string{"expire within"}},
		{name: "an unknown format", args: []string{"pki", "list", "--dir", dir, "-o", "yaml"}, code: 1, errOut: []string{"text, json, prometheus"}},
	})
}
