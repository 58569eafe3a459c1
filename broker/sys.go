package broker

import (
	"runtime/debug"
	"strconv"
	"sync"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
)

// sysTopics publishes the broker's $SYS topics as mosquitto does: retained,
// QoS 0, every sys_interval (10 s by default), each only when its value
// changed; $SYS/broker/version once at start.
type sysTopics struct {
	b     *Broker
	start time.Time
	last  map[string]string
	quit  chan struct{}
	wg    sync.WaitGroup
}

func startSys(b *Broker) *sysTopics {
	every := b.opts.SysInterval
	if b.cfg.SysInterval > 0 && every == 10*time.Second {
		every = time.Duration(b.cfg.SysInterval) * time.Second
	}
	s := &sysTopics{b: b, start: time.Now(), last: map[string]string{}, quit: make(chan struct{})}
	s.publish("$SYS/broker/version", "mqttctl "+buildVersion())
	s.tick()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.tick()
			case <-s.quit:
				return
			}
		}
	}()
	return s
}

func (s *sysTopics) stop() {
	close(s.quit)
	s.wg.Wait()
}

// tick publishes what changed since the last tick.
func (s *sysTopics) tick() {
	st := s.b.srv.Stats()
	n := func(v int) string { return strconv.Itoa(v) }
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	for _, kv := range [...][2]string{
		{"$SYS/broker/uptime", strconv.Itoa(int(time.Since(s.start)/time.Second)) + " seconds"},
		{"$SYS/broker/clients/connected", n(st.Clients)},
		{"$SYS/broker/clients/disconnected", n(st.Sessions - st.Clients)},
		{"$SYS/broker/clients/total", n(st.Sessions)},
		{"$SYS/broker/messages/received", u(st.Received)},
		{"$SYS/broker/messages/sent", u(st.Sent)},
		{"$SYS/broker/messages/inflight", n(st.Inflight)},
		{"$SYS/broker/store/messages/count", n(st.Inflight + st.Queued)},
		{"$SYS/broker/retained messages/count", n(st.Retained)},
		{"$SYS/broker/subscriptions/count", n(st.Subscriptions)},
	} {
		if s.last[kv[0]] != kv[1] {
			s.publish(kv[0], kv[1])
		}
	}
}

func (s *sysTopics) publish(topic, value string) {
	s.last[topic] = value
	s.b.srv.Publish(&engine.Message{Topic: topic, Payload: []byte(value), Retain: true})
}

// buildVersion is the module version the binary was built from.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
