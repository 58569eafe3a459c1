package main

import (
	"fmt"
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
(or have ended), and exits 1 when there is any: a check for cron or monitoring.`,
		Example: `  mqttctl pki list --dir pki
  mqttctl pki list --expiring 30d || mail -s 'MQTT certificates expire' ops@example.com`,
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
			if err := printEntries(s, entries, now, output); err != nil {
				return err
			}
			if expiring > 0 && len(entries) > 0 {
				fmt.Fprintf(s.Err, "%d certificates expire within %s: renew them with: mqttctl pki renew --expiring %s%s\n", len(entries), &expiring, &expiring, explain.DirFlag(f.dir))
				return exitError{1}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
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
