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
			if cross && len(args) < 2 {
				return errors.New("--cross needs two or more broker URLs (the cluster's nodes)")
			}
			ok := true
			var reports []*diagnose.Report
			for i, u := range args {
				o.URL = u
				r, err := diagnose.Check(cmd.Context(), o)
				if err != nil {
					return err
				}
				reports = append(reports, r)
				ok = ok && r.OK()
				if output != "json" {
					if i > 0 {
						fmt.Fprintln(s.Out)
					}
					r.WriteText(s.Out)
				}
			}
			var crossed []diagnose.CrossResult
			if cross && ok {
				res, err := diagnose.Cross(cmd.Context(), o, args)
				if err != nil {
					return err
				}
				crossed = res
				if output != "json" {
					fmt.Fprintln(s.Out)
				}
				for _, c := range res {
					ok = ok && c.OK
					if output != "json" {
						if c.OK {
							fmt.Fprintf(s.Out, "OK: published on %s, received on %s\n", c.From, c.To)
						} else {
							fmt.Fprintf(s.Out, "PROBLEM: published on %s, never received on %s: the nodes do not form one cluster (check its status: rabbitmqctl cluster_status), or the ACL lets the message through on one node only\n", c.From, c.To)
						}
					}
				}
			}
			if output == "json" {
				var v any = reports[0]
				if len(args) > 1 {
					v = map[string]any{"checks": reports, "cross": crossed}
				}
				if err := writeJSON(s, v); err != nil {
					return err
				}
			}
			if !ok {
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
