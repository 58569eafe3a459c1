package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/pki"
)

const batchHelp = `Batch: client --batch FILE issues a client certificate and key for every line
of FILE, all or nothing: a bad line is named FILE:LINE with the reason, and
nothing is written. Comma-separated columns:

  name   the MQTT identity (CN and file name), as for issue client NAME
  san    optional extra names (DNS names or IP addresses), separated by spaces
  ou     optional organisational unit (default "MQTT Clients")

Blank lines and lines starting with # are skipped; a first line naming the
columns (name first, or in another order) is a header. At most 10000 devices
and 1024 bytes a line, UTF-8. For example devices.csv:

  name,san,ou
  sensor-0001
  sensor-0002,sensor-0002.plant7.example,Plant 7
  gw-01,gw-01.example 192.0.2.21

The certificates are kept as clients/NAME.crt and recorded in index.yaml, so
that pki list, renew and revoke work on each device. Without --bundle-dir the
keys are kept beside them (clients/NAME.key), as by issue client NAME.
--bundle-dir DIR (outside the pki directory, one per batch) gets per device
DIR/NAME/: NAME.key (0600), NAME.crt, ca.crt; with --p12 NAME.p12 and its
generated password in NAME.p12.pass (0600); with --format c-header NAME.h
(0600), the CA, certificate and key as C strings mqtt_ca_pem, mqtt_cert_pem,
mqtt_key_pem (and mqtt_client_id) for ESP-IDF and Arduino firmware; and
DIR/manifest.json (name, serial, notAfter, sha256 of each certificate): so
with bundles no device is named ca or manifest.json, in any case. Names that
differ only in case are refused in every batch (a FAT USB stick, or macOS,
would make their files one). With
bundles, each key is in its bundle only, as if the device had sent a CSR: the
CA's machine keeps no copy of the fleet's keys once the bundles are delivered
and deleted (renew re-signs the device's key; pki export needs the key, so
make the p12 now with --p12).`

const batchExample = `  # a batch of devices, with a bundle per device and C headers for the firmware
  mqttctl pki issue client --batch devices.csv --bundle-dir out --format c-header
  # phones (Android, Java): a PKCS#12 file per device, its password in a 0600 file beside it
  printf 'name\nphone-01\nphone-02\n' > phones.csv
  mqttctl pki issue client --batch phones.csv --bundle-dir phones --p12`

// batchFlags are the flags of pki issue client --batch.
type batchFlags struct {
	file, bundleDir, format string
	p12                     bool
}

func (b *batchFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&b.file, "batch", "", "issue a client for every line of this file (name,san,ou; see above)")
	fl.StringVar(&b.bundleDir, "bundle-dir", "", "with --batch: write each device's bundle to DIR/NAME/ and DIR/manifest.json")
	fl.BoolVar(&b.p12, "p12", false, "with --bundle-dir: also NAME.p12 and its generated password NAME.p12.pass")
	fl.StringVar(&b.format, "format", "", "with --bundle-dir: c-header also writes NAME.h (C string literals)")
}

// refuseWithout refuses the batch flags without --batch.
func (b *batchFlags) refuseWithout() error {
	if b.bundleDir != "" || b.p12 || b.format != "" {
		return errors.New("--bundle-dir, --p12 and --format are for --batch FILE; a single client's files are in the pki directory (pki export writes a p12)")
	}
	return nil
}

// batchArgs checks the arguments with --batch: the profile client alone.
func batchArgs(args []string) error {
	switch {
	case len(args) == 0:
		return errors.New("missing the profile: --batch issues clients: mqttctl pki issue client --batch FILE")
	case args[0] != string(pki.ProfileClient):
		return fmt.Errorf("--batch issues client certificates, not %q: mqttctl pki issue client --batch FILE", args[0])
	case len(args) > 1:
		return fmt.Errorf("with --batch the names come from the file: leave out %q", args[1])
	}
	return nil
}

