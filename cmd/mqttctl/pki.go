package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

type pkiFlags struct {
	dir          string
	caPassFile   string
	cachedCAPass []byte
}

// dirFor builds a pki.Dir whose CA password comes from --ca-password-file or
// a terminal prompt, asked at most once.
func (f *pkiFlags) dirFor(s *streams) *pki.Dir {
	return &pki.Dir{
		Path: f.dir,
		CAPassword: func() ([]byte, error) {
			if f.cachedCAPass == nil {
				pw, err := readSecret(s, f.caPassFile, "Password for the CA key", false)
				if err != nil {
					return nil, err
				}
				f.cachedCAPass = pw
			}
			return f.cachedCAPass, nil
		},
	}
}

func newPKICmd(s *streams) *cobra.Command {
	f := &pkiFlags{}
	cmd := &cobra.Command{
		Use:   "pki",
		Short: "Make, sign, inspect and check certificates and keys",
		Long: `Certificates for MQTT over TLS: a root CA (optionally an intermediate), broker and
client certificates with separate key usages, CSR signing, inspection and checks.

Defaults: EC P-256 keys, CA for 10 years, leaves for 365 days, broker names as
SANs, client CN = MQTT identity. Keys are unencrypted PKCS#8 with mode 0600 (a
broker starts without a terminal); CA keys can be encrypted. Nothing is
overwritten without --force.`,
	}
	cmd.PersistentFlags().StringVar(&f.dir, "dir", "pki", "the pki directory")
	cmd.PersistentFlags().StringVar(&f.caPassFile, "ca-password-file", "", "file holding the CA key's password (- for standard input); without it, a terminal prompt when needed")
	cmd.AddCommand(newPKIInitCmd(s, f), newPKIIssueCmd(s, f), newPKICSRCmd(s), newPKISignCmd(s, f),
		newPKIInspectCmd(s), newPKIListCmd(s, f), newPKICheckCmd(s, f))
	return cmd
}

func printReport(w io.Writer, rep *pki.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, a := range rep.Actions {
		verb := strings.ToUpper(a.Verb[:1]) + a.Verb[1:]
		fmt.Fprintf(tw, "%s %s\t%s\t%s\n", verb, a.What, a.Path, a.Detail)
	}
	tw.Flush()
	for _, wmsg := range rep.Warnings {
		fmt.Fprintf(w, "warning: %s\n", wmsg)
	}
}

func newPKIInitCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o         pki.InitOptions
		keyType   string
		encryptCA bool
	)
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Create a CA, a broker certificate and client certificates",
		Long: `init creates (or completes) a pki directory:

  ca.crt, ca.key               the root CA that brokers and clients trust
  intermediate.crt/.key        with --intermediate: the CA that signs the leaves
  server.crt, server.key       the broker's certificate (with the chain)
  clients/NAME.crt, NAME.key   one per --client; CN = NAME = the MQTT identity

Run it again to add clients: the CA is reused, existing files are kept, and
only what is missing is issued. --force reissues the broker and named client
certificates with new keys; the CA is never replaced (remove the directory to
start over).`,
		Example: `  # a CA, a broker certificate for localhost, 127.0.0.1, ::1 and this host, two clients
  mqttctl pki init --client sensor-01 --client dashboard

  # a broker reached as mqtt.example.com and 192.0.2.10, with an intermediate CA
  mqttctl pki init --dir /etc/mqttctl/pki --host mqtt.example.com --host 192.0.2.10 --intermediate

  # an encrypted CA key (the password from a file; without the flag you are asked)
  mqttctl pki init --ca-password-file ca.pass --encrypt-ca-key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPositive(cmd, "days", "ca-days"); err != nil {
				return err
			}
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return err
			}
			o.KeyType = kt
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
			fmt.Fprintf(s.Out, "  openssl verify -CAfile %s %s\n", filepath.Join(f.dir, pki.RootCertFile), untrustedArg(f.dir)+filepath.Join(f.dir, pki.ServerCertFile))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyType, "key-type", string(pki.DefaultKeyType), "key type: ec-p256, ec-p384, ed25519, rsa2048, rsa3072 or rsa4096")
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity of broker and client certificates, in days")
	fl.IntVar(&o.CADays, "ca-days", pki.DefaultCADays, "validity of the root CA, in days")
	fl.StringVar(&o.Org, "org", pki.DefaultOrg, "organisation (O) in every subject")
	fl.StringVar(&o.CAName, "ca-name", "", "common name of the root CA (default \"<org> Root CA\")")
	fl.StringArrayVar(&o.Hosts, "host", nil, "a DNS name or IP address of the broker (repeatable; default localhost, 127.0.0.1, ::1 and this host's name)")
	fl.StringArrayVar(&o.Clients, "client", nil, "issue a client certificate with this name as CN and MQTT identity (repeatable)")
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

func newPKIIssueCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o                   pki.IssueOptions
		keyType             string
		notBefore, notAfter string
	)
	cmd := &cobra.Command{
		Use:   "issue server|client|bridge NAME",
		Short: "Issue one broker, client or bridge certificate from the directory's CA",
		Long: `issue adds a certificate and a new key signed by the directory's CA.

  server NAME   servers/NAME.crt (NAME "server" replaces server.crt with --force)
  client NAME   clients/NAME.crt, CN = NAME = the MQTT identity
  bridge NAME   servers/NAME.crt usable as both broker and client`,
		Example: `  mqttctl pki issue client sensor-02
  mqttctl pki issue server edge1 --host edge1.example.com --host 192.0.2.11
  # reissue the default broker certificate with an extra name
  mqttctl pki issue server server --force --host localhost --host mqtt.example.com`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkPositive(cmd, "days"); err != nil {
				return err
			}
			p, err := pki.ParseProfile(args[0])
			if err != nil {
				return err
			}
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return err
			}
			o.Profile, o.Name, o.KeyType = p, args[1], kt
			if o.NotBefore, err = parseTimeFlag("--not-before", notBefore); err != nil {
				return err
			}
			if o.NotAfter, err = parseTimeFlag("--not-after", notAfter); err != nil {
				return err
			}
			rep, err := f.dirFor(s).Issue(o)
			if err != nil {
				return err
			}
			printReport(s.Out, rep)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyType, "key-type", string(pki.DefaultKeyType), "key type: ec-p256, ec-p384, ed25519, rsa2048, rsa3072 or rsa4096")
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity in days")
	fl.StringArrayVar(&o.Hosts, "host", nil, "a DNS name or IP address of the broker (repeatable; servers only)")
	fl.StringVar(&o.CN, "cn", "", "subject common name (default: the client name, or the first host)")
	fl.BoolVar(&o.Force, "force", false, "replace an existing certificate and key")
	fl.StringVar(&notBefore, "not-before", "", "start of validity, RFC 3339 (default now)")
	fl.StringVar(&notAfter, "not-after", "", "end of validity, RFC 3339 (default now + --days)")
	cmd.MarkFlagsMutuallyExclusive("days", "not-after")
	return cmd
}

func parseTimeFlag(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q: use RFC 3339, e.g. 2027-01-31T00:00:00Z", name, v)
	}
	return t, nil
}

func newPKICSRCmd(s *streams) *cobra.Command {
	var (
		o       pki.CSROptions
		keyType string
	)
	cmd := &cobra.Command{
		Use:   "csr NAME",
		Short: "Write a new key and a certificate signing request (what openssl req -new did)",
		Long: `csr writes NAME.key (unencrypted, mode 0600) and NAME.csr in --out-dir. Send the
