package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

func newConfigMosquittoCmd(s *streams) *cobra.Command {
	var (
		o     confgen.MosquittoOptions
		out   string
		group string
		force bool
	)
	cmd := &cobra.Command{
		Use:   "mosquitto --pki DIR --mode tls|mtls",
		Short: "Write a complete mosquitto.conf for one-way or mutual TLS",
		Long: `mosquitto writes a mosquitto.conf for the certificates in --pki:

  --mode mtls   clients present a certificate from the CA (require_certificate);
                the certificate's CN is the username (use_identity_as_username)
  --mode tls    the broker proves its identity; clients log in with a password

File paths are absolute. Started as root, mosquitto drops to the mosquitto user
before it reads certificates, keys, password and ACL files; when run as root,
this command gives the mosquitto group read access to exactly those files (keys
stay unreadable by others) and says so.`,
		Example: `  mqttctl config mosquitto --pki pki --mode mtls --out /etc/mosquitto/conf.d/mqttctl.conf
  mqttctl config mosquitto --pki pki --mode tls --passwd passwd --acl acl --listen 0.0.0.0:8883 --plain 127.0.0.1:1883
  # a site broker that forwards its sensors to a central broker and takes commands from it
  mqttctl pki issue bridge site1 --host site1.example.com
  mqttctl config mosquitto --pki pki --mode mtls --bridge-to central.example.com:8883 --bridge-name site1 \
    --bridge-topic 'sensors/# out 1 "" site1/' --bridge-topic 'cmd/# in 1 "" site1/'
  # browsers too: wss://broker.example.com:8884/mqtt
  mqttctl config mosquitto --pki pki --mode tls --passwd passwd --websockets 0.0.0.0:8884`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			madeData := ""
			var err error
			if !cmd.Flags().Changed("data-dir") {
				if o.DataDir, err = defaultDataDir(out); err != nil {
					return err
				}
			}
			c, err := confgen.GenerateMosquitto(o)
			if err != nil {
				return err
			}
			data := c.Marshal()
			if out == "" || out == "-" {
				_, err := s.Out.Write(data)
				return err
			}
			if old, err := os.ReadFile(out); err == nil && force && bytes.Contains(old, []byte("-----BEGIN ")) {
				return fmt.Errorf("%s holds PEM data (a key or a certificate); --force replaces only a config file: choose another output", out)
			}
			if err := fsx.WriteFile(out, data, 0o644, force); err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Wrote %s (%s, listener port %d)\n", out, o.Mode, c.Listener[0].Port)
			if o.DataDir != systemDataDir && o.DataDir != "" {
				if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
					return fmt.Errorf("persistence directory: %w", err)
				}
				madeData = o.DataDir
			}
			if madeData != "" && !cmd.Flags().Changed("data-dir") {
				fmt.Fprintf(s.Out, "Persistence in %s (not root: %s belongs to the mosquitto account; --data-dir DIR for another)\n", madeData, systemDataDir)
			}
			r, _ := c.Resolve()
			if group != "none" && os.Geteuid() == 0 {
				a, err := confgen.GrantBrokerAccess(r, group, o.PKIDir)
				if err != nil {
					return err
				}
				if a.NoGroup {
					fmt.Fprintf(s.Out, "No group %s here: when mosquitto runs as another user, give it read access to: %v\n", group, r.Files())
				} else {
					fmt.Fprintf(s.Out, "Gave group %s read access (mosquitto drops to that user before reading them):\n", group)
				}
				for _, l := range a.Changes {
					fmt.Fprintln(s.Out, "  "+l)
				}
				for _, w := range a.Warnings {
					fmt.Fprintln(s.Out, "warning: "+w)
				}
			}
			fmt.Fprintf(s.Out, "Next:\n  mqttctl config check %s\n  mosquitto -c %s\n", out, out)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.PKIDir, "pki", "pki", "pki directory (ca.crt, server.crt, server.key)")
	addModeFlag(cmd, &o.Mode, "mtls", "tls (one-way, passwords) or mtls (client certificates)")
	fl.StringVar(&o.PasswordFile, "passwd", "", "password file (required for --mode tls)")
	fl.StringVar(&o.ACLFile, "acl", "", "ACL file")
	fl.StringVar(&o.Listen, "listen", "0.0.0.0:8883", "TLS listener address")
	fl.StringVar(&o.Plain, "plain", "", "also a plain MQTT listener, bound to one address (e.g. 127.0.0.1:1883)")
	fl.StringVar(&o.BridgeTo, "bridge-to", "", "also a bridge to the broker at HOST:PORT over mutual TLS (its certificate must name HOST)")
	fl.StringVar(&o.BridgeName, "bridge-name", "", "the bridge's name; its certificate is servers/NAME.crt in --pki (mqttctl pki issue bridge NAME)")
	fl.StringArrayVar(&o.BridgeTopics, "bridge-topic", nil, "a bridged topic: 'PATTERN [out|in|both [QOS [LOCAL_PREFIX REMOTE_PREFIX]]]' (repeatable)")
	fl.StringVar(&o.WebSockets, "websockets", "", "also a wss (MQTT over WebSocket, for browsers) listener, [ADDR]:PORT, same certificate and authentication")
	addIdentityFlag(cmd, &o.Identity, "mtls username: cn (use_identity_as_username), subject (use_subject_as_username) or none (passwords)")
	fl.StringVar(&o.DataDir, "data-dir", "", "persistence_location (default: "+systemDataDir+" as root, else mosquitto-data/ beside --out)")
	fl.StringVar(&out, "out", "", "file to write (default or -: standard output)")
	// -o FILE was this command's flag before -o meant the output format
	// everywhere; it still works, with a note.
	fl.StringVarP(&out, "output", "o", "", "file to write")
	_ = fl.MarkDeprecated("output", "use --out FILE (-o is the output format in every other command)")
	cmd.MarkFlagsMutuallyExclusive("out", "output")
	addBrokerGroupFlag(cmd, &group, "mosquitto")
	fl.BoolVar(&force, "force", false, "replace an existing output file")
	return cmd
}

// systemDataDir is where mosquitto keeps its database on Debian, owned by
// the mosquitto account it drops to when started as root.
const systemDataDir = "/var/lib/mosquitto/"

// defaultDataDir is the persistence_location a config gets without
// --data-dir: the system's as root; otherwise one this account can write,
// beside the config (a newcomer who is not root cannot write the system's).
func defaultDataDir(out string) (string, error) {
	if os.Geteuid() == 0 {
		return systemDataDir, nil
	}
	dir := "."
	if out != "" && out != "-" {
		dir = filepath.Dir(out)
	}
	abs, err := filepath.Abs(filepath.Join(dir, "mosquitto-data"))
	if err != nil {
		return "", err
	}
	return abs + "/", nil
}
