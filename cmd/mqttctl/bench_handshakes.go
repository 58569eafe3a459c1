package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/loadgen"
)

func newBenchHandshakesCmd(s *streams, f *benchFlags) *cobra.Command {
	var (
		workers int
		resume  bool
	)
	hs := &cobra.Command{
		Use:   "handshakes URL",
		Short: "TLS handshakes + CONNECT per second (full, or resumed with --resume)",
		Long: `handshakes connects, sends CONNECT, waits for CONNACK and disconnects, over and
over from --workers clients. Every handshake is a full one, unless --resume: then
each client keeps the session tickets the broker sends and resumes with them, as a
device reconnecting after a broker restart does.`,
		Example: `  mqttctl bench handshakes mqtts://localhost:8883 --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key
  mqttctl bench handshakes mqtts://localhost:8883 --resume --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "workers"); err != nil {
				return err
			}
			if err := checkDurations(cmd, time.Millisecond, "duration"); err != nil {
				return err
			}
			t, err := f.target(s, args[0])
			if err != nil {
				return err
			}
			r := loadgen.Handshakes(cmd.Context(), t, workers, f.duration, resume)
			fmt.Fprintf(s.Out, "%.1f handshakes/s (%d in %s, %d resumed, %d errors)\n", r.PerSecond(), r.Count, r.Duration.Round(time.Millisecond), r.Resumed, r.Errors)
			if r.FirstError != nil {
				fmt.Fprintf(s.Err, "first error: %v\n", r.FirstError)
			}
			if r.Count == 0 {
				return fmt.Errorf("no handshake completed in %s: see the first error above, or check the target with: mqttctl check %s", f.duration, args[0])
			}
			return nil
		},
	}
	hs.Flags().IntVar(&workers, "workers", 4, "concurrent connecting clients")
	hs.Flags().BoolVar(&resume, "resume", false, "resume TLS sessions with the broker's tickets")

	f.pw.add(hs, false)
	return hs
}
