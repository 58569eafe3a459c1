package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/reload"
)

func newReloadMosquittoCmd(s *streams) *cobra.Command {
	var (
		o     reload.Options
		watch bool
	)
	cmd := &cobra.Command{
		Use:   "mosquitto -c FILE",
		Short: "Check mosquitto's files, then SIGHUP it and confirm the new certificate is served",
		Long: `mosquitto does not notice a new certificate, key or CRL (mosquitto#2038): it
rereads its files on SIGHUP. And mosquitto 2.1 quits when it rereads a bad ACL
or password file. reload mosquitto first runs the checks of
  mqttctl config check --target mosquitto-2.X FILE
on the config and every file it names, for the version the running broker's
own binary reports (2.0 stops at an option of 2.1's). Only when they pass does it send SIGHUP
to the broker whose process id the pid file holds (--pid-file, else the
config's pid_file), then it makes a TLS handshake with each TLS listener until
the certificate served is the one in its certfile (for up to 15 s). That
handshake has no client certificate: a listener that requires one logs it as a
connection that failed ("Protocol error"), which is expected.
On a failed check it prints why at file:line, sends nothing and exits 1: the
broker keeps running on the files it has. mosquitto 2.1 (which quits on a bad
file at SIGHUP) also does not follow a symlink to its ACL or password file
unless MOSQUITTO_UNSAFE_ALLOW_SYMLINKS is set in its environment: for it, such a
file is refused too.

--watch keeps running: every second it looks at each file the config names
(the config and its include_dir files, certificates, keys, CA, CRL, password
and ACL files), including a file replaced by rename and a symlink flipped to
another target (Kubernetes' ..data); once nothing has changed for a second
after a change, it does the above and logs its decision. SIGTERM or Ctrl-C
stops it.`,
		Example: `  # after mqttctl pki renew server or pki revoke: reload the broker, only if its files pass the checks
  mqttctl reload mosquitto -c /etc/mosquitto/broker.conf
  # name the pid file (when the config has no pid_file line)
  mqttctl reload mosquitto -c /etc/mosquitto/broker.conf --pid-file /srv/run/mosquitto.pid
  # run beside the broker and reload whenever a file changes (Kubernetes secrets too); here for 3 s
  timeout --preserve-status 3 mqttctl reload mosquitto -c /etc/mosquitto/broker.conf --watch`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Config == "" {
				return errors.New("give the broker's config with -c FILE")
			}
			if watch {
				ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
				defer stop()
				log := slog.New(slog.NewTextHandler(s.Err, nil))
				return reload.Watch(ctx, o, reload.WatchOptions{}, log)
			}
			res, err := reload.Once(context.Background(), o)
			var ce *reload.CheckError
			if errors.As(err, &ce) {
				for _, d := range ce.Diagnostics {
					fmt.Fprintln(s.Out, d)
				}
				fmt.Fprintln(s.Out, reload.ErrCheck.Error())
				return exitError{1}
			}
			if err != nil {
				if res.PID != 0 {
					fmt.Fprintf(s.Out, "sent SIGHUP to mosquitto (pid %d)\n", res.PID)
				}
				return err
			}
			for _, d := range res.Diagnostics {
				fmt.Fprintln(s.Out, d)
			}
			fmt.Fprintf(s.Out, "checks passed; sent SIGHUP to mosquitto (pid %d)\n", res.PID)
			for _, sv := range res.Served {
				fmt.Fprintf(s.Out, "listener %s serves %s (SHA-256 %s)\n", sv.Listener, sv.CertFile, sv.Fingerprint)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&o.Config, "config-file", "c", "", "the broker's mosquitto.conf")
	fl.StringVar(&o.PIDFile, "pid-file", "", "the broker's pid file (default: the config's pid_file)")
	fl.BoolVar(&watch, "watch", false, "keep running and reload whenever a file the config names changes")
	return cmd
}
