package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/loadgen"
)

type benchFlags struct {
	cafile, cert, key string
	username          string
	duration          time.Duration
}

// target turns mqtt://host:port or mqtts://host:port and the TLS flags into
// a load target.
func (f *benchFlags) target(raw string) (loadgen.Target, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return loadgen.Target{}, fmt.Errorf("URL %q: use mqtts://HOST:PORT or mqtt://HOST:PORT", raw)
	}
	t := loadgen.Target{Addr: u.Host}
	if u.Port() == "" {
		port := "1883"
		if u.Scheme == "mqtts" {
			port = "8883"
		}
		t.Addr = net.JoinHostPort(u.Hostname(), port)
	}
	if f.username != "" {
		t.Username = &f.username
		if pw := os.Getenv("MQTT_PASSWORD"); pw != "" {
			t.Password = &pw
		}
	}
	switch u.Scheme {
	case "mqtt", "tcp":
		return t, nil
	case "mqtts", "ssl", "tls":
	default:
		return t, fmt.Errorf("URL scheme %q: use mqtts or mqtt", u.Scheme)
	}
	conf := &tls.Config{ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}
	if f.cafile != "" {
		data, err := os.ReadFile(f.cafile)
		if err != nil {
			return t, fmt.Errorf("read CA file: %w", err)
		}
		conf.RootCAs = x509.NewCertPool()
		if !conf.RootCAs.AppendCertsFromPEM(data) {
			return t, fmt.Errorf("%s holds no certificate", f.cafile)
		}
	}
	if f.cert != "" || f.key != "" {
		c, err := tls.LoadX509KeyPair(f.cert, f.key)
		if err != nil {
			return t, fmt.Errorf("client certificate: %w", err)
		}
		conf.Certificates = []tls.Certificate{c}
	}
	t.TLS = conf
	return t, nil
}

func newBenchCmd(s *streams) *cobra.Command {
	f := &benchFlags{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure a broker: handshakes per second, messages per second",
		Long: `bench drives any MQTT broker (mqttctl serve, mosquitto, ...) from this machine.
A password for --username is read from the MQTT_PASSWORD environment variable.`,
	}
	cmd.PersistentFlags().StringVar(&f.cafile, "cafile", "", "CA certificate that signed the broker's")
	cmd.PersistentFlags().StringVar(&f.cert, "cert", "", "client certificate (mutual TLS)")
	cmd.PersistentFlags().StringVar(&f.key, "key", "", "client key (mutual TLS)")
	cmd.PersistentFlags().StringVar(&f.username, "username", "", "username (password from MQTT_PASSWORD)")
	cmd.PersistentFlags().DurationVar(&f.duration, "duration", 5*time.Second, "how long to measure")

	var workers int
	hs := &cobra.Command{
		Use:     "handshakes URL",
		Short:   "Full TLS handshakes + CONNECT per second",
		Example: `  mqttctl bench handshakes mqtts://localhost:8883 --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "workers"); err != nil {
				return err
			}
			if err := checkDurations(cmd, time.Millisecond, "duration"); err != nil {
				return err
			}
			t, err := f.target(args[0])
			if err != nil {
				return err
			}
			r := loadgen.Handshakes(cmd.Context(), t, workers, f.duration)
			fmt.Fprintf(s.Out, "%.1f handshakes/s (%d in %s, %d errors)\n", r.PerSecond(), r.Count, r.Duration.Round(time.Millisecond), r.Errors)
			if r.FirstError != nil {
				fmt.Fprintf(s.Err, "first error: %v\n", r.FirstError)
			}
			if r.Count == 0 {
				return fmt.Errorf("no handshake completed in %s: see the first error above, or check the target with: mqttctl check %s", f.duration, args[0])
			}
			return nil
		},
	}
	hs.Flags().IntVar(&workers, "workers", 4, "concurrent connecting clients")

	var o loadgen.PubSubOptions
	ps := &cobra.Command{
		Use:     "pubsub URL",
		Short:   "Messages per second from N publishers to one subscriber",
		Example: `  mqttctl bench pubsub mqtts://localhost:8883 --qos 1 --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "publishers", "window"); err != nil {
				return err
			}
			if err := checkDurations(cmd, time.Millisecond, "duration"); err != nil {
				return err
			}
			if err := checkDurations(cmd, 0, "warmup"); err != nil {
				return err
			}
			if o.QoS > 1 {
				return fmt.Errorf("--qos %d: use 0 or 1", o.QoS)
			}
			if o.Size < 0 {
				return fmt.Errorf("--size %d: give a payload size of 0 or more bytes", o.Size)
			}
			t, err := f.target(args[0])
			if err != nil {
				return err
			}
			o.Duration = f.duration
			r, err := loadgen.PubSub(cmd.Context(), t, o)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "%.1f msg/s (QoS %d, %d publishers, %d-byte payloads, %d received in %s)\n", r.PerSecond(), o.QoS, o.Publishers, o.Size, r.Received, r.Duration.Round(time.Millisecond))
			return nil
		},
	}
	ps.Flags().IntVar(&o.Publishers, "publishers", 4, "publishing clients")
	ps.Flags().Uint8Var(&o.QoS, "qos", 0, "QoS 0 or 1")
	ps.Flags().IntVar(&o.Size, "size", 100, "payload bytes")
	ps.Flags().DurationVar(&o.Warmup, "warmup", time.Second, "time before measuring")
	ps.Flags().IntVar(&o.Window, "window", 64, "unacknowledged QoS 1 messages per publisher")
	cmd.AddCommand(hs, ps)
	return cmd
}
