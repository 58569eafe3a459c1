package pki

import (
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkIssueBatch1000 issues 1000 P-256 clients in one batch, with a
// bundle directory per device and the manifest (the goal of issue 18:
// well under 2 s on a 2-core machine; scripts/bench-batch.sh compares it
// with the openssl loop).
func BenchmarkIssueBatch1000(b *testing.B) {
	devices := make([]BatchDevice, 1000)
	for i := range devices {
		devices[i] = BatchDevice{Line: i + 1, Name: fmt.Sprintf("sensor-%04d", i+1)}
	}
	for b.Loop() {
		b.StopTimer()
		base := b.TempDir()
		d := &Dir{Path: filepath.Join(base, "pki")}
		if _, err := d.Init(InitOptions{Hosts: []string{"localhost"}}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, err := d.IssueBatch(BatchOptions{File: "devices.csv", Devices: devices, BundleDir: filepath.Join(base, "out")}); err != nil {
			b.Fatal(err)
		}
	}
}
