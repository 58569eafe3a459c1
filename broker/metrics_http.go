package broker

import (
	"net/http"

	"github.com/mqttctl/mqttctl/internal/metricsrv"
)

// MetricsHandler serves the broker's metrics (metrics.go) and the process
// collector in the Prometheus text format. Options.Metrics must be on for
// the counters of connects, refusals and handshakes.
func (b *Broker) MetricsHandler() http.Handler { return metricsrv.Handler(newCollector(b)) }

// ServeMetrics listens on addr and serves MetricsHandler at /metrics
// (internal/metricsrv: bounded requests, a warning in the log for an
// address that is not loopback). A scrape only reads counters: it never
// waits for the MQTT path.
func (b *Broker) ServeMetrics(addr string) (*metricsrv.Server, error) {
	return metricsrv.Serve(addr, b.log, newCollector(b))
}
