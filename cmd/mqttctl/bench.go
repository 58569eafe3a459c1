package main

import (
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/internal/mqtturl"
	"github.com/mqttctl/mqttctl/loadgen"
)

type benchFlags struct {
	cafile, cert, key string
	username          string
	pw                passwordFlags
	duration          time.Duration
}

// target turns mqtt://host:port or mqtts://host:port and the TLS and login
// flags into a load target.
func (f *benchFlags) target(s *streams, raw string) (loadgen.Target, error) {
	u, err := mqtturl.Parse(raw)
	if err != nil {
		return loadgen.Target{}, err
	}
	t := loadgen.Target{Addr: u.Addr}
	if f.username != "" {
		t.Username = &f.username
	}
	if f.pw.given() {
		if f.username == "" {
			return t, errors.New("a password needs --username")
		}
		pw, err := f.pw.read(s, "", false)
		if err != nil {
			return t, err
		}
		p := string(pw)
		t.Password = &p
	}
	if !u.TLS {
		return t, nil
	}
	conf := &tls.Config{ServerName: u.Host, MinVersion: tls.VersionTLS12}
	if conf.RootCAs, err = mqtturl.CAPool(f.cafile); err != nil {
		return t, err
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
A password for --username comes from --password-file FILE (- for standard input).`,
	}
	cmd.PersistentFlags().StringVar(&f.cafile, "cafile", "", "CA certificate that signed the broker's")
	cmd.PersistentFlags().StringVar(&f.cert, "cert", "", "client certificate (mutual TLS)")
	cmd.PersistentFlags().StringVar(&f.key, "key", "", "client key (mutual TLS)")
	cmd.PersistentFlags().StringVar(&f.username, "username", "", "username (the password from --password-file)")
	cmd.PersistentFlags().DurationVar(&f.duration, "duration", 5*time.Second, "how long to measure")
	cmd.MarkFlagsRequiredTogether("cert", "key")

	cmd.AddCommand(newBenchHandshakesCmd(s, f), newBenchPubsubCmd(s, f), newBenchIdleCmd(s, f))
	return cmd
}
