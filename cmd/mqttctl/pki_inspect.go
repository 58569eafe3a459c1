package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKIInspectCmd(s *streams) *cobra.Command {
	var output outputFormat
	cmd := &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Summarise certificates, CSRs, keys and CRLs",
		Example: `  mqttctl pki inspect pki/server.crt
  mqttctl pki inspect -o json pki/clients/*.crt | jq '.[].not_after'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var all []pki.Summary
			for _, a := range args {
				sums, err := pki.InspectFile(a, time.Now())
				if err != nil {
					return err
				}
				all = append(all, sums...)
			}
			if output == "json" {
				return writeJSON(s, all)
			}
			for i, sum := range all {
				if i > 0 {
					fmt.Fprintln(s.Out)
				}
				sum.WriteText(s.Out)
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output)
	return cmd
}
