package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/metricsrv"
)

type serveFlags struct {
	conf        string
	port        int
	verbose     bool
	mtls, tls   bool
	o           confgen.MosquittoOptions
	printConfig bool
	// connectTimeout bounds accept + TLS handshake + CONNECT.
	connectTimeout time.Duration
	metrics        string // HOST:PORT of /metrics; "": off
}

// serveConfig builds the config model from -c FILE or the quick flags; both
// go through confgen, as `config mosquitto` does.
func (f *serveFlags) config() (*confgen.Config, error) {
	var c *confgen.Config
	switch {
	case f.conf != "":
		if f.port != 0 {
			return nil, fmt.Errorf("-p with -c: mosquitto ignores -p when it reads a config file, so serve refuses it; put the port in a 'listener PORT ADDRESS' line of %s", f.conf)
		}
		var err error
		if c, err = confgen.Load(f.conf); err != nil {
			return nil, err
		}
	case f.mtls || f.tls:
		f.o.Mode = "tls"
		if f.mtls {
			f.o.Mode = "mtls"
		}
		if f.port != 0 {
			// -p is the port of the one TLS listener; its address stays.
			host, _, err := confgen.SplitListen(f.o.Listen)
			if err != nil {
				return nil, err
			}
			f.o.Listen = net.JoinHostPort(host, strconv.Itoa(f.port))
		}
		var err error
		if c, err = confgen.GenerateMosquitto(f.o); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("say what to serve: -c mosquitto.conf, or --mtls/--tls with --pki DIR (see mqttctl serve --help)")
	}
	return c, nil
}

func newServeCmd(s *streams) *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "serve (-c mosquitto.conf | --mtls|--tls --pki DIR)",
		Short: "Run the bundled MQTT broker with mosquitto's TLS and auth semantics",
		Long: `serve runs mqttctl's bundled broker. With -c it reads a mosquitto.conf (a drop-in
for mosquitto -c): listeners, TLS (tls_version as a minimum, require_certificate,
use_identity_as_username, use_subject_as_username, crlfile), password_file,
acl_file, allow_anonymous, max_connections, max_packet_size, persistence.
The quick form builds the same model as 'mqttctl config mosquitto'.

A connection must finish its TLS handshake and send CONNECT within
--connect-timeout. SIGHUP reloads certificates, keys, password and ACL files and
allow_anonymous, and disconnects password clients whose password no longer
verifies. SIGTERM or SIGINT stop it cleanly.

--metrics HOST:PORT serves Prometheus metrics at /metrics (off by default; it
has no authentication, so keep it on 127.0.0.1 or firewall it): clients per
listener, connects and refusals by reason, messages in, out and dropped, TLS
handshake times, and the expiry of connected clients' certificates, of the
server and CA certificates, and of each CRL (see the README).`,
		Example: `  # drop-in for mosquitto
  mqttctl serve -c /etc/mosquitto/mosquitto.conf

  # mutual TLS from a pki directory, on localhost
  mqttctl serve --mtls --pki pki --listen 127.0.0.1:8883

  # with Prometheus metrics at http://127.0.0.1:9234/metrics
  mqttctl serve --mtls --pki pki --listen 127.0.0.1:8883 --metrics 127.0.0.1:9234

  # one-way TLS with passwords and an ACL; show the config it runs
  mqttctl serve --tls --pki pki --passwd passwd --acl acl --print-config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.metrics != "" {
				if err := metricsrv.CheckAddr(f.metrics); err != nil {
					return err
				}
			}
			c, err := f.config()
			if err != nil {
				return err
			}
			if f.printConfig {
				_, err := s.Out.Write(c.Redacted().Marshal())
				return err
			}
			res, ds := c.ResolveForServe()
			for _, d := range ds {
				fmt.Fprintln(s.Err, d)
			}
			if confgen.HasErrors(ds) {
				return exitError{1}
			}
			level := slog.LevelInfo
			if f.verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(s.Err, &slog.HandlerOptions{Level: level}))
			b, err := broker.New(res, broker.Options{Logger: log, ConnectTimeout: f.connectTimeout, Metrics: f.metrics != ""})
			if err != nil {
				return err
			}
			fix := "choose another address with --listen (or -p)"
			if f.conf != "" {
				fix = "change the listener line in " + f.conf
			}
			if err := startBroker(b, res, fix); err != nil {
				return err
			}
			if f.metrics != "" {
				ms, err := b.ServeMetrics(f.metrics)
				if err != nil {
					b.Close()
					return err
				}
				defer ms.Close()
			}
			return runUntilSignal(b, log, func() (*confgen.Resolved, error) { return resolved(f.config()) })
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.conf, "config-file", "c", "", "mosquitto.conf to run")
	fl.IntVarP(&f.port, "port", "p", 0, "quick form: port of the TLS listener (with -c, give the port in the config file)")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "log at debug level")
	fl.BoolVar(&f.mtls, "mtls", false, "quick form: mutual TLS (client certificates; CN = username)")
	fl.BoolVar(&f.tls, "tls", false, "quick form: one-way TLS (clients log in with --passwd)")
	fl.StringVar(&f.o.PKIDir, "pki", "pki", "quick form: pki directory")
	fl.StringVar(&f.o.PasswordFile, "passwd", "", "quick form: password file")
	fl.StringVar(&f.o.ACLFile, "acl", "", "quick form: ACL file")
	fl.StringVar(&f.o.Listen, "listen", "127.0.0.1:8883", "quick form: TLS listener address")
	fl.StringVar(&f.o.Plain, "plain", "", "quick form: also a plain listener on one address")
	addIdentityFlag(cmd, &f.o.Identity, "quick form: cn, subject or none")
	fl.StringVar(&f.o.DataDir, "data-dir", "", "quick form: persistence directory (default: no persistence)")
	fl.BoolVar(&f.printConfig, "print-config", false, "print the configuration as mosquitto.conf and exit")
	fl.StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics at http://HOST:PORT/metrics (e.g. 127.0.0.1:9234; unauthenticated: keep it on loopback); default off")
	fl.DurationVar(&f.connectTimeout, "connect-timeout", broker.DefaultConnectTimeout, "time from TCP accept through the TLS handshake to CONNECT")
	cmd.MarkFlagsMutuallyExclusive("config-file", "mtls", "tls")
	return cmd
}
