package enroll

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqttctl/mqttctl/pki"
)

// TestEnrolmentMetrics: an issued certificate and a refused token are
// counted, by how it was authorised and by status; every series of the
// fixed label sets is there (a pedantic registry checks the collector).
func TestEnrolmentMetrics(t *testing.T) {
	f := newFixture(t, Options{}, nil)
	toks, err := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"dev-1", "dev-2"}})
	if err != nil {
		t.Fatal(err)
	}
	c := f.client()
	if code, body := f.post(t, c, toks[0].Name, toks[0].Secret, csrB64(t, toks[0].Name)); code != 200 {
		t.Fatalf("enrol: %d %s", code, body)
	}
	if code, _ := f.post(t, c, toks[1].Name, "wrong", csrB64(t, toks[1].Name)); code != 401 {
		t.Fatalf("a wrong token: %d, want 401", code)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(f.srv.Collector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, fam := range fams {
		for _, m := range fam.Metric {
			got[fam.GetName()+"/"+m.Label[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"mqttctl_enrolments_total/token": 1, "mqttctl_enrolments_total/bootstrap-certificate": 0, "mqttctl_enrolments_total/current-certificate": 0,
		"mqttctl_enrolment_refusals_total/401": 1, "mqttctl_enrolment_refusals_total/400": 0, "mqttctl_enrolment_refusals_total/other": 0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	if len(got) != len(authorisedBy)+len(refusedStatuses)+1 {
		t.Errorf("%d series, want %d", len(got), len(authorisedBy)+len(refusedStatuses)+1)
	}
}
