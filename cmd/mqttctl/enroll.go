package main

import (
	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/pki"
)

// enrollFlags are the flags every enroll command has.
type enrollFlags struct{ pki pkiFlags }

func (f *enrollFlags) dir(s *streams) *pki.Dir { return f.pki.dirFor(s) }

func newEnrollCmd(s *streams) *cobra.Command {
	f := &enrollFlags{}
	cmd := &cobra.Command{
		Use:   "enroll",
		Short: "Let devices enrol themselves: one-time tokens and an EST server (RFC 7030)",
		Long: `enroll lets a fleet of devices get their client certificates on first boot,
without a key ever leaving the device: the factory makes one-time tokens (or
bootstrap certificates, 'mqttctl pki issue bootstrap NAME'), and 'enroll serve'
runs an EST server (RFC 7030) where a device sends its CSR with its token and
gets its certificate, and later renews it with its current certificate.`,
	}
	cmd.PersistentFlags().StringVar(&f.pki.dir, "pki", "pki", "the pki directory")
	cmd.PersistentFlags().StringVar(&f.pki.caPassFile, "ca-password-file", "", "file holding the CA key's password (- for standard input); without it, a terminal prompt when needed")
	tok := &cobra.Command{
		Use:   "token",
		Short: "Make, list and revoke one-time enrolment tokens",
	}
	tok.AddCommand(newEnrollTokenCreateCmd(s, f), newEnrollTokenListCmd(s, f), newEnrollTokenRevokeCmd(s, f))
	cmd.AddCommand(tok, newEnrollServeCmd(s, f))
	return cmd
}
