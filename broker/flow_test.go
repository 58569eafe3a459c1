package broker_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/internal/testutil"
	"github.com/mqttctl/mqttctl/loadgen"
)

// TestFanOutLosesNoQoS1: 4 publishers sending as fast as they are
// acknowledged to 4 subscribers fill the subscribers' queues; the
// publishers then wait instead of the broker dropping acknowledged QoS 1
// messages. (Counted, not timed: every acknowledged message must arrive.)
func TestFanOutLosesNoQoS1(t *testing.T) {
	port := testutil.FreePort(t)
	_, log := start(t, fmt.Sprintf("allow_anonymous true\nmax_queued_messages 1000\nlistener %d 127.0.0.1\n", port), 5*time.Second)
	res, err := loadgen.PubSub(context.Background(), loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", port)},
		loadgen.PubSubOptions{Publishers: 4, Subscribers: 4, QoS: 1, Size: 64, Duration: time.Second, Window: 256})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.0f msg/s, %d acknowledged, %d delivered, %d lost", res.PerSecond(), res.Acked, res.Delivered, res.Lost)
	if res.Acked == 0 || res.Lost != 0 {
		t.Fatalf("%d of %d acknowledged QoS 1 messages (x4 subscribers) were lost\n%s", res.Lost, res.Acked, log.String())
	}
}

// TestSlowAcknowledgerLosesNoQoS1: a subscriber that keeps reading but
// acknowledges in batches every 20 ms reaches max_queued_messages
// unacknowledged messages; publishers then wait for it instead of the
// engine dropping acknowledged messages ("client store quota reached").
func TestSlowAcknowledgerLosesNoQoS1(t *testing.T) {
	port := testutil.FreePort(t)
	_, log := start(t, fmt.Sprintf("allow_anonymous true\nmax_queued_messages 100\nlistener %d 127.0.0.1\n", port), 5*time.Second)
	res, err := loadgen.PubSub(context.Background(), loadgen.Target{Addr: fmt.Sprintf("127.0.0.1:%d", port)},
		loadgen.PubSubOptions{Publishers: 4, Subscribers: 1, QoS: 1, Size: 64, Duration: time.Second, Window: 64, AckEvery: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%.0f msg/s, %d acknowledged, %d delivered, %d lost", res.PerSecond(), res.Acked, res.Delivered, res.Lost)
	if res.Acked == 0 || res.Lost != 0 {
		t.Fatalf("%d of %d acknowledged QoS 1 messages were lost\n%s", res.Lost, res.Acked, log.String())
	}
}
