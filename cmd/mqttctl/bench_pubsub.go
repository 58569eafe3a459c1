package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/loadgen"
)

func newBenchPubsubCmd(s *streams, f *benchFlags) *cobra.Command {
	var o loadgen.PubSubOptions
	ps := &cobra.Command{
		Use:     "pubsub URL",
		Short:   "Messages per second from N publishers to M subscribers (and, for QoS 1, how many were lost)",
		Example: `  mqttctl bench pubsub mqtts://localhost:8883 --qos 1 --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "publishers", "subscribers", "window"); err != nil {
				return err
			}
			if err := checkDurations(cmd, time.Millisecond, "duration"); err != nil {
				return err
			}
			if err := checkDurations(cmd, 0, "warmup"); err != nil {
				return err
			}
			if o.QoS > 1 {
				return fmt.Errorf("--qos %d: use 0 or 1", o.QoS)
			}
			if o.Size < 0 {
				return fmt.Errorf("--size %d: give a payload size of 0 or more bytes", o.Size)
			}
			t, err := f.target(s, args[0])
			if err != nil {
				return err
			}
			o.Duration = f.duration
			r, err := loadgen.PubSub(cmd.Context(), t, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%.1f msg/s (QoS %d, %d publishers, %d subscribers, %d-byte payloads, %d received in %s",
				r.PerSecond(), o.QoS, o.Publishers, o.Subscribers, o.Size, r.Received, r.Duration.Round(time.Millisecond))
			if o.QoS == 1 {
				fmt.Fprintf(s.Out, "; %d acknowledged, %d lost", r.Acked, r.Lost)
			}
			fmt.Fprintln(s.Out, ")")
			return nil
		},
	}
	ps.Flags().IntVar(&o.Publishers, "publishers", 4, "publishing clients")
	ps.Flags().IntVar(&o.Subscribers, "subscribers", 1, "subscribing clients, each getting every message")
	ps.Flags().Uint8Var(&o.QoS, "qos", 0, "QoS 0 or 1")
	ps.Flags().IntVar(&o.Size, "size", 100, "payload bytes")
	ps.Flags().DurationVar(&o.Warmup, "warmup", time.Second, "time before measuring")
	ps.Flags().IntVar(&o.Window, "window", 64, "unacknowledged QoS 1 messages per publisher")
	f.pw.add(ps, false)
	return ps
}
