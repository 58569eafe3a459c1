package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/loadgen"
)

func newBenchIdleCmd(s *streams, f *benchFlags) *cobra.Command {
	var conns, parallel int
	cmd := &cobra.Command{
		Use:   "idle URL",
		Short: "Open N connections and hold them idle (to measure what a connection costs the broker)",
		Long: `idle opens --conns connections (TLS and CONNECT), prints "open N" once all are up,
holds them for --duration and closes them. Read the broker's memory while they are
open (e.g. VmRSS in /proc/PID/status); scripts/bench-vs-mosquitto.sh does.`,
		Example: `  mqttctl bench idle mqtts://localhost:8883 --conns 500 --duration 5s --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "conns", "parallel"); err != nil {
				return err
			}
			if err := checkDurations(cmd, time.Millisecond, "duration"); err != nil {
				return err
			}
			t, err := f.target(s, args[0])
			if err != nil {
				return err
			}
			start := time.Now()
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			err = loadgen.Idle(ctx, t, conns, parallel, func(n int) {
				fmt.Fprintf(s.Out, "open %d (in %s)\n", n, time.Since(start).Round(time.Millisecond))
				if out, ok := s.Out.(*os.File); ok {
					out.Sync()
				}
				time.AfterFunc(f.duration, cancel)
			})
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("open %d connections: %w", conns, err)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&conns, "conns", 1000, "connections to open")
	cmd.Flags().IntVar(&parallel, "parallel", 16, "connections opened at a time")
	f.pw.add(cmd, false)
	return cmd
}
