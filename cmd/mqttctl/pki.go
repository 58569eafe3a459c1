package main

import (
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
		newPKIInspectCmd(s), newPKIListCmd(s, f), newPKICheckCmd(s, f), newPKIRevokeCmd(s, f), newPKICRLCmd(s, f), newPKIRenewCmd(s, f),
		newPKIExportCmd(s, f), newPKIReindexCmd(s, f))
	return cmd
}
