package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
)

// checkPositive refuses an int flag given with a value below 1. Library
// options read 0 as "the default", so without this --days 0 would silently
// mean 365.
func checkPositive(cmd *cobra.Command, names ...string) error {
	for _, n := range names {
		f := cmd.Flags().Lookup(n)
		if f == nil || !f.Changed {
			continue
		}
		v, err := cmd.Flags().GetInt(n)
		if err != nil {
			return err
		}
		if v < 1 {
			return fmt.Errorf("--%s %d: give a number from 1 up (leave the flag out for the default, %s)", n, v, f.DefValue)
		}
	}
	return nil
}

// checkDurations refuses duration flags below min (changed or not: their
// defaults are valid).
func checkDurations(cmd *cobra.Command, min time.Duration, names ...string) error {
	for _, n := range names {
		v, err := cmd.Flags().GetDuration(n)
		if err != nil {
			return err
		}
		if v < min || v == 0 && min > 0 {
			return fmt.Errorf("--%s %s: give a duration of at least %s, e.g. 5s", n, v, max(min, time.Millisecond))
		}
	}
	return nil
}
