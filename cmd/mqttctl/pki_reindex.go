package main

import (
	"github.com/spf13/cobra"
)

func newPKIReindexCmd(s *streams, f *pkiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "reindex",
		Short: "Record in index.yaml the certificates of the directory it does not list",
		Long: `reindex makes index.yaml list every certificate file of the directory again: a
certificate the directory's CA issued that no entry records (a renewal or issue
that an older mqttctl was stopped in the middle of, or one signed outside
mqttctl) is recorded, and an entry whose certificate moved to another file is
pointed at it. Every entry, revocation and the CRL number are kept, and the
revocations in crl.pem are taken too. A file it cannot account for (another CA's
certificate, a copy of a listed one) is named with what to do, and nothing is
written. Other pki commands refuse to run until the index lists every file, so
that no certificate stays valid without a way to revoke it by name.`,
		Example: `  mqttctl pki reindex
  mqttctl pki reindex --dir /etc/mqttctl/pki && mqttctl pki list --dir /etc/mqttctl/pki`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := f.dirFor(s).Reindex()
			if err != nil {
				return err
			}
			printReport(s.Out, rep)
			return nil
		},
	}
}