CSR to whoever runs the CA; they sign it with 'mqttctl pki sign'. The key never
leaves this machine.`,
		Example: `  mqttctl pki csr sensor-07
  mqttctl pki csr broker2 --host broker2.example.com --out-dir /etc/mosquitto/certs`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			kt, err := pki.ParseKeyType(keyType)
			if err != nil {
				return err
			}
			o.Name, o.KeyType = args[0], kt
			keyPath, csrPath, err := pki.NewCSR(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(s.Out, "Wrote key %s (mode 0600) and request %s\n", keyPath, csrPath)
			fmt.Fprintf(s.Out, "Next, on the CA's machine:\n  mqttctl pki sign --csr %s --profile client\n", csrPath)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&keyType, "key-type", string(pki.DefaultKeyType), "key type")
	fl.StringVar(&o.CN, "cn", "", "subject common name (default NAME)")
	fl.StringVar(&o.Org, "org", "", "subject organisation")
	fl.StringArrayVar(&o.Hosts, "host", nil, "DNS names or IP addresses to request (the signer decides)")
	fl.StringVar(&o.OutDir, "out-dir", ".", "directory for NAME.key and NAME.csr")
	fl.BoolVar(&o.Force, "force", false, "replace existing files")
	return cmd
}

func newPKISignCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o       pki.SignOptions
		csrPath string
		profile string
	)
	cmd := &cobra.Command{
		Use:   "sign --csr FILE --profile server|client|bridge",
		Short: "Sign a CSR made anywhere (what openssl x509 -req -CA ... did)",
		Long: `sign issues a certificate for a CSR from any tool (openssl req, mqttctl pki csr,
a device). Only the CSR's public key and subject are used: the extensions come
from --profile and --host, so a CSR that asks to be a CA still gets a leaf, and
the names a server certificate holds are the ones you give.`,
		Example: `  mqttctl pki sign --csr sensor-07.csr --profile client
  mqttctl pki sign --csr broker2.csr --profile server --host broker2.example.com --out broker2.crt`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkPositive(cmd, "days"); err != nil {
				return err
			}
			p, err := pki.ParseProfile(profile)
			if err != nil {
				return err
			}
			o.Profile = p
			csr, err := pki.ReadCSR(csrPath)
			if err != nil {
				return err
			}
			if o.Out == "" {
				o.Out = strings.TrimSuffix(csrPath, filepath.Ext(csrPath)) + ".crt"
			}
			cert, rep, err := f.dirFor(s).SignCSR(csr, o)
			if err != nil {
				return err
			}
			printReport(s.Out, rep)
			fmt.Fprintf(s.Out, "Serial %s, valid until %s\n", pki.FormatSerial(cert), cert.NotAfter.UTC().Format(time.DateOnly))
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&csrPath, "csr", "", "the certificate request (PEM or DER)")
	fl.StringVar(&profile, "profile", "", "server, client or bridge")
	fl.StringArrayVar(&o.Hosts, "host", nil, "broker DNS names or IP addresses (server/bridge; default the CSR's CN)")
	fl.IntVar(&o.Days, "days", pki.DefaultLeafDays, "validity in days")
	fl.StringVar(&o.Out, "out", "", "certificate file to write (default: the CSR's name with .crt)")
	fl.BoolVar(&o.Force, "force", false, "replace an existing certificate file (never a key or a file of the pki directory); allow --days over 825; sign a CN that another valid client certificate has")
	_ = cmd.MarkFlagRequired("csr")
	_ = cmd.MarkFlagRequired("profile")
	return cmd
}

func newPKIInspectCmd(s *streams) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE...",
		Short: "Summarise certificates, CSRs, keys and CRLs",
		Example: `  mqttctl pki inspect pki/server.crt
  mqttctl pki inspect -o json pki/clients/*.crt | jq '.[].not_after'`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: use text or json", output)
			}
			var all []pki.Summary
			for _, a := range args {
				sums, err := pki.InspectFile(a, time.Now())
				if err != nil {
					return err
				}
				all = append(all, sums...)
			}
			if output == "json" {
				return writeJSON(s, all)
			}
			for i, sum := range all {
				if i > 0 {
					fmt.Fprintln(s.Out)
				}
				sum.WriteText(s.Out)
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newPKIListCmd(s *streams, f *pkiFlags) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List every certificate issued from the directory",
		Example: `  mqttctl pki list --dir pki`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !fileExistsCLI(filepath.Join(f.dir, pki.RootCertFile)) {
				return fmt.Errorf("no CA in %s: run 'mqttctl pki init --dir %s' first", f.dir, f.dir)
			}
			idx, err := pki.LoadIndex(f.dir)
			if err != nil {
				return err
			}
			if idx.Rebuilt {
				fmt.Fprintf(s.Err, "note: %s was missing; listed from the certificates on disk (the next pki command that writes saves it)\n", filepath.Join(f.dir, pki.IndexFile))
			}
			entries := pki.SortedEntries(idx)
			now := time.Now()
			if output == "json" {
				rows := make([]map[string]any, 0, len(entries))
				for _, e := range entries {
					rows = append(rows, map[string]any{"name": e.Name, "profile": e.Profile, "serial": e.Serial, "subject": e.Subject,
						"not_after": e.NotAfter, "cert": e.Cert, "status": e.StatusAt(now)})
				}
				return writeJSON(s, rows)
			} else if output != "text" {
				return fmt.Errorf("-o %q: use text or json", output)
			}
			tw := tabwriter.NewWriter(s.Out, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tPROFILE\tSERIAL\tNOT AFTER\tSTATUS\tFILE")
			for _, e := range entries {
				serial := e.Serial
				if len(serial) > 23 {
					serial = serial[:23] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Name, e.Profile, serial, e.NotAfter.Format(time.DateOnly), e.StatusAt(now), e.Cert)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	return cmd
}

func newPKICheckCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o      pki.CheckOptions
		output string
		quiet  bool
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Check the whole directory: chains, keys, usages, expiry, subjects, modes, host names",
		Long: `check reads every certificate and key in the directory and reports, one line each:
chains that do not verify, keys that do not match their certificate, usages that
do not fit (a client certificate that could act as a broker), certificates that
expired or expire within 30 days, identical subjects, files others can read, and
--host names the broker certificate lacks. Exit status 1 when anything is an error.`,
		Example: `  mqttctl pki check
  mqttctl pki check --dir /etc/mqttctl/pki --host mqtt.example.com --host 192.0.2.10`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "text" && output != "json" {
				return fmt.Errorf("-o %q: use text or json", output)
			}
			d := f.dirFor(s)
			if f.caPassFile == "" {
				d.CAPassword = nil // never prompt during a check
			}
			findings, err := d.Check(o)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(s, findings); err != nil {
					return err
				}
			} else {
				errs, warns := 0, 0
				for _, fd := range findings {
					switch fd.Level {
					case pki.LevelError:
						errs++
					case pki.LevelWarn:
						warns++
					case pki.LevelOK:
						if quiet {
							continue
						}
					}
					fmt.Fprintln(s.Out, fd)
				}
				fmt.Fprintf(s.Out, "%d errors, %d warnings\n", errs, warns)
			}
			if pki.HasErrors(findings) {
				return exitError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringArrayVar(&o.Hosts, "host", nil, "a name clients dial; it must be among the broker certificate's SANs (repeatable)")
	cmd.Flags().StringVar(&o.Server, "server", "server", "which broker certificate --host is checked against (server, or a name under servers/)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "output format: text or json")
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "print only warnings and errors")
	return cmd
}

// writeJSON prints v as indented JSON, for -o json.
func writeJSON(s *streams, v any) error {
	enc := json.NewEncoder(s.Out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
