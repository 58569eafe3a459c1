package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func printReport(w io.Writer, rep *pki.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range rep.Actions {
		verb := strings.ToUpper(a.Verb[:1]) + a.Verb[1:]
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", verb, a.What, a.Path, a.Detail)
	}
	tw.Flush()
	for _, wmsg := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wmsg)
	}
}

// writeJSON prints v as indented JSON, for -o json.
func writeJSON(s *streams, v any) error {
	enc := json.NewEncoder(s.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// refuseDash refuses "-" for a flag naming where a command writes what
// cannot go to standard output (several files, a key, a binary file): it
// would otherwise make a file named "-".
func refuseDash(cmd *cobra.Command, flag, writes string) error {
	if f := cmd.Flags().Lookup(flag); f != nil && f.Value.String() == "-" {
		return fmt.Errorf("--%s -: %s writes %s, not standard output: give a path (./- for a file named -)", flag, cmd.CommandPath(), writes)
	}
	return nil
}
