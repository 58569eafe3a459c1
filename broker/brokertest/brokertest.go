// Package brokertest starts the bundled broker in-process for tests (apart
// from testutil, which the pki tests use and which must not import broker).
package brokertest

import (
	"io"
	"log/slog"
	"testing"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
)

// StartBroker runs the bundled broker in-process on c until the test ends,
// logging to log (nil: nowhere).
func Start(t testing.TB, c *confgen.Config, log io.Writer, o broker.Options) *broker.Broker {
	t.Helper()
	r, ds := c.Resolve()
	if confgen.HasErrors(ds) {
		t.Fatal(ds)
	}
	if log == nil {
		log = io.Discard
	}
	o.Logger = slog.New(slog.NewTextHandler(log, nil))
	b, err := broker.New(r, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}
