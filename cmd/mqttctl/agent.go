package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/agent"
)

// exitNotDue is the exit status of agent --once when the certificate is
// not due for renewal.
const exitNotDue = 3

// percentFlag is a fraction given as a percentage ("66%").
type percentFlag float64

func (p *percentFlag) String() string { return strconv.FormatFloat(float64(*p)*100, 'f', -1, 64) + "%" }
func (p *percentFlag) Type() string   { return "percent" }
func (p *percentFlag) Set(v string) error {
	n, err := strconv.ParseFloat(strings.TrimSuffix(v, "%"), 64)
	if err != nil || n < 1 || n > 99 {
		return fmt.Errorf("%q: give a percentage of the certificate's lifetime from 1%% to 99%% (66%%)", v)
	}
	*p = percentFlag(n / 100)
	return nil
}

func newAgentCmd(s *streams) *cobra.Command {
	var (
		o               agent.Options
		renewAt         = percentFlag(0.66)
		once, printUnit bool
		verbose         bool
	)
	cmd := &cobra.Command{
		Use:   "agent --dir DIR --est https://HOST:PORT",
		Short: "Run on a device: enrol with a token, then renew the client certificate before it ends",
		Long: `agent keeps a device's client certificate current with an EST server ('mqttctl
enroll serve'). DIR holds ca.crt (the CA the server is trusted through, put
there by the factory; or --cafile) and the device's pair NAME.crt and NAME.key;
a DIR others can write is refused, a key or token file others can read is
warned about.

With no certificate it makes a key (EC P-256, 0600) and a request with CN NAME
(--name: the name the token was made for) and enrols with the token
(simpleenroll, HTTP Basic NAME:TOKEN); the token file (its first line is the
token) is removed once spent. Later runs take the name from the pair in DIR.
Once the renew point of the certificate's lifetime has passed (--renew-at,
66% by default) it re-enrols with the current certificate (simplereenroll,
TLS client authentication), keeping the key unless --rekey.

Each pair is kept in a directory of its own, DIR/NAME.pairs/SERIAL/, and
NAME.crt and NAME.key are symbolic links through one pointer, NAME.current
(NAME.prev.crt and .prev.key through NAME.previous): applications read
NAME.crt and NAME.key as before. A renewal writes the new pair into
NAME.pairs/next/ (the key before the request is sent, the certificate as soon
as the server answers), checks it (it verifies against ca.crt, names the
device, holds the key, is a client certificate, not a CA or bootstrap one,
lasts an hour or more, ends no earlier than the current one and is not it; with
--check URL it logs into that broker), then
switches NAME.current in one rename: NAME.crt and NAME.key name the old pair
or the new one, never one of each, even after a kill -9 at any step; the next
run installs a pair the server issued to a stopped run. A program that must
not read the two files across a switch resolves NAME.current once and reads
both files from that directory. Then --exec runs
with sh -c (MQTTCTL_CERT, MQTTCTL_KEY and MQTTCTL_NAME in its environment);
its failure is logged and the exit status is 1, the new pair in place.
At the first enrolment the pair the server issued is installed even when
--check fails (the token is spent; there is no older pair), and a
certificate that starts up to 10 minutes after the device's clock is
accepted with a warning about the clock (further: kept in NAME.pairs/next/
until the clock is set).

An expired certificate is renewed only within the server's
--renew-after-expiry window; outside it the agent says so and enrols with a
new token when given one (--token-file).

Without --once it runs until stopped: it waits for the renew point and, while
the server cannot be reached, retries after 10s, 20s, ... up to 1h, with
jitter. A refusal (revoked, a new token needed) exits 1.
With --once (cron, systemd timers) the exit status is 0 when it enrolled or
renewed, 3 when the certificate is not due, 1 when it failed.
--print-unit prints a systemd service running this command line in the
current directory (WorkingDirectory=, so that a relative --exec still names
its file); a value with a control character is refused.`,
		Example: `  # first boot: enrol with the token the factory put on the device
  mqttctl agent --dir /etc/mqttctl/device --est https://ca.example.com:8443 --name sensor-21 --token-file /etc/mqttctl/device/sensor-21.token --once
  # from cron or a systemd timer: renew when due (exit 3: not due), then reload the application
  mqttctl agent --dir /etc/mqttctl/device --est https://ca.example.com:8443 --once --exec 'systemctl reload myapp'   # fails: "not due sensor-21"
  # or as a service that sleeps until the renew point
  mqttctl agent --dir /etc/mqttctl/device --est https://ca.example.com:8443 --print-unit > /etc/systemd/system/mqttctl-agent.service`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Dir == "" || o.EST == "" {
				return errors.New("give --dir DIR and --est https://HOST:PORT")
			}
			if printUnit {
				return printAgentUnit(s, cmd, o.Dir)
			}
			o.RenewAt = float64(renewAt)
			o.ExecOut = s.Err
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			o.Log = slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if !once {
				return agent.Run(ctx, o)
			}
			out, err := agent.Once(ctx, o)
			if err != nil && !errors.Is(err, agent.ErrExec) {
				return err
			}
			if st, serr := agent.ReadStatus(o.Dir, o.Name, o.RenewAt, time.Now()); serr == nil {
				fmt.Fprintf(s.Out, "%s %s: serial %s, until %s; renews at %s\n", out, st.Name, st.Serial,
					st.NotAfter.UTC().Format(time.RFC3339), st.RenewAt.UTC().Format(time.RFC3339))
			}
			if err != nil {
				return err
			}
			if out == agent.NotDue {
				return exitError{exitNotDue}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.Dir, "dir", "", "the device directory (ca.crt, NAME.crt, NAME.key)")
	fl.StringVar(&o.EST, "est", "", "the EST server, https://HOST:PORT")
	fl.StringVar(&o.Name, "name", "", "the device's name (CN, MQTT identity), for the first enrolment (default: the pair in --dir)")
	fl.StringVar(&o.TokenFile, "token-file", "", "file holding the one-time enrolment token (removed once spent)")
	fl.StringVar(&o.CAFile, "cafile", "", "the CA certificate the EST server is trusted through (default DIR/ca.crt)")
	fl.Var(&renewAt, "renew-at", "renew once this much of the certificate's lifetime has passed")
	fl.BoolVar(&o.Rekey, "rekey", false, "make a new key at each renewal")
	fl.StringVar(&o.Exec, "exec", "", "command run with sh -c after a renewal (e.g. 'systemctl reload myapp')")
	fl.StringVar(&o.Check, "check", "", "before the switch, check that the new pair logs into this broker (mqtts://HOST:PORT)")
	fl.BoolVar(&once, "once", false, "one pass, for cron and timers: exit 0 renewed, 3 not due, 1 failed")
	fl.BoolVar(&printUnit, "print-unit", false, "print a systemd service that runs this command")
	fl.BoolVar(&verbose, "verbose", false, "log every pass, not only renewals and failures")
	cmd.AddCommand(newAgentStatusCmd(s))
	return cmd
}

// printAgentUnit prints the unit running this command line: the changed
// flags but --print-unit and --once, paths made absolute.
func printAgentUnit(s *streams, cmd *cobra.Command, dir string) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	argv := []string{exe, "agent"}
	var ferr error
	for _, name := range []string{"dir", "est", "name", "token-file", "cafile", "renew-at", "rekey", "exec", "check", "verbose"} {
		f := cmd.Flags().Lookup(name)
		if !cmd.Flags().Changed(name) {
			continue
		}
		v := f.Value.String()
		switch name {
		case "dir", "token-file", "cafile":
			abs, err := filepath.Abs(v)
			if err != nil {
				ferr = err
			}
			v = abs
		}
		if f.Value.Type() == "bool" {
			if v == "true" {
				argv = append(argv, "--"+name)
			}
			continue
		}
		argv = append(argv, "--"+name, v)
	}
	if ferr != nil {
		return ferr
	}
	abs, _ := filepath.Abs(dir)
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	unit, err := agent.Unit(argv, abs, wd)
	if err != nil {
		return err
	}
	fmt.Fprint(s.Out, unit)
	return nil
}
