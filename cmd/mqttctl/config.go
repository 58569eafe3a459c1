package main

import (
	"github.com/spf13/cobra"
)

func newConfigCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Write and check broker configurations (mosquitto.conf; EMQX, RabbitMQ)",
	}
	cmd.AddCommand(newConfigMosquittoCmd(s), newConfigCheckCmd(s), newConfigEMQXCmd(s), newConfigRabbitMQCmd(s))
	return cmd
}
