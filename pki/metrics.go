package pki

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// CRLDate is the nextUpdate of one CRL of DIR/crl.pem.
type CRLDate struct {
	File       string
	Issuer     string
	NextUpdate time.Time
}

// CRLDates reads DIR/crl.pem and returns each CRL's issuer and
// nextUpdate: none when the directory has no crl.pem yet.
func (d *Dir) CRLDates() ([]CRLDate, error) {
	path := d.path(CRLFile)
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read CRL: %w", err)
	}
	var out []CRLDate
	for n := 1; ; n++ {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			break
		}
		crl, err := x509.ParseRevocationList(b.Bytes)
		if b.Type != "X509 CRL" || err != nil {
			return nil, fmt.Errorf("%s: block %d is not an X509 CRL that parses: %w; check it with: mqttctl pki check --dir %s", path, n, ErrCRLDamaged, d.Path)
		}
		out = append(out, CRLDate{File: path, Issuer: crl.Issuer.String(), NextUpdate: crl.NextUpdate})
	}
	return out, nil
}

// The names of the expiry gauges; mqttctl serve --metrics exports the CRL
// gauge under the same name.
const (
	MetricCertExpiry    = "mqttctl_cert_expiry_timestamp_seconds"
	MetricCRLNextUpdate = "mqttctl_crl_next_update_timestamp_seconds"
)

// WriteExpiryMetrics writes, in the Prometheus text format (for
// node-exporter's textfile collector), the notAfter of each entry (labels
// name, profile, serial) and the nextUpdate of each CRL (labels file,
// issuer), as Unix timestamps.
func WriteExpiryMetrics(w io.Writer, entries []Entry, crls []CRLDate) error {
	cert := prometheus.NewDesc(MetricCertExpiry, "notAfter of each certificate of the pki directory (Unix time).", []string{"name", "profile", "serial"}, nil)
	crl := prometheus.NewDesc(MetricCRLNextUpdate, "nextUpdate of each CRL (Unix time): past it brokers refuse every client of that CA.", []string{"file", "issuer"}, nil)
	var ms []prometheus.Metric
	for _, e := range entries {
		m, err := prometheus.NewConstMetric(cert, prometheus.GaugeValue, float64(e.NotAfter.Unix()), e.Name, string(e.Profile), e.Serial)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	latest := map[[2]string]CRLDate{} // one series per file and issuer: the newest CRL
	for _, c := range crls {
		k := [2]string{c.File, c.Issuer}
		if old, ok := latest[k]; !ok || c.NextUpdate.After(old.NextUpdate) {
			latest[k] = c
		}
	}
	for _, c := range latest {
		m, err := prometheus.NewConstMetric(crl, prometheus.GaugeValue, float64(c.NextUpdate.Unix()), c.File, c.Issuer)
		if err != nil {
			return err
		}
		ms = append(ms, m)
	}
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(constCollector{descs: []*prometheus.Desc{cert, crl}, metrics: ms}); err != nil {
		return err
	}
	families, err := reg.Gather()
	if err != nil {
		return err
	}
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, f := range families {
		if err := enc.Encode(f); err != nil {
			return err
		}
	}
	return nil
}

// constCollector hands a registry metrics computed beforehand.
type constCollector struct {
	descs   []*prometheus.Desc
	metrics []prometheus.Metric
}

func (c constCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs {
		ch <- d
	}
}

func (c constCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range c.metrics {
		ch <- m
	}
}
