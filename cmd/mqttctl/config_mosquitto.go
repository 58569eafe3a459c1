package main

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
)

func newConfigMosquittoCmd(s *streams) *cobra.Command {
	var (
		o      confgen.MosquittoOptions
		out    string
		group  string
		force  bool
		target confgen.MosquittoTarget
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
stay unreadable by others) and says so.

--target is the mosquitto version (default: the one 'mosquitto -h' reports for
the mosquitto on PATH, else 2.0). For 2.1 the file has no option 2.1 deprecates:
no per_listener_settings, the password and ACL files through its password-file
and acl-file plugins (from --plugin-dir), websockets_origin for --http-origin,
and a pid_file (so 'mqttctl reload mosquitto -c FILE' finds the broker); as root,
the password and ACL files are given to the mosquitto user, as 2.1 wants.`,
		Example: `  mqttctl config mosquitto --pki pki --mode mtls --out /etc/mosquitto/conf.d/mqttctl.conf
  mqttctl config mosquitto --pki pki --mode tls --passwd passwd --acl acl --listen 0.0.0.0:8883 --plain 127.0.0.1:1883
  # a site broker that forwards its sensors to a central broker and takes commands from it
  mqttctl pki issue bridge site1 --host site1.example.com
  mqttctl config mosquitto --pki pki --mode mtls --bridge-to central.example.com:8883 --bridge-name site1 \
    --bridge-topic 'sensors/# out 1 "" site1/' --bridge-topic 'cmd/# in 1 "" site1/'
  # browsers too: wss://broker.example.com:8884/mqtt
  mqttctl config mosquitto --pki pki --mode tls --passwd passwd --websockets 0.0.0.0:8884
  # for mosquitto 2.1, browsers from one page only
  mqttctl config mosquitto --target 2.1 --pki pki --mode tls --passwd passwd --websockets 0.0.0.0:8884 \
    --http-origin https://app.example.com`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			madeData := ""
			var err error
			if !cmd.Flags().Changed("data-dir") {
				if o.DataDir, err = defaultDataDir(out); err != nil {
					return err
				}
			}
			from, err := targetDefaults(cmd, target, &o, out)
			if err != nil {
				return err
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
			fmt.Fprintf(s.Out, "Wrote %s (%s, listener port %d, for mosquitto %s: %s)\n", out, o.Mode, c.Listener[0].Port, o.Target, from)
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
			return mosquittoNext(s, o, r, out, group)
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
	fl.Var(mosquittoTargetFlag{&target}, "target", "the mosquitto version the file is for: 2.0 or 2.1 (default: the version of the mosquitto on PATH, else 2.0)")
	fl.StringVar(&o.PluginDir, "plugin-dir", "", "2.1: the directory of mosquitto_password_file.so and mosquitto_acl_file.so (default: beside the mosquitto on PATH, else the file name alone, for the system's library path)")
	fl.StringVar(&o.PIDFile, "pid-file", "", "pid_file, for 'mqttctl reload mosquitto' (none: no pid_file; default for 2.1: "+confgen.DebianPIDFile+" as root, else mosquitto.pid beside --out; for 2.0: none)")
	fl.StringArrayVar(&o.Origins, "http-origin", nil, "with --websockets: the page origin (https://host[:port]) browsers may connect from (repeatable; default any)")
	return cmd
}

// targetDefaults sets the target (--target, else the version of the
// mosquitto on PATH) and, for 2.1, the plugin directory and pid file the
// flags leave out; it returns where the target came from.
func targetDefaults(cmd *cobra.Command, target confgen.MosquittoTarget, o *confgen.MosquittoOptions, out string) (string, error) {
	var err error
	from := ""
	if o.Target, from, err = mosquittoTarget(cmd, target); err != nil {
		return "", err
	}
	if o.Target == confgen.Mosquitto21 {
		if !cmd.Flags().Changed("plugin-dir") {
			o.PluginDir = confgen.FindMosquittoPluginDir()
		}
		if !cmd.Flags().Changed("pid-file") {
			if o.PIDFile, err = confgen.MosquittoPIDFile(out, debianMosquittoConf, os.Geteuid() == 0); err != nil {
				return "", err
			}
		}
	}
	if o.PIDFile == "none" {
		o.PIDFile = ""
	} else if o.PIDFile != "" {
		if o.PIDFile, err = filepath.Abs(o.PIDFile); err != nil {
			return "", err
		}
	}
	if o.Target != confgen.Mosquitto21 && cmd.Flags().Changed("plugin-dir") {
		return "", fmt.Errorf("--plugin-dir: mosquitto 2.0 reads password and ACL files without plugins: give --target 2.1, or leave --plugin-dir out")
	}
	return from, nil
}

// debianMosquittoConf is Debian's main mosquitto.conf: it has a pid_file and
// includes /etc/mosquitto/conf.d.
const debianMosquittoConf = "/etc/mosquitto/mosquitto.conf"

// mosquittoNext does, as root, what the target wants of the files beyond
// group access, and prints the next steps.
func mosquittoNext(s *streams, o confgen.MosquittoOptions, r *confgen.Resolved, out, group string) error {
	owner := ""
	if group != "none" && os.Geteuid() == 0 {
		owner = group
	}
	tf, err := confgen.PrepareTargetFiles(o, r, owner, out != "" && out != "-")
	if err != nil {
		return err
	}
	if len(tf.Changes) > 0 {
		fmt.Fprintf(s.Out, "For mosquitto %s (as user %s):\n", o.Target, cmp.Or(owner, "this one"))
	}
	for _, l := range tf.Changes {
		fmt.Fprintln(s.Out, "  "+l)
	}
	if o.Target != confgen.Mosquitto21 && len(o.Origins) > 0 {
		fmt.Fprintln(s.Out, "Note: mosquitto 2.0 does not check the Origin: the '# mqttctl: http_origin' lines are for mqttctl serve (2.1 checks websockets_origin: --target 2.1)")
	}
	check := "mqttctl config check "
	if o.Target == confgen.Mosquitto21 {
		check += "--target mosquitto-2.1 "
	}
	next := append(tf.Commands, check+out, "mosquitto -c "+out)
	if o.PIDFile != "" {
		next = append(next, "mqttctl reload mosquitto -c "+out+"   # after a certificate, CRL, password or ACL file changes")
	}
	fmt.Fprintln(s.Out, "Next:\n  "+strings.Join(next, "\n  "))
	return nil
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
