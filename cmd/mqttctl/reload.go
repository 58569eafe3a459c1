package main

import "github.com/spf13/cobra"

func newReloadCmd(s *streams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "reload",
		Short: "Make a running broker reread its files, only when they pass the checks",
	}
	cmd.AddCommand(newReloadMosquittoCmd(s))
	return cmd
}
