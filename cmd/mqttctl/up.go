package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/deploy"
)

func newUpCmd(s *streams) *cobra.Command {
	var (
		dir, listen, ws string
		verbose         bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Make everything for a mutual-TLS broker and run it (the quick start)",
		Long: `up creates, in --dir, whatever is missing of: a CA, a broker certificate (for
localhost, 127.0.0.1, ::1 and this host), a "demo" client certificate, a password
file, an ACL and a mosquitto.conf (mutual TLS, the certificate CN as username).
Then it runs the bundled broker on that mosquitto.conf and prints commands to try
it. Run it again and every file is reused unchanged. mosquitto can run the same
mosquitto.conf.`,
		Example: `  mqttctl up
  mqttctl up --dir /srv/mqtt --listen 0.0.0.0:8883 --websockets 0.0.0.0:8884
  mqttctl up --websockets ""   # no WebSocket listener`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := deploy.NewLayout(dir, listen, ws)
			if err != nil {
				return err
			}
			if err := l.CheckListen(); err != nil {
				return listenFix(err)
			}
			steps, notes, err := deploy.Prepare(l, "mosquitto")
			if err != nil {
				return err
			}
			for _, st := range steps {
				fmt.Fprintf(s.Out, "%-8s %-52s %s\n", st.Verb, st.What, st.Path)
			}
			for _, n := range notes {
				fmt.Fprintf(s.Out, "note: %s\n", n)
			}
			res, err := resolved(confgen.Load(l.Conf))
			if err != nil {
				return err
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
			b, err := broker.New(res, broker.Options{Logger: log})
			if err != nil {
				return err
			}
			if err := startBroker(b, res, "choose another address with --listen"); err != nil {
				return err
			}
			printTryIt(s, l)
			return runUntilSignal(b, log, func() (*confgen.Resolved, error) { return resolved(confgen.Load(l.Conf)) })
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "mqttctl-data", "directory for certificates, password file, ACL, config and data")
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8883", "address of the mutual-TLS listener")
	cmd.Flags().StringVar(&ws, "websockets", "127.0.0.1:8884", "address of the wss listener for browsers, same certificates (\"\" for none)")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log at debug level")
	return cmd
}

// listenFix adds to a listen address up cannot bind the flag that changes
// it; nothing is written yet.
func listenFix(err error) error {
	var le *deploy.ListenError
	if !errors.As(err, &le) {
		return err
	}
	flag := "--listen"
	if le.WebSockets {
		flag = "--websockets"
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("%w (another broker? see: ss -ltnp): stop it, or choose another address with %s; nothing was written", err, flag)
	}
	return fmt.Errorf("%w: choose another address with %s; nothing was written", err, flag)
}

// printTryIt prints commands that work as printed against the running broker.
func printTryIt(s *streams, l *deploy.Layout) {
	client := filepath.Join(l.PKI, "clients", deploy.DemoClient)
	tlsArgs := fmt.Sprintf("--cafile %s --cert %s.crt --key %s.key", filepath.Join(l.PKI, "ca.crt"), client, client)
	hp := fmt.Sprintf("-h %s -p %d", l.Host, l.Port)
	lines := []string{
		"",
		fmt.Sprintf("Mutual-TLS MQTT broker running on %s (Ctrl-C stops it; SIGHUP reloads certificates, passwords and the ACL).", l.Listen),
		"Try it in another terminal:",
		fmt.Sprintf("  mosquitto_sub %s %s -t 'demo/#' -v", hp, tlsArgs),
		fmt.Sprintf("  mosquitto_pub %s %s -t demo/hello -m 'hello over mutual TLS'", hp, tlsArgs),
		fmt.Sprintf("  openssl s_client -connect %s:%d -verify_hostname %s -CAfile %s -cert %s.crt -key %s.key -brief </dev/null",
			l.Host, l.Port, l.Host, filepath.Join(l.PKI, "ca.crt"), client, client),
		fmt.Sprintf("  %s check mqtts://%s:%d %s --topic demo/check", self(), l.Host, l.Port, tlsArgs),
		"More clients: " + self() + " pki issue client NAME --dir " + l.PKI + " (the CN is the username the ACL sees).",
		"The same config under mosquitto: mosquitto -c " + l.Conf,
	}
	if l.WebSockets != "" {
		lines = append(lines,
			fmt.Sprintf("From a browser: wss://%s:%d/mqtt (MQTT over WebSocket, e.g. with mqtt.js). The browser must trust the CA and present the demo certificate:", l.Host, l.WSPort),
			fmt.Sprintf("  %s pki export %s --dir %s --format p12 --out demo.p12   # import demo.p12 and %s into the browser",
				self(), deploy.DemoClient, l.PKI, filepath.Join(l.PKI, "ca.crt")),
			fmt.Sprintf("  %s check wss://%s:%d/mqtt %s", self(), l.Host, l.WSPort, tlsArgs))
	}
	lines = append(lines, "")
	fmt.Fprintln(s.Out, strings.Join(lines, "\n"))
}

// self is how the user can run this binary: "mqttctl" when that is what
// PATH finds, else the executable's path (e.g. bin/mqttctl after make).
func self() string {
	exe, err := os.Executable()
	if err != nil {
		return "mqttctl"
	}
	if p, err := exec.LookPath("mqttctl"); err == nil {
		if a, _ := filepath.EvalSymlinks(p); a == exe || p == exe {
			return "mqttctl"
		}
	}
	return exe
}
