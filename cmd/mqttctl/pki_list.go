package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/pki"
)

func newPKIListCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		output   outputFormat
		expiring daysFlag
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every certificate issued from the directory (or only what expires soon)",
		Long: `list shows every certificate issued from the directory with its status. With
--expiring it shows only the certificates, not revoked, that end within that window
(or have ended), and exits 1 when there is any: a check for cron or monitoring.

-o prometheus writes the expiry as gauges for node-exporter's textfile collector
(for brokers that export no metrics of their own, such as mosquitto):
mqttctl_cert_expiry_timestamp_seconds{name,profile,serial}, the notAfter of each
certificate in use (neither revoked nor replaced by a renewal), and
mqttctl_crl_next_update_timestamp_seconds{file,issuer}, the nextUpdate of each CRL
in crl.pem, as Unix timestamps. node-exporter may read the directory at any
moment: write a temporary file in it, then mv it over the old one (a rename is
atomic; node-exporter ignores names not ending in .prom). Leave out --expiring
there, and alert in Prometheus on the window instead, e.g.
  mqttctl_cert_expiry_timestamp_seconds - time() < 30 * 86400`,
		Example: `  mqttctl pki list --dir pki
  mqttctl pki list --expiring 30d || mail -s 'MQTT certificates expire' ops@example.com

  # for node-exporter --collector.textfile.directory=/srv/textfile (cron, every hour):
  # write a temporary file, then rename it, so that no scrape reads half a file
  mqttctl pki list -o prometheus > /srv/textfile/mqttctl-pki.prom.tmp && mv /srv/textfile/mqttctl-pki.prom.tmp /srv/textfile/mqttctl-pki.prom

  # only what ends within 30 days, as gauges (exit 1 when there is any)
  mqttctl pki list --expiring 30d -o prometheus`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			entries, notes, err := f.dirFor(s).Entries()
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintf(s.Err, "note: %s\n", n)
			}
			now := time.Now()
			if expiring > 0 {
				entries = pki.Expiring(entries, now, time.Duration(expiring))
			}
			if output == "prometheus" {
				err = writeExpiryMetrics(s, f.dirFor(s), entries, expiring > 0)
			} else {
				err = printEntries(s, entries, now, output)
			}
			if err != nil {
				return err
			}
			if expiring > 0 && len(entries) > 0 {
				fmt.Fprintf(s.Err, "%d certificates expire within %s: renew them with: mqttctl pki renew --expiring %s%s\n", len(entries), &expiring, &expiring, explain.DirFlag(f.dir))
				return exitError{1}
			}
			return nil
		},
	}
	addOutputFlagWith(cmd, &output, "prometheus")
	cmd.Flags().Var(&expiring, "expiring", "only certificates ending within this window (30d, 12h); exit 1 when there is any")
	return cmd
}

func printEntries(s *streams, entries []pki.Entry, now time.Time, output outputFormat) error {
	if output == "json" {
		rows := make([]map[string]any, 0, len(entries))
		for _, e := range entries {
			rows = append(rows, map[string]any{"name": e.Name, "profile": e.Profile, "serial": e.Serial, "subject": e.Subject,
				"not_after": e.NotAfter, "cert": e.Cert, "status": e.StatusAt(now), "replaced_by": e.ReplacedBy})
		}
		return writeJSON(s, rows)
	}
	tw := tabwriter.NewWriter(s.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPROFILE\tSERIAL\tNOT AFTER\tSTATUS\tFILE")
	for _, e := range entries {
		serial := e.Serial
		if len(serial) > 23 {
			serial = serial[:23] + "…"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Profile, serial, e.NotAfter.Format(time.DateOnly), e.StatusAt(now), e.Cert)
	}
	return tw.Flush()
}

// writeExpiryMetrics writes -o prometheus: the certificates in use (those
// --expiring chose, if given) and the CRLs of crl.pem.
func writeExpiryMetrics(s *streams, d *pki.Dir, entries []pki.Entry, filtered bool) error {
	if !filtered {
		entries = slices.DeleteFunc(entries, func(e pki.Entry) bool { return e.Status == "revoked" || e.ReplacedBy != "" })
	}
	crls, err := d.CRLDates()
	if err != nil {
		return err
	}
	return pki.WriteExpiryMetrics(s.Out, entries, crls)
}

// formatFlag is -o/--output of a command with more formats than text and
// json (pki list -o prometheus).
type formatFlag struct {
	v       *outputFormat
	formats []string
}

func (f formatFlag) String() string { return string(*f.v) }
func (f formatFlag) Type() string   { return "format" }
func (f formatFlag) Set(v string) error {
	if !slices.Contains(f.formats, v) {
		return fmt.Errorf("%q: use %s", v, strings.Join(f.formats, ", "))
	}
	*f.v = outputFormat(v)
	return nil
}

// addOutputFlagWith defines -o/--output: text, json and the formats more.
func addOutputFlagWith(cmd *cobra.Command, f *outputFormat, more ...string) {
	*f = "text"
	formats := append([]string{"text", "json"}, more...)
	cmd.Flags().VarP(formatFlag{f, formats}, "output", "o", "output format: "+strings.Join(formats, ", "))
}
