package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newEnrollTokenRevokeCmd(s *streams, f *enrollFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a device's unused enrolment token",
		Example: `  mqttctl enroll token create sensor-17 > sensor-17.token
  # the device was lost before it enrolled
  mqttctl enroll token revoke sensor-17`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := f.dir(s).RevokeToken(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Revoked the unused token of %s: it can no longer enrol\n", args[0])
			return nil
		},
	}
}
