package main

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/loadgen"
)

func newBenchIdleCmd(s *streams, f *benchFlags) *cobra.Command {
	var conns, parallel, sourceAddrs, maxFailures int
	var timeout, progress time.Duration
	cmd := &cobra.Command{
		Use:   "idle URL",
		Short: "Open N connections and hold them idle (to measure what a connection costs the broker)",
		Long: `idle opens --conns connections (TLS and CONNECT), --parallel at a time, each within
--timeout, and prints one line once all are up or failed:
  open N of CONNS in SECONDS s (RATE/s), F failed[: REASON COUNT, ...]
(reasons: refused, timeout, tls, no port, closed, connack, other) and the load
generator's own memory per connection; then it holds them for --duration and
closes them. While opening it prints its progress on standard error every
--progress. Read the broker's memory while they are open (e.g. VmRSS in
/proc/PID/status); scripts/bench-vs-mosquitto.sh does. It exits 1 if any failed.

It raises its own open files limit to the hard limit (and beyond it where it may).
One source address has only the ephemeral port range's ports
(/proc/sys/net/ipv4/ip_local_port_range, about 28000) for one broker address: to
a broker on 127.0.0.0/8 it spreads the connections over loopback source addresses
127.0.0.2, 127.0.0.3, ... (--source-addrs; by default as many as --conns needs).`,
		Example: `  mqttctl bench idle mqtts://localhost:8883 --conns 500 --duration 5s --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key
  # the same connections spread over 4 source addresses, 127.0.0.2 to 127.0.0.5
  mqttctl bench idle mqtts://localhost:8883 --conns 400 --source-addrs 4 --duration 2s --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "conns", "parallel", "source-addrs", "max-failures"); err != nil {
				return err
			}
			if err := checkDurations(cmd, time.Millisecond, "duration", "timeout", "progress"); err != nil {
				return err
			}
			t, err := f.target(s, args[0])
			if err != nil {
				return err
			}
			if _, err := loadgen.RaiseOpenFiles(uint64(conns) + loadgen.FilesPerRun); err != nil {
				return err
			}
			src, err := loadgen.Sources(cmd.Context(), t.Addr, conns, sourceAddrs)
			if err != nil {
				return fmt.Errorf("--source-addrs %d: %w", sourceAddrs, err)
			}
			switch {
			case len(src) == 1:
				fmt.Fprintf(s.Err, "from source address %s\n", src[0])
			case len(src) > 1:
				fmt.Fprintf(s.Err, "from %d source addresses, %s to %s\n", len(src), src[0], src[len(src)-1])
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			res := loadgen.IdleRun(ctx, t, loadgen.IdleOptions{
				Conns: conns, Parallel: parallel, Timeout: timeout, Sources: src, MaxFailures: maxFailures,
				ProgressEvery: progress,
				Progress: func(r loadgen.IdleResult) {
					fmt.Fprintf(s.Err, "opened %d, failed %d, %.0f s\n", r.Opened, r.Failed, r.Elapsed.Seconds())
				},
				Ready: func(r loadgen.IdleResult) {
					fmt.Fprintf(s.Out, "open %d of %d in %.1f s (%.0f/s), %s\n", r.Opened, conns, r.Elapsed.Seconds(), float64(r.Opened)/r.Elapsed.Seconds(), failures(r))
					fmt.Fprintf(s.Out, "generator RSS %.1f kB per connection (VmRSS %d kB to %d kB)\n", r.RSSPerConn()/1024, r.RSSBefore>>10, r.RSSAfter>>10)
					if out, ok := s.Out.(*os.File); ok {
						out.Sync()
					}
					time.AfterFunc(f.duration, cancel)
				},
			})
			if res.Failed > 0 {
				return fmt.Errorf("%d of %d connections opened (%s)", res.Opened, conns, failures(res))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&conns, "conns", 1000, "connections to open")
	cmd.Flags().IntVar(&parallel, "parallel", 16, "connections opened at a time")
	cmd.Flags().IntVar(&sourceAddrs, "source-addrs", 0, "loopback source addresses to spread the connections over, from 127.0.0.2 on (default: as many as --conns needs for the ephemeral port range; none to a broker off loopback)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "per connection: TCP, TLS, CONNECT and CONNACK")
	cmd.Flags().IntVar(&maxFailures, "max-failures", 100, "stop opening after this many failed connections")
	cmd.Flags().DurationVar(&progress, "progress", 5*time.Second, "how often to print progress on standard error while opening")
	f.pw.add(cmd, false)
	return cmd
}

// failures is "F failed" with the reasons.
func failures(r loadgen.IdleResult) string {
	if r.Failed == 0 {
		return "0 failed"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d failed:", r.Failed)
	for i, k := range slices.Sorted(maps.Keys(r.Reasons)) {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %s %d", k, r.Reasons[k])
	}
	return b.String()
}
