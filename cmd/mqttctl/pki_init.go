package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKIInitCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o         pki.InitOptions
		encryptCA bool
		nodes     []string
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a CA, a broker certificate and client certificates",
		Long: `init creates (or completes) a pki directory:

  ca.crt, ca.key               the root CA that brokers and clients trust
  intermediate.crt/.key        with --intermediate: the CA that signs the leaves
  server.crt, server.key       the broker's certificate (with the chain)
  clients/NAME.crt, NAME.key   one per --client; CN = NAME = the MQTT identity
  servers/NODE.crt, NODE.key   one per --node, for the brokers of a cluster
                               (CN NODE; names NODE and its hosts);
                               with --node and no --host, no server.crt

Run it again to add clients: the CA is reused, existing files are kept, and
only what is missing is issued. --force reissues the broker and named client
certificates with new keys; the CA is never replaced (remove the directory to
start over).`,
		Example: `  # a CA, a broker certificate for localhost, 127.0.0.1, ::1 and this host, two clients
  mqttctl pki init --client sensor-01 --client dashboard

  # a broker reached as mqtt.example.com and 192.0.2.10, with an intermediate CA
  mqttctl pki init --dir /etc/mqttctl/pki --host mqtt.example.com --host 192.0.2.10 --intermediate

  # one certificate per node of a two-node cluster (then: mqttctl config rabbitmq)
  mqttctl pki init --node rabbit1=mqtt1.example.com --node rabbit2=mqtt2.example.com,192.0.2.12 --client sensor-01

  # an encrypted CA key (the password from a file; without the flag you are asked)
  mqttctl pki init --ca-password-file ca.pass --encrypt-ca-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPositive(cmd, "days", "ca-days"); err != nil {
				return err
			}
			for _, n := range nodes {
				name, hosts, ok := strings.Cut(n, "=")
				node := pki.Node{Name: name}
				if ok { // "NAME=" is an empty host, refused by pki
					node.Hosts = strings.Split(hosts, ",")
				}
				o.Nodes = append(o.Nodes, node)
			}
			if encryptCA || f.caPassFile != "" {
				if fileExistsCLI(filepath.Join(f.dir, pki.RootKeyFile)) && !o.Intermediate {
					// existing CA: the password is only needed to read it
				} else {
					pw, err := readSecret(s, f.caPassFile, "Password for the new CA key", true)
					if err != nil {
						return err
					}
					o.CAKeyPassword = pw
					f.cachedCAPass = pw
				}
			}
			d := f.dirFor(s)
			rep, err := d.Init(o)
			if err != nil {
				return err
			}
			printReport(s.Out, rep)
			if !rep.Changed() {
				fmt.Fprintln(s.Out, "\nNothing to do: every file exists (add --client NAME to issue more, --force to reissue leaves).")
				return nil
			}
			fmt.Fprintf(s.Out, "\nKeys are in %s (mode 0600). Next:\n", f.dir)
			fmt.Fprintf(s.Out, "  mqttctl pki check --dir %s\n", f.dir)
			leaf := filepath.Join(f.dir, pki.ServerCertFile)
			if !o.IssuesServer() {
				leaf = filepath.Join(f.dir, pki.ServersDir, o.Nodes[0].Name+".crt")
			}
			fmt.Fprintf(s.Out, "  openssl verify -CAfile %s %s\n", filepath.Join(f.dir, pki.RootCertFile), untrustedArg(f.dir)+leaf)
			return nil
		},
	}
	fl := cmd.Flags()
	addKeyTypeFlag(cmd, &o.KeyType)
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity of broker and client certificates, in days")
	fl.IntVar(&o.CADays, "ca-days", pki.DefaultCADays, "validity of the root CA, in days")
	fl.StringVar(&o.Org, "org", pki.DefaultOrg, "organisation (O) in every subject")
	fl.StringVar(&o.CAName, "ca-name", "", "common name of the root CA (default \"<org> Root CA\")")
	fl.StringArrayVar(&o.Hosts, "host", nil, "a DNS name or IP address of the broker (repeatable; default localhost, 127.0.0.1, ::1 and this host's name)")
	fl.StringArrayVar(&o.Clients, "client", nil, "issue a client certificate with this name as CN and MQTT identity (repeatable)")
	fl.StringArrayVar(&nodes, "node", nil, "a cluster node: NAME or NAME=HOST[,HOST...]; issues servers/NAME.crt (repeatable)")
	fl.BoolVar(&o.Intermediate, "intermediate", false, "add an intermediate CA that signs the leaves (server.crt then holds the chain)")
	fl.BoolVar(&o.Force, "force", false, "reissue existing broker and client certificates with new keys")
	fl.BoolVar(&encryptCA, "encrypt-ca-key", false, "encrypt new CA keys (password from --ca-password-file or a prompt)")
	return cmd
}

func untrustedArg(dir string) string {
	p := filepath.Join(dir, pki.IntermediateCertFile)
	if fileExistsCLI(p) {
		return "-untrusted " + p + " "
	}
	return ""
}

func fileExistsCLI(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
