package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/agent"
)

func newAgentStatusCmd(s *streams) *cobra.Command {
	var (
		dir, name string
		renewAt   = percentFlag(0.66)
	)
	cmd := &cobra.Command{
		Use:   "status --dir DIR",
		Short: "Print the device's certificate, whether it verifies, and when the agent renews it",
		Long: `status reads the device directory without changing it and prints the
device's name, its certificate's serial and validity, when the agent renews
it (--renew-at, as given to the agent), whether it verifies against ca.crt
and holds its key, the previous pair kept, and a pair an interrupted run was
given, which the next run installs. It exits 1 when the pair does not verify.`,
		Example: `  mqttctl agent --dir /etc/mqttctl/device --est https://ca.example.com:8443 --name sensor-22 --token-file /etc/mqttctl/device/sensor-22.token --once
  mqttctl agent status --dir /etc/mqttctl/device`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("give --dir DIR")
			}
			now := time.Now()
			st, err := agent.ReadStatus(dir, name, float64(renewAt), now)
			if err != nil {
				return err
			}
			fmt.Fprint(s.Out, st.Describe(now))
			if !st.VerifiesAgainstCA {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "the device directory")
	cmd.Flags().StringVar(&name, "name", "", "the device's name (default: the pair in --dir)")
	cmd.Flags().Var(&renewAt, "renew-at", "the agent's renew point")
	return cmd
}
