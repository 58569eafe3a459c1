package enroll

import (
	"net/http"
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mqttctl/mqttctl/pki"
)

// authorisedBy are the label values of mqttctl_enrolments_total: how an
// issued certificate was authorised (pki.Enrolled.How).
var authorisedBy = [...]string{pki.AuthToken, pki.AuthBootstrap, pki.AuthRenewal}

// refusedStatuses are the statuses the server refuses with; any other is
// counted as "other" (bounded label values, whatever a client sends).
var refusedStatuses = [...]int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound,
	http.StatusMethodNotAllowed, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType,
	http.StatusTooManyRequests, http.StatusInternalServerError}

// counters are the server's metrics, counted as requests are answered.
type counters struct {
	issued  [len(authorisedBy)]atomic.Uint64
	refused [len(refusedStatuses) + 1]atomic.Uint64 // the last: other
}

func (c *counters) issue(how string) {
	for i, h := range authorisedBy {
		if h == how {
			c.issued[i].Add(1)
		}
	}
}

func (c *counters) refuse(status int) {
	i := 0
	for i < len(refusedStatuses) && refusedStatuses[i] != status {
		i++
	}
	c.refused[i].Add(1)
}

// Collector returns the server's metrics for a Prometheus registry:
// mqttctl_enrolments_total{authorised_by} (certificates issued) and
// mqttctl_enrolment_refusals_total{status}.
func (s *Server) Collector() prometheus.Collector { return (*collector)(s) }

type collector Server

var (
	issuedDesc  = prometheus.NewDesc("mqttctl_enrolments_total", "Certificates issued by the EST server, by how the request was authorised.", []string{"authorised_by"}, nil)
	refusedDesc = prometheus.NewDesc("mqttctl_enrolment_refusals_total", "EST requests refused, by HTTP status.", []string{"status"}, nil)
)

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- issuedDesc
	ch <- refusedDesc
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	for i, h := range authorisedBy {
		ch <- prometheus.MustNewConstMetric(issuedDesc, prometheus.CounterValue, float64(c.n.issued[i].Load()), h)
	}
	for i := range c.n.refused {
		status := "other"
		if i < len(refusedStatuses) {
			status = strconv.Itoa(refusedStatuses[i])
		}
		ch <- prometheus.MustNewConstMetric(refusedDesc, prometheus.CounterValue, float64(c.n.refused[i].Load()), status)
	}
}
