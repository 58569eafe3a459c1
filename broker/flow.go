package broker

import (
	"fmt"
	"reflect"
	"sync/atomic"
	"time"
	"unsafe"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// Flow control: what happens when a subscriber falls behind.
//
// Every client has a queue of OutboundQueue packets waiting to be written
// (the engine drops what does not fit), and at most max_queued_messages
// QoS 1/2 messages it has not acknowledged (the engine drops beyond). A
// QoS 1 or 2 message for a connected subscriber whose queue is full, or
// whose unacknowledged messages are near that quota, makes the publisher
// wait (it stops reading that publisher's connection, so TCP slows the
// publisher down) until the subscriber has made room, for at most
// FlowWait. A subscriber that reads nothing for longer than that loses the
// messages that do not fit, as mosquitto drops what exceeds
// max_queued_messages. QoS 0 messages never wait: they are dropped when
// the queue is full (mosquitto drops QoS 0 first, too). Messages for a
// disconnected persistent session are kept up to max_queued_messages.
type flowHook struct {
	mqtt.HookBase
	b *Broker
}

// FlowWait bounds how long a publisher waits for a full subscriber queue.
const FlowWait = time.Second

// outboundQtyOffset is where the engine keeps the number of packets in a
// client's outbound queue (mqtt.ClientState.outboundQty, an int32 it
// updates atomically). The engine does not export it; checkFlowLayout
// makes sure it is where this code reads it.
var outboundQtyOffset = func() uintptr {
	cs, _ := reflect.TypeOf(mqtt.Client{}).FieldByName("State")
	f, ok := cs.Type.FieldByName("outboundQty")
	if !ok || f.Type.Kind() != reflect.Int32 {
		return 0
	}
	return cs.Offset + f.Offset
}()

// checkFlowLayout fails when the engine's layout is not the one flow
// control reads (a new engine version): better not to start than to
// lose QoS 1 messages silently.
func checkFlowLayout() error {
	if outboundQtyOffset == 0 {
		return fmt.Errorf("internal: the MQTT engine's client state has no int32 outboundQty; flow control cannot work with this engine version")
	}
	return nil
}

// outboundQty is the number of packets waiting in cl's outbound queue.
func outboundQty(cl *mqtt.Client) int32 {
	return atomic.LoadInt32((*int32)(unsafe.Add(unsafe.Pointer(cl), outboundQtyOffset)))
}

func (h *flowHook) ID() string { return "mqttctl-flow" }

func (h *flowHook) Provides(b byte) bool { return b == mqtt.OnQosPublish }

// OnQosPublish runs in the publisher's goroutine just before the engine
// queues a QoS > 0 message for subscriber cl: it waits while cl's queue is
// full, or while cl's unacknowledged messages are within inflightMargin of
// the engine's quota (max_queued_messages), which the engine checks before
// this hook and drops beyond: the margin leaves room for publishers that
// passed that check at the same moment (see above).
func (h *flowHook) OnQosPublish(cl *mqtt.Client, pk packets.Packet, _ int64, _ int) {
	if pk.FixedHeader.Type != packets.Publish || pk.FixedHeader.Dup || cl.Net.Inline || cl.Net.Conn == nil {
		return
	}
	if !h.full(cl) {
		return
	}
	deadline := time.Now().Add(FlowWait)
	for h.full(cl) && !cl.Closed() {
		if time.Now().After(deadline) {
			h.b.log.Warn("subscriber not reading or not acknowledging: its queue is full, messages for it are dropped", "client", cl.ID,
				"queue", OutboundQueue, "unacknowledged", cl.State.Inflight.Len(), "max_queued_messages", h.b.srv.Options.Capabilities.MaximumInflight)
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// full reports whether a message for cl must wait: its outbound queue is
// full or its unacknowledged messages are near the engine's quota.
func (h *flowHook) full(cl *mqtt.Client) bool {
	if outboundQty(cl) >= OutboundQueue {
		return true
	}
	quota := int(h.b.srv.Options.Capabilities.MaximumInflight)
	return cl.State.Inflight.Len() >= quota-min(inflightMargin, quota/4)
}

// inflightMargin is how far below the engine's quota of unacknowledged
// messages a publisher starts to wait.
const inflightMargin = 64
