package diagnose

import (
	"context"
	"errors"
	"fmt"
)

// ErrCrossNeedsNodes: a cross check was asked of fewer than two brokers.
var ErrCrossNeedsNodes = errors.New("a cross check needs two or more broker URLs (the cluster's nodes)")

// ClusterReport is the verdict on several brokers checked together (a
// cluster's nodes): each node's own report and, when the crossings were
// proved, whether a message published on each node reached every other.
type ClusterReport struct {
	Checks []*Report `json:"checks"`
	// Cross is nil when no cross check was asked, or when a node failed
	// its own check (a cluster with a broken node cannot be proved).
	Cross []CrossResult `json:"cross"`
}

// OK reports whether every node passed its check and every message
// published in the cross check arrived.
func (c *ClusterReport) OK() bool {
	for _, r := range c.Checks {
		if !r.OK() {
			return false
		}
	}
	for _, x := range c.Cross {
		if !x.OK {
			return false
		}
	}
	return true
}

// CheckCluster runs Check on each URL in turn (each, when not nil, gets
// every report as soon as it is made) and then, when cross is set and every
// node passed, Cross over all of them. The error is for bad options, or a
// node Cross could not log in to; what goes wrong on the wire is in the
// report.
func CheckCluster(ctx context.Context, o Options, urls []string, cross bool, each func(*Report)) (*ClusterReport, error) {
	if cross && len(urls) < 2 {
		return nil, ErrCrossNeedsNodes
	}
	c := &ClusterReport{}
	for _, u := range urls {
		o.URL = u
		r, err := Check(ctx, o)
		if err != nil {
			return nil, err
		}
		c.Checks = append(c.Checks, r)
		if each != nil {
			each(r)
		}
	}
	if !cross || !c.OK() {
		return c, nil
	}
	x, err := Cross(ctx, o, urls)
	if err != nil {
		return nil, err
	}
	c.Cross = x
	return c, nil
}

// String is the crossing as check prints it: OK, or the problem and where
// to look.
func (c CrossResult) String() string {
	if c.OK {
		return fmt.Sprintf("OK: published on %s, received on %s", c.From, c.To)
	}
	return fmt.Sprintf("PROBLEM: published on %s, never received on %s: the nodes do not form one cluster (check its status: rabbitmqctl cluster_status), or the ACL lets the message through on one node only", c.From, c.To)
}
