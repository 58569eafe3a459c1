package loadgen_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/broker/brokertest"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/loadgen"
)

func TestLoadAgainstBundledBroker(t *testing.T) {
	port := testutil.FreePort(t)
	c, err := confgen.Parse([]byte(fmt.Sprintf("allow_anonymous true\nlistener %d 127.0.0.1\n", port)), "t")
	if err != nil {
		t.Fatal(err)
	}
	brokertest.Start(t, c, nil, broker.Options{})
	tg := loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", port)}
	hs := loadgen.Handshakes(context.Background(), tg, 2, 300*time.Millisecond, false)
	if hs.Count == 0 || hs.Errors != 0 {
		t.Fatalf("handshakes: %+v", hs)
	}
	for _, q := range []byte{0, 1} {
		res, err := loadgen.PubSub(context.Background(), tg, loadgen.PubSubOptions{Publishers: 2, QoS: q, Size: 100, Duration: 300 * time.Millisecond, Warmup: 100 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Received == 0 {
			t.Fatalf("QoS %d: nothing received", q)
		}
		t.Logf("QoS %d: %.0f msg/s", q, res.PerSecond())
	}
	if _, err := loadgen.PubSub(context.Background(), loadgen.Target{Addr: "127.0.0.1:1"}, loadgen.PubSubOptions{Duration: time.Millisecond}); err == nil {
		t.Fatal("no error for a closed port")
	}
}
