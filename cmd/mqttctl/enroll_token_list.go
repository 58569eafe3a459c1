package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func newEnrollTokenListCmd(s *streams, f *enrollFlags) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the enrolment tokens (never their secrets)",
		Example: `  mqttctl enroll token list --pki pki`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			toks, err := f.dir(s).Tokens()
			if err != nil {
				return err
			}
			now := time.Now()
			if output == "json" {
				rows := make([]map[string]any, 0, len(toks))
				for _, t := range toks {
					rows = append(rows, map[string]any{"name": t.Name, "profile": t.Profile, "created": t.Created, "expires": t.Expires,
						"status": t.StatusAt(now), "serial": t.Serial})
				}
				enc := json.NewEncoder(s.Out)
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			if len(toks) == 0 {
				fmt.Fprintln(s.Err, "no tokens: make one with: mqttctl enroll token create NAME")
				return nil
			}
			w := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tPROFILE\tCREATED\tEXPIRES\tSTATUS\tSERIAL")
			for _, t := range toks {
				serial := t.Serial
				if serial == "" {
					serial = "-"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Profile, t.Created.Format(time.RFC3339), t.Expires.Format(time.RFC3339), t.StatusAt(now), serial)
			}
			return w.Flush()
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
