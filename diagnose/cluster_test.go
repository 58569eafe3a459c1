package diagnose_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/diagnose"
	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestClusterReportOK: the verdict passes only when every node passed and
// every crossing arrived.
func TestClusterReportOK(t *testing.T) {
	good, bad := &diagnose.Report{}, &diagnose.Report{Problems: []explain.Problem{{Code: "not-authorised"}}}
	arrived, lost := diagnose.CrossResult{From: "a", To: "b", OK: true}, diagnose.CrossResult{From: "b", To: "a"}
	for _, tc := range []struct {
		name string
		c    diagnose.ClusterReport
		want bool
	}{
		{"one node that works", diagnose.ClusterReport{Checks: []*diagnose.Report{good}}, true},
		{"a node that fails", diagnose.ClusterReport{Checks: []*diagnose.Report{good, bad}}, false},
		{"every crossing arrived", diagnose.ClusterReport{Checks: []*diagnose.Report{good, good}, Cross: []diagnose.CrossResult{arrived, arrived}}, true},
		{"one crossing lost", diagnose.ClusterReport{Checks: []*diagnose.Report{good, good}, Cross: []diagnose.CrossResult{arrived, lost}}, false},
	} {
		if got := tc.c.OK(); got != tc.want {
			t.Errorf("%s: OK() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestCrossResultString: a lost crossing names both nodes and where to look.
func TestCrossResultString(t *testing.T) {
	for _, tc := range []struct {
		c    diagnose.CrossResult
		want string
	}{
		{diagnose.CrossResult{From: "mqtts://a:1", To: "mqtts://b:2", OK: true}, "OK: published on mqtts://a:1, received on mqtts://b:2"},
		{diagnose.CrossResult{From: "mqtts://a:1", To: "mqtts://b:2"}, "PROBLEM: published on mqtts://a:1, never received on mqtts://b:2: the nodes do not form one cluster (check its status: rabbitmqctl cluster_status)"},
	} {
		if got := tc.c.String(); !strings.HasPrefix(got, tc.want) {
			t.Errorf("%+v: %q, want %q...", tc.c, got, tc.want)
		}
	}
}

// TestCheckCluster: each node is checked first; the crossings are proved
// only when every node works, and two brokers that are not one cluster
// fail them (each works alone).
func TestCheckCluster(t *testing.T) {
	ports := testutil.FreePorts(t, 3)
	for _, p := range ports[:2] {
		c := &confgen.Config{}
		l := &confgen.Listener{Port: p, Bind: "127.0.0.1"}
		l.Set("allow_anonymous", "true")
		c.Listener = append(c.Listener, l)
		brokertest.Start(t, c, nil, broker.Options{})
	}
	url := func(p int) string { return fmt.Sprintf("mqtt://127.0.0.1:%d", p) }
	a, b, dead := url(ports[0]), url(ports[1]), url(ports[2])
	for _, tc := range []struct {
		name      string
		urls      []string
		cross     bool
		err       error
		ok        bool
		crossings []bool // nil: no cross check ran
	}{
		{"one node", []string{a}, false, nil, true, nil},
		{"two nodes, no cross check", []string{a, b}, false, nil, true, nil},
		{"one broker twice is one cluster", []string{a, a}, true, nil, true, []bool{true, true}},
		{"two brokers are not one cluster", []string{a, b}, true, nil, false, []bool{false, false}},
		{"a node down: no cross check", []string{a, dead}, true, nil, false, nil},
		{"a cross check of one node", []string{a}, true, diagnose.ErrCrossNeedsNodes, false, nil},
	} {
		t.Run(strings.ReplaceAll(tc.name, " ", "_"), func(t *testing.T) {
			var seen []string
			c, err := diagnose.CheckCluster(context.Background(), diagnose.Options{Timeout: time.Second}, tc.urls, tc.cross,
				func(r *diagnose.Report) { seen = append(seen, r.URL) })
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("err %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(seen, " ") != strings.Join(tc.urls, " ") || len(c.Checks) != len(tc.urls) {
				t.Errorf("reports passed on for %v, %d kept; want one per URL in order, %v", seen, len(c.Checks), tc.urls)
			}
			if c.OK() != tc.ok {
				t.Errorf("OK() = %v, want %v: %+v", c.OK(), tc.ok, c.Cross)
			}
			if (c.Cross == nil) != (tc.crossings == nil) || len(c.Cross) != len(tc.crossings) {
				t.Fatalf("crossings %+v, want %v", c.Cross, tc.crossings)
			}
			for i, x := range c.Cross {
				if x.OK != tc.crossings[i] {
					t.Errorf("crossing %d: %+v, want OK %v", i, x, tc.crossings[i])
				}
			}
		})
	}
}
