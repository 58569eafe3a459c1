package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/diagnose"
)

func newCheckCmd(s *streams) *cobra.Command {
	var (
		o       diagnose.Options
		pw      passwordFlags
		output  outputFormat
		timeout time.Duration
		cross   bool
	)
	cmd := &cobra.Command{
		Use:   "check URL [URL...]",
		Short: "Connect to a broker and explain what works and what does not",
		Long: `check connects as a client and reports the TLS version and cipher, the broker's
chain and whether it verifies, whether its certificate names the host you
dialled, whether the broker asked for a client certificate and accepted it, the
CONNACK, and a publish/subscribe round trip. Each failure comes with its cause
and the command that fixes it. Exit status 1 when anything fails.

wss:// and ws:// URLs check a WebSocket listener (the path matters to some
brokers; mosquitto and mqttctl serve take any). A web page served over https can
only use wss:// (or ws:// to this machine): with --from-page https://... a ws://
URL to another host fails, and without it check says so in a note.`,
		Example: `  mqttctl check mqtts://localhost:8883 --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key
  printf '%s\n' "$PW" | mqttctl check mqtts://broker.example.com:8883 --cafile pki/ca.crt --username alice --password-stdin
  mqttctl check mqtt://127.0.0.1:1883 -o json
  mqttctl check wss://localhost:8884/mqtt --cafile pki/ca.crt --cert pki/clients/demo.crt --key pki/clients/demo.key
  # a page served over https cannot use ws:// to another host
  mqttctl check ws://192.0.2.10:8080/mqtt --from-page https://app.example.com/   # fails: "browsers block ws:// to another host"
  # a cluster: every node works, and a message crosses from each node to every other
  mqttctl check --cross mqtts://mqtt1.example.com:8883 mqtts://mqtt2.example.com:8883 --cafile pki/ca.crt --cert pki/clients/alice.crt --key pki/clients/alice.key`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if timeout <= 0 {
				return fmt.Errorf("--timeout %s: give a positive duration, e.g. 5s", timeout)
			}
			o.Timeout = timeout
			if o.CertFile != "" && o.KeyFile == "" || o.KeyFile != "" && o.CertFile == "" {
				return errors.New("give both --cert and --key")
			}
			if pw.given() {
				p, err := pw.read(s, "", false)
				if err != nil {
					return err
				}
				o.Password = p
			}
			n := 0
			c, err := diagnose.CheckCluster(cmd.Context(), o, args, cross, func(r *diagnose.Report) {
				if output != "json" {
					if n++; n > 1 {
						fmt.Fprintln(s.Out)
					}
					r.WriteText(s.Out)
				}
			})
			if err != nil {
				return err
			}
			if output == "json" {
				var v any = c
				if len(args) == 1 {
					v = c.Checks[0]
				}
				if err := writeJSON(s, v); err != nil {
					return err
				}
			} else if c.Cross != nil {
				fmt.Fprintln(s.Out)
				for _, x := range c.Cross {
					fmt.Fprintln(s.Out, x)
				}
			}
			if !c.OK() {
				return exitError{1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.CAFile, "cafile", "", "CA certificate that signed the broker's (default: the system trust store)")
	fl.StringVar(&o.CertFile, "cert", "", "client certificate (mutual TLS)")
	fl.StringVar(&o.KeyFile, "key", "", "client key")
	fl.StringVarP(&o.Username, "username", "u", "", "username")
	pw.add(cmd, false)
	fl.StringVar(&o.TLSVersion, "tls-version", "", "offer only this TLS version: 1.2 or 1.3")
	fl.StringVar(&o.Topic, "topic", "", "round-trip topic (default mqttctl/check/RANDOM; the ACL must allow it)")
	fl.StringVar(&o.PKIDir, "pki", "pki", "pki directory to name in fixes")
	fl.BoolVar(&cross, "cross", false, "with several URLs (a cluster's nodes): prove a message published on each node reaches a subscriber on every other")
	fl.StringVar(&o.FromPage, "from-page", "", "for ws:// and wss://: the URL of the web page that connects; its origin is sent as a browser does (an https page cannot use ws://)")
	addOutputFlag(cmd, &output)
	fl.DurationVar(&timeout, "timeout", 5*time.Second, "time allowed for the whole check (connect, TLS, CONNECT, round trip)")
	return cmd
}
