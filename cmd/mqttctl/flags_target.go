package main

import (
	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
)

// The --target flags of config mosquitto and config check (flags.go is
// full): typed, so that a value mqttctl cannot honour is refused as the
// flag is parsed.

// mosquittoTargetFlag is a --target that takes a mosquitto version, 2.0 or
// 2.1: any other value is refused as the flag is parsed.
type mosquittoTargetFlag struct{ t *confgen.MosquittoTarget }

func (f mosquittoTargetFlag) String() string { return string(*f.t) }

func (f mosquittoTargetFlag) Set(v string) error {
	t, err := confgen.ParseMosquittoTarget(v)
	if err != nil {
		return err
	}
	*f.t = t
	return nil
}

func (f mosquittoTargetFlag) Type() string { return "2.0|2.1" }

// mosquittoTarget is the --target given, else the version of the mosquitto
// on PATH (2.0 where there is none), with where it came from.
func mosquittoTarget(cmd *cobra.Command, t confgen.MosquittoTarget) (confgen.MosquittoTarget, string, error) {
	if t != "" {
		return t, "--target", nil
	}
	return confgen.DetectMosquittoTarget(cmd.Context())
}

// checkTargetFlag is config check's --target: serve, mosquitto,
// mosquitto-2.0 or mosquitto-2.1, refused as the flag is parsed otherwise.
type checkTargetFlag struct{ t *confgen.CheckTarget }

func (f checkTargetFlag) String() string { return string(*f.t) }

func (f checkTargetFlag) Set(v string) error {
	t, err := confgen.ParseCheckTarget(v)
	if err != nil {
		return err
	}
	*f.t = t
	return nil
}

func (f checkTargetFlag) Type() string { return "serve|mosquitto|mosquitto-2.0|mosquitto-2.1" }