func runIssueBatch(cmd *cobra.Command, s *streams, f *pkiFlags, o pki.IssueOptions, b batchFlags, args []string) error {
	if err := batchArgs(args); err != nil {
		return err
	}
	for _, fl := range []struct{ name, why string }{
		{"host", "give a device's extra names in the file's san column"},
		{"cn", "each device's CN is its name, the file's name column"},
		{"force", "a batch never replaces a certificate; renew a device with pki renew NAME"},
		{"not-before", "a batch is valid from now, for --days"},
		{"not-after", "a batch is valid from now, for --days"},
	} {
		if cmd.Flags().Changed(fl.name) {
			return fmt.Errorf("--%s is not for --batch: %s", fl.name, fl.why)
		}
	}
	if err := refuseDash(cmd, "bundle-dir", "a directory per device"); err != nil {
		return err
	}
	if cmd.Flags().Changed("bundle-dir") && b.bundleDir == "" {
		return errors.New(`--bundle-dir "": give a directory outside the pki directory (without --bundle-dir the keys are kept in the pki directory's clients/)`)
	}
	if b.format != "" && b.format != "c-header" {
		return fmt.Errorf("--format %q: use c-header (the PEM files are always written)", b.format)
	}
	if (b.p12 || b.format != "") && b.bundleDir == "" {
		return errors.New("--p12 and --format go into each device's bundle: add --bundle-dir DIR")
	}
	data, err := fsx.ReadRegular(b.file, pki.MaxBatchFile)
	if err != nil {
		return fmt.Errorf("--batch: %w", err)
	}
	devices, err := pki.ParseBatch(b.file, data)
	if err != nil {
		return err
	}
	bo := pki.BatchOptions{File: b.file, Devices: devices, KeyType: o.KeyType, Days: o.Days,
		BundleDir: b.bundleDir, P12: b.p12, CHeader: b.format == "c-header"}
	if len(devices) >= 200 {
		bo.Progress = func(done, total int) { fmt.Fprintf(s.Err, "made %d of %d keys and certificates\n", done, total) }
	}
	res, err := f.dirFor(s).IssueBatch(bo)
	if err != nil {
		return err
	}
	printBatch(s, f.dir, b, res)
	return nil
}

// printBatch says what a batch wrote and what to do next.
func printBatch(s *streams, pkiDir string, b batchFlags, res *pki.BatchResult) {
	m := res.Manifest
	first := m.Devices[0]
	names := make([]string, 0, 3)
	for _, d := range m.Devices[:min(3, len(m.Devices))] {
		names = append(names, d.Name)
	}
	if len(m.Devices) > 3 {
		names = append(names, "...")
	}
	fmt.Fprintf(s.Out, "Issued %d client certificates from %s (%s), valid until %s\n", len(m.Devices), b.file, strings.Join(names, ", "), first.NotAfter.Format(time.DateOnly))
	if res.ManifestPath == "" {
		fmt.Fprintf(s.Out, "  keys and certificates  %s, NAME.crt (recorded in %s)\n", filepath.Join(pkiDir, filepath.Dir(first.Cert), "NAME.key"), filepath.Join(pkiDir, pki.IndexFile))
	} else {
		fmt.Fprintf(s.Out, "  certificates           %s (recorded in %s; the keys are in the bundles only)\n", filepath.Join(pkiDir, filepath.Dir(first.Cert), "NAME.crt"), filepath.Join(pkiDir, pki.IndexFile))
	}
	if res.ManifestPath != "" {
		files := "NAME.key, NAME.crt, ca.crt"
		if b.p12 {
			files += ", NAME.p12, NAME.p12.pass"
		}
		if b.format == "c-header" {
			files += ", NAME.h"
		}
		fmt.Fprintf(s.Out, "  bundles                %s (%s)\n", filepath.Join(b.bundleDir, "NAME")+"/", files)
		fmt.Fprintf(s.Out, "  manifest               %s\n", res.ManifestPath)
	}
	for _, w := range res.Warnings {
		fmt.Fprintf(s.Out, "warning: %s\n", w)
	}
	if res.ManifestPath == "" {
		fmt.Fprintf(s.Out, "Next: give each device its key and certificate, e.g. mqttctl pki export %s --dir %s --format pem-bundle --out %s\n",
			shellWord(first.Name), shellWord(pkiDir), shellWord(first.Name+".pem"))
		return
	}
	dir := first.Bundle
	fmt.Fprintf(s.Out, "Next: copy %s/NAME/ onto each device, then delete %s (it holds the only copy of each key); try one:\n", b.bundleDir, b.bundleDir)
	fmt.Fprintf(s.Out, "  mosquitto_pub -h BROKER -p 8883 --cafile %s --cert %s --key %s -i %s -t test -m hello\n",
		shellWord(filepath.Join(dir, pki.RootCertFile)), shellWord(filepath.Join(dir, first.Name+".crt")), shellWord(filepath.Join(dir, first.Name+".key")), shellWord(first.Name))
}
