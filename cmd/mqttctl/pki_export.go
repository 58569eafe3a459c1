package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

func newPKIExportCmd(s *streams, f *pkiFlags) *cobra.Command {
	var (
		o      pki.ExportOptions
		format string
		pwFile string
	)
	cmd := &cobra.Command{
		Use:   "export NAME",
		Short: "Write a key, certificate and chain as PKCS#12 (Android, Java) or one PEM file",
		Long: `export writes a client's (or broker's) key and certificate with its chain to one
file, mode 0600, what openssl pkcs12 -export did.

  --format p12         PKCS#12 with the key, the certificate and the chain up to the
                       root CA (so an app can also trust the broker). Encrypted with
                       AES-256-CBC and PBKDF2-HMAC-SHA-256 (OpenSSL 1.1.1+, Java 12+,
                       Android 12+); --legacy uses 3DES and a SHA-1 MAC for Java 8
                       and older Android. The password comes from --password-file
                       (- for standard input) or a terminal prompt, never from argv.
  --format pem-bundle  the certificate, its intermediates and the key in one PEM file
                       (for clients that take one file for --cert and --key).

A certificate signed from a CSR has its key on the device: export it there.`,
		Example: `  (umask 077; openssl rand -hex 16 > sensor-07.pass)
  mqttctl pki export sensor-07 --format p12 --out sensor-07.p12 --password-file sensor-07.pass
  mqttctl pki export sensor-07 --format p12 --legacy --out sensor-07-java8.p12 --password-file - < sensor-07.pass
  mqttctl pki export sensor-07 --format pem-bundle --out sensor-07.pem
  keytool -list -storetype PKCS12 -keystore sensor-07.p12 -storepass:file sensor-07.pass`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			o.Name = args[0]
			if err := refuseDash(cmd, "out", "a file of mode 0600 that holds a private key"); err != nil {
				return err
			}
			if o.Format, err = pki.ParseExportFormat(format); err != nil {
				return fmt.Errorf("--format %w", err)
			}
			if o.Format != pki.FormatP12 && (o.Legacy || pwFile != "") {
				return fmt.Errorf("--legacy and --password-file are for --format p12; a pem-bundle is not encrypted (it is written with mode 0600)")
			}
			if o.Out == "" {
				o.Out = o.Name + map[pki.ExportFormat]string{pki.FormatP12: ".p12", pki.FormatPEMBundle: ".pem"}[o.Format]
			}
			if o.Format == pki.FormatP12 {
				if o.Password, err = readSecret(s, pwFile, "Password for "+o.Out, true); err != nil {
					return err
				}
			}
			info, err := f.dirFor(s).Export(o)
			if err != nil {
				return err
			}
			certs := fmt.Sprintf("%d certificates", info.Certs)
			if info.Certs == 1 {
				certs = "1 certificate"
			}
			fmt.Fprintf(s.Out, "Wrote %s (%s, mode 0600): %s, serial %s, valid until %s, %s\n",
				info.Path, info.Format, info.Subject, info.Serial, info.NotAfter.Format(time.DateOnly), certs)
			for _, w := range info.Warnings {
				fmt.Fprintf(s.Out, "warning: %s\n", w)
			}
			if info.Format == pki.FormatP12 {
				fmt.Fprintf(s.Out, "Check it: openssl pkcs12 -info -noout -in %s\n", info.Path)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&format, "format", string(pki.FormatP12), "p12 or pem-bundle")
	fl.StringVar(&o.Out, "out", "", "the file to write (default NAME.p12 or NAME.pem)")
	fl.StringVar(&pwFile, "password-file", "", "read the p12 password from the first line of FILE (- for standard input); without it, a terminal prompt")
	fl.BoolVar(&o.Legacy, "legacy", false, "3DES/SHA-1 encryption for Java 8 and old Android (weak: only when the default cannot be read)")
	fl.BoolVar(&o.Force, "force", false, "replace an existing output file")
	return cmd
}
