package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// streams are the command's standard input and outputs, replaceable in tests.
type streams struct {
	In  io.Reader
	Out io.Writer
	Err io.Writer
	// terminal reports whether In is an interactive terminal (for prompts).
	terminal func() bool
	// readPassword reads a line from the terminal without echo.
	readPassword func() ([]byte, error)
}

func newStreams(in *os.File, out, errw io.Writer) *streams {
	return &streams{
		In: in, Out: out, Err: errw,
		terminal:     func() bool { return term.IsTerminal(int(in.Fd())) },
		readPassword: func() ([]byte, error) { return term.ReadPassword(int(in.Fd())) },
	}
}

// exitError carries an exit status without an extra message (the command has
// already printed what went wrong).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

func run(args []string, s *streams) int {
	root := newRootCmd(s)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	if err == nil {
		return 0
	}
	err = withHint(cmd, err)
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintf(s.Err, "mqttctl: %v\n", err)
	return 1
}

func versionString() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

func newRootCmd(s *streams) *cobra.Command {
	root := &cobra.Command{
		Use:   "mqttctl",
		Short: "From nothing to a secured MQTT deployment",
		Long: `mqttctl makes the certificates, password files, ACLs and mosquitto.conf of a
secured MQTT deployment, checks them, and can run the broker itself.`,
		Example: `  # a CA, a broker certificate for this machine and a client certificate
  mqttctl pki init --client sensor-01

  # check the directory, including that the broker certificate names this host
  mqttctl pki check --host broker.example.com

  # look inside any certificate, CSR, key or CRL
  mqttctl pki inspect pki/server.crt`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       versionString(),
	}
	root.SetIn(s.In)
	root.SetOut(s.Out)
	root.SetErr(s.Err)
	root.AddCommand(newPKICmd(s), newPasswdCmd(s), newACLCmd(s), newConfigCmd(s), newServeCmd(s), newEnrollCmd(s), newAgentCmd(s), newUpCmd(s), newCheckCmd(s), newReloadCmd(s), newBenchCmd(s), newVersionCmd(s))
	for _, c := range root.Commands() {
		requireSubcommand(c)
	}
	explainArgs(root)
	return root
}

// requireSubcommand makes a command group (pki, passwd, ...) fail on an
// unknown subcommand, with cobra's suggestions, instead of printing its help
// and exiting 0; without arguments it prints its help.
func requireSubcommand(c *cobra.Command) {
	if !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(c *cobra.Command, args []string) error {
		if len(args) == 0 {
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], c.CommandPath())
		if sug := c.SuggestionsFor(args[0]); len(sug) > 0 {
			msg += "; did you mean " + strings.Join(sug, " or ") + "?"
		}
		return fmt.Errorf("%s (run '%s --help' for the list)", msg, c.CommandPath())
	}
	for _, sub := range c.Commands() {
		requireSubcommand(sub)
	}
}

func newVersionCmd(s *streams) *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print mqttctl's version",
		Example: `  mqttctl version`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(s.Out, "mqttctl %s\n", versionString())
			return nil
		},
	}
}
