package engine_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	mw "github.com/mqttctl/mqttctl/internal/mqttwire"
)

// scripts are the protocol cases: the engine must produce want, and the
// differential test (diff_test.go) runs each against mosquitto 2.0.11
// (and 2.1.2) and wants the same transcript from both.
var scripts = []struct {
	name  string
	steps []step
	want  []string
}{
	{"connect v3.1.1", steps(open("a", 4, connect("c1", true)), send("a", pingreq), recv("a", 1)),
		[]string{"a: CONNACK sp=false rc=0x0", "a: PINGRESP"}},
	{"connect v3.1", steps(open("a", 3, connect("c1", true)), send("a", disconnect), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0", "a: closed"}},
	{"connect v5", steps(open("a", 5, connect("c1", true))),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]"}},
	{"v3.1.1 empty id, not clean", steps(open("a", 4, connect("", false)), until("a")),
		[]string{"a: CONNACK sp=false rc=0x2", "a: closed"}},
	{"v5 empty id assigned", steps(open("a", 5, connect("", true))),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 assigned= receive-max=20]"}},
	{"MQTT level 6", steps(dial("a", 5), step{who: "a", raw: (&mw.Packet{Type: mw.CONNECT, Version: 6, CleanStart: true, ClientID: []byte("l6")}).Append(nil)}, until("a")),
		[]string{"a: CONNACK sp=false rc=0x84", "a: closed"}},
	{"MQIsdp level 4", steps(dial("b", 4), step{who: "b", raw: (&mw.Packet{Type: mw.CONNECT, Version: 4, ProtocolName: []byte("MQIsdp"), CleanStart: true, ClientID: []byte("l4")}).Append(nil)}, until("b")),
		[]string{"b: CONNACK sp=false rc=0x1", "b: closed"}},
	{"3.1 client id over 23 bytes", steps(open("a", 3, connect("abcdefghijklmnopqrstuvwxyz0123456789", true)), send("a", pingreq), recv("a", 1)),
		[]string{"a: CONNACK sp=false rc=0x0", "a: PINGRESP"}},
	{"v5 authentication method", steps(open("a", 5, connect("am", true, func(p *mw.Packet) {
		p.Props.AuthMethod = []byte("SCRAM-SHA-1")
		p.Props.Set(mw.PropAuthMethod)
	})), until("a")),
		[]string{"a: CONNACK sp=false rc=0x8c", "a: closed"}},
	{"v5 malformed CONNECT", steps(dial("a", 5), step{who: "a", raw: (&mw.Packet{Type: mw.CONNECT, Version: 5, CleanStart: true, Will: true, WillTopic: []byte("a/+"), ClientID: []byte("bad")}).Append(nil)}, until("a")),
		[]string{"a: closed"}},
	{"v5 bad filter after CONNECT", steps(open("a", 5, connect("bf", true)), send("a", subscribe(1, "a/#/b", 0)), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: DISCONNECT rc=0x81", "a: closed"}},
	{"v5 unknown topic alias", steps(open("a", 5, connect("ua", true)), send("a", publish("", "x", 0, false, 0, alias(4))), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: DISCONNECT rc=0x82", "a: closed"}},
	{"v5 receive maximum exceeded: PUBREC 0x97", steps(open("p", 5, connect("rx", true)), qos2Flood(20),
		send("p", publish("rx/t", "m", 2, false, 21)), recv("p", 1), send("p", ack(mw.PUBREL, 1)), recv("p", 1), send("p", ack(mw.PUBREL, 21)), recv("p", 1), send("p", publish("rx/t", "m", 2, false, 21)), recv("p", 1), quiet("p")),
		append(append([]string{"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]"}, pubrecs(20)...),
			"p: PUBREC id=21 rc=0x97", "p: PUBCOMP id=1 rc=0x0", "p: PUBCOMP id=21 rc=0x0", "p: PUBREC id=21 rc=0x0")},
	{"sub unsub v3", steps(open("a", 4, connect("c1", true)),
		send("a", subscribe(1, "t/+", 1)), recv("a", 1),
		send("a", publish("t/x", "hello", 0, false, 0)), recv("a", 1),
		send("a", unsubscribe(2, "t/+", "nope")), recv("a", 1),
		send("a", publish("t/x", "gone", 0, false, 0)), quiet("a")),
		[]string{"a: CONNACK sp=false rc=0x0", "a: SUBACK id=1 01", `a: PUBLISH q0 t/x "hello"`, "a: UNSUBACK id=2"}},
	{"sub unsub v5", steps(open("a", 5, connect("c1", true)),
		send("a", subscribe(1, "t/#", 2)), recv("a", 1),
		send("a", unsubscribe(2, "t/#", "nope")), recv("a", 1)),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: SUBACK id=1 02", "a: UNSUBACK id=2 0011"}},
	{"qos 1 round trip", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "q/1", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)),
		send("p", publish("q/1", "m1", 1, false, 7)), recv("p", 1), recv("s", 1), send("s", ack(mw.PUBACK, 1)),
		send("p", publish("q/1", "m0", 0, false, 0)), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "p: CONNACK sp=false rc=0x0",
			"p: PUBACK id=7 rc=0x0", `s: PUBLISH q1 id=1 q/1 "m1"`, `s: PUBLISH q0 q/1 "m0"`}},
	{"qos downgraded to the subscription", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "q/1", 0)), recv("s", 1),
		open("p", 4, connect("pub", true)),
		send("p", publish("q/1", "m2", 2, false, 7)), recv("p", 1), send("p", ack(mw.PUBREL, 7)), recv("p", 1), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "p: CONNACK sp=false rc=0x0",
			"p: PUBREC id=7 rc=0x0", "p: PUBCOMP id=7 rc=0x0", `s: PUBLISH q0 q/1 "m2"`}},
	{"qos 2 round trip", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "q/2", 2)), recv("s", 1),
		open("p", 4, connect("pub", true)),
		send("p", publish("q/2", "m", 2, false, 9)), recv("p", 1), send("p", ack(mw.PUBREL, 9)), recv("p", 1),
		recv("s", 1), send("s", ack(mw.PUBREC, 1)), recv("s", 1), send("s", ack(mw.PUBCOMP, 1)), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 02", "p: CONNACK sp=false rc=0x0",
			"p: PUBREC id=9 rc=0x0", "p: PUBCOMP id=9 rc=0x0", `s: PUBLISH q2 id=1 q/2 "m"`, "s: PUBREL id=1 rc=0x0"}},
	{"qos 1 v5 no subscribers", steps(open("p", 5, connect("pub", true)), send("p", publish("nobody/here", "m", 1, false, 3)), recv("p", 1)),
		[]string{"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "p: PUBACK id=3 rc=0x10"}},
	{"retained", steps(open("p", 4, connect("pub", true)),
		send("p", publish("r/a", "ra", 1, true, 1)), recv("p", 1),
		send("p", publish("r/b", "rb", 0, true, 0)),
		send("p", publish("r/c", "rc", 0, true, 0)), send("p", publish("r/c", "", 0, true, 0)),
		send("p", pingreq), recv("p", 1),
		open("s", 4, connect("sub", true)), send("s", subscribe(1, "r/a", 1)), recv("s", 2), send("s", ack(mw.PUBACK, 1)),
		send("s", subscribe(2, "r/b", 1)), recv("s", 2),
		send("p", publish("r/a", "live", 0, true, 0)), recv("s", 1)),
		[]string{"p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0", "p: PINGRESP", "s: CONNACK sp=false rc=0x0",
			"s: SUBACK id=1 01", `s: PUBLISH q1 retain id=1 r/a "ra"`, "s: SUBACK id=2 01", `s: PUBLISH q0 retain r/b "rb"`,
			`s: PUBLISH q0 r/a "live"`}},
	{"retain handling and as published v5", steps(open("p", 5, connect("pub", true)),
		send("p", publish("rh/a", "x", 0, true, 0)), send("p", pingreq), recv("p", 1),
		open("s", 5, connect("sub", true)),
		send("s", subscribe(1, "rh/a", 0, func(s *mw.Subscription) { s.RetainHandling = 2 })), recv("s", 1),
		send("s", subscribe(2, "rh/+", 0, func(s *mw.Subscription) { s.RetainHandling = 1; s.RetainAsPublished = true })), recv("s", 2),
		send("s", subscribe(3, "rh/+", 0, func(s *mw.Subscription) { s.RetainHandling = 1 })), recv("s", 1),
		send("p", publish("rh/a", "y", 0, true, 0)), recv("s", 2)),
		[]string{"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "p: PINGRESP",
			"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 00", "s: SUBACK id=2 00",
			`s: PUBLISH q0 retain rh/a "x"`, "s: SUBACK id=3 00",
			`s: PUBLISH q0 rh/a "y"`, `s: PUBLISH q0 rh/a "y"`}},
	{"will on a dropped connection", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "w/#", 1)), recv("s", 1),
		open("w", 4, connect("dies", true, will("w/dies", "gone", 1, false))), drop("w"), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "w: CONNACK sp=false rc=0x0", `s: PUBLISH q1 id=1 w/dies "gone"`}},
	{"no will after DISCONNECT", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "w/#", 1)), recv("s", 1),
		open("w", 4, connect("dies", true, will("w/dies", "gone", 1, false))), send("w", disconnect), until("w"), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "w: CONNACK sp=false rc=0x0", "w: closed"}},
	{"will of a taken over connection", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "wt/#", 0)), recv("s", 1),
		open("a", 4, connect("same", true, will("wt/a", "old will", 0, false))), open("b", 4, connect("same", true)), until("a"), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "a: CONNACK sp=false rc=0x0", "b: CONNACK sp=false rc=0x0", "a: closed",
			`s: PUBLISH q0 wt/a "old will"`}},
	{"takeover v3", steps(open("a", 4, connect("same", true)), open("b", 4, connect("same", true)), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0", "b: CONNACK sp=false rc=0x0", "a: closed"}},
	{"takeover v5", steps(open("a", 5, connect("same", true)), open("b", 5, connect("same", true)), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "b: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]",
			"a: DISCONNECT rc=0x8e", "a: closed"}},
	{"persistent session gets queued qos 1", steps(open("s", 4, connect("keep", false)), send("s", subscribe(1, "p/#", 1)), recv("s", 1),
		send("s", disconnect), until("s"),
		open("p", 4, connect("pub", true)), send("p", publish("p/1", "while away", 1, false, 1)), recv("p", 1),
		send("p", publish("p/0", "qos0 away", 0, false, 0)), send("p", pingreq), recv("p", 1),
		open("s", 4, connect("keep", false)), recv("s", 1), send("s", ack(mw.PUBACK, 1)), quiet("s"),
		send("s", disconnect), until("s"), open("s", 4, connect("keep", true))),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", "s: closed", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
			"p: PINGRESP", "s: CONNACK sp=true rc=0x0", `s: PUBLISH q1 id=1 p/1 "while away"`, "s: closed", "s: CONNACK sp=false rc=0x0"}},
	{"v5 session expiry 0 is clean", steps(open("s", 5, connect("v5s", false)), send("s", subscribe(1, "e/#", 1)), recv("s", 1),
		send("s", disconnect), until("s"), open("s", 5, connect("v5s", false, sessionExpiry(60)))),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 01", "s: closed",
			"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]"}},
	{"v5 session expiry keeps the session", steps(open("s", 5, connect("v5k", false, sessionExpiry(60))), send("s", subscribe(1, "e/#", 1)), recv("s", 1),
		send("s", disconnect), until("s"), open("s", 5, connect("v5k", false, sessionExpiry(60)))),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 01", "s: closed",
			"s: CONNACK sp=true rc=0x0 [alias-max=10 receive-max=20]"}},
	{"shared subscription", steps(open("a", 5, connect("sa", true)), send("a", subscribe(1, "$share/g/sh/t", 0)), recv("a", 1),
		open("b", 5, connect("sb", true)), send("b", subscribe(1, "$share/g/sh/t", 0)), recv("b", 1),
		open("p", 5, connect("pub", true)), send("p", publish("sh/t", "1", 0, false, 0)), send("p", publish("sh/t", "2", 0, false, 0)),
		send("p", pingreq), recv("p", 1), pause(200*time.Millisecond),
		send("a", pingreq), send("b", pingreq), until("a"), until("b")),
		nil}, // which member gets which message is the broker's choice: see TestSharedSubscription
	{"no local", steps(open("a", 5, connect("nl", true)),
		send("a", subscribe(1, "nl/t", 0, func(s *mw.Subscription) { s.NoLocal = true })), recv("a", 1),
		send("a", subscribe(2, "nl/#", 0)), recv("a", 1),
		send("a", publish("nl/t", "mine", 0, false, 0)), recv("a", 1), quiet("a")),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: SUBACK id=1 00", "a: SUBACK id=2 00", `a: PUBLISH q0 nl/t "mine"`}},
	{"$SYS publish acknowledged and dropped", steps(open("s", 4, connect("sub", true)), send("s", subscribe(1, "$SYS/#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("$SYS/x", "m", 1, false, 5)), recv("p", 1), quiet("s")),
		nil}, // mosquitto publishes its own $SYS topics to the subscriber: see TestSysPublishDropped
	{"v5 properties passed through", steps(open("s", 5, connect("sub", true)),
		send("s", subscribe(1, "pp/#", 1, func(*mw.Subscription) {})), recv("s", 1),
		open("p", 5, connect("pub", true)),
		send("p", publish("pp/x", "req", 1, false, 4, func(p *mw.Packet) {
			p.Props.ResponseTopic, p.Props.CorrelationData, p.Props.ContentType = []byte("pp/reply"), []byte("c1"), []byte("text/plain")
			p.Props.PayloadFormat = 1
			p.Props.Set(mw.PropResponseTopic)
			p.Props.Set(mw.PropCorrelationData)
			p.Props.Set(mw.PropContentType)
			p.Props.Set(mw.PropPayloadFormat)
			p.Props.User = []mw.UserProperty{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("k"), Value: []byte("w")}}
		})), recv("p", 1), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 01",
			"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "p: PUBACK id=4 rc=0x0",
			`s: PUBLISH q1 id=1 pp/x "req" [content=text/plain correlation=c1 format=1 response=pp/reply user:k=v user:k=w]`}},
	{"v5 topic alias in", steps(open("s", 5, connect("sub", true)), send("s", subscribe(1, "ta/#", 0)), recv("s", 1),
		open("p", 5, connect("pub", true)),
		send("p", publish("ta/long", "1", 0, false, 0, alias(3))), send("p", publish("", "2", 0, false, 0, alias(3))), recv("s", 2),
		send("p", publish("ta/x", "3", 0, false, 0, alias(11))), until("p")),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 00",
			"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", `s: PUBLISH q0 ta/long "1"`, `s: PUBLISH q0 ta/long "2"`,
			"p: DISCONNECT rc=0x94", "p: closed"}},
	{"v5 subscription identifiers", steps(open("s", 5, connect("sub", true)),
		send("s", subID(subscribe(1, "si/+", 0), 7)), recv("s", 1), send("s", subID(subscribe(2, "si/#", 0), 9)), recv("s", 1),
		open("p", 5, connect("pub", true)), send("p", publish("si/a", "m", 0, false, 0)), recv("s", 2)),
		nil}, // the two copies come in the index's order: see TestSubscriptionIdentifiers
	{"keepalive v3", steps(open("a", 4, connect("ka", true, keepalive(1))), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0", "a: closed"}},
	{"keepalive v5", steps(open("a", 5, connect("ka", true, keepalive(1))), until("a")),
		[]string{"a: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "a: closed"}},
	{"in flight resent with DUP to a resumed session", steps(open("s", 4, connect("inf", false)), send("s", subscribe(1, "inf/#", 2)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("inf/1", "one", 1, false, 1)), recv("p", 1),
		send("p", publish("inf/2", "two", 2, false, 2)), recv("p", 1), send("p", ack(mw.PUBREL, 2)), recv("p", 1),
		recv("s", 2), send("s", ack(mw.PUBREC, 2)), recv("s", 1), drop("s"), pause(100*time.Millisecond),
		open("s", 4, connect("inf", false)), recv("s", 2), send("s", ack(mw.PUBACK, 1)), send("s", ack(mw.PUBCOMP, 2)), quiet("s"),
		send("s", disconnect), until("s"), open("s", 4, connect("inf", true))),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 02", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
			"p: PUBREC id=2 rc=0x0", "p: PUBCOMP id=2 rc=0x0", `s: PUBLISH q1 id=1 inf/1 "one"`, `s: PUBLISH q2 id=2 inf/2 "two"`,
			"s: PUBREL id=2 rc=0x0", "s: CONNACK sp=true rc=0x0", `s: PUBLISH q1 dup id=1 inf/1 "one"`, "s: PUBREL id=2 rc=0x0",
			"s: closed", "s: CONNACK sp=false rc=0x0"}},
	{"qos 2 v5 round trip", steps(open("s", 5, connect("sub", true)), send("s", subscribe(1, "q5/#", 2)), recv("s", 1),
		open("p", 5, connect("pub", true)),
		send("p", publish("q5/x", "m", 2, false, 9)), recv("p", 1), send("p", ack(mw.PUBREL, 9)), recv("p", 1),
		recv("s", 1), send("s", ack(mw.PUBREC, 1)), recv("s", 1), send("s", ack(mw.PUBCOMP, 1)), quiet("s"),
		send("p", ack(mw.PUBREL, 10)), recv("p", 1)),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 02",
			"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "p: PUBREC id=9 rc=0x0", "p: PUBCOMP id=9 rc=0x0",
			`s: PUBLISH q2 id=1 q5/x "m"`, "s: PUBREL id=1 rc=0x0", "p: PUBCOMP id=10 rc=0x0"}},
	{"overlapping subscriptions get a copy each", steps(open("s", 4, connect("sub", true)),
		send("s", subscribe(1, "ov/+", 0)), recv("s", 1), send("s", subscribe(2, "ov/#", 1)), recv("s", 1),
		open("p", 4, connect("pub", true)), send("p", publish("ov/a", "m", 1, false, 1)), recv("p", 1), recv("s", 1), quiet("s")),
		[]string{"s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 00", "s: SUBACK id=2 01", "p: CONNACK sp=false rc=0x0", "p: PUBACK id=1 rc=0x0",
			`s: PUBLISH q0 ov/a "m"`, `s: unexpected PUBLISH q1 id=1 ov/a "m"`}}, // the second copy in the quiet read: 2.0.11 sends none
	{"retained will", steps(open("w", 4, connect("dies", true, will("rw/last", "gone", 1, true))), drop("w"), pause(200*time.Millisecond),
		open("s", 4, connect("sub", true)), send("s", subscribe(1, "rw/#", 1)), recv("s", 2), send("s", ack(mw.PUBACK, 1)),
		open("p", 4, connect("pub", true)), send("p", publish("rw/last", "", 0, true, 0)), send("p", pingreq), recv("p", 1)),
		[]string{"w: CONNACK sp=false rc=0x0", "s: CONNACK sp=false rc=0x0", "s: SUBACK id=1 01", `s: PUBLISH q1 retain id=1 rw/last "gone"`,
			"p: CONNACK sp=false rc=0x0", "p: PINGRESP"}},
	{"v5 will delay", steps(open("s", 5, connect("sub", true)), send("s", subscribe(1, "wdl/#", 0)), recv("s", 1),
		open("w", 5, connect("late", true, will("wdl/x", "late", 0, false), willDelay(1), sessionExpiry(30))), drop("w"), quiet("s"),
		pause(1500*time.Millisecond), recv("s", 1)),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 00",
			"w: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", `s: PUBLISH q0 wdl/x "late"`}},
	{"v5 session expiry ended by DISCONNECT", steps(open("s", 5, connect("dse", false, sessionExpiry(60))), send("s", subscribe(1, "dse/#", 1)), recv("s", 1),
		send("s", &mw.Packet{Type: mw.DISCONNECT, Props: mw.Properties{Present: 1 << mw.PropSessionExpiry}}), until("s"),
		open("s", 5, connect("dse", false, sessionExpiry(60))), send("s", disconnect), until("s"),
		open("s", 5, connect("dse", false)), send("s", &mw.Packet{Type: mw.DISCONNECT, Props: mw.Properties{Present: 1 << mw.PropSessionExpiry, SessionExpiry: 5}}), until("s")),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 01", "s: closed",
			"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: closed",
			"s: CONNACK sp=true rc=0x0 [alias-max=10 receive-max=20]", "s: DISCONNECT rc=0x82", "s: closed"}},
	{"v5 message expiry of a queued message", steps(open("s", 5, connect("mq", false, sessionExpiry(60))), send("s", subscribe(1, "mq/#", 1)), recv("s", 1),
		send("s", disconnect), until("s"),
		open("p", 5, connect("pub", true)), send("p", publish("mq/a", "short", 1, false, 1, expiry(1))), recv("p", 1),
		send("p", publish("mq/b", "long", 1, false, 2, expiry(100))), recv("p", 1), pause(2100*time.Millisecond),
		open("s", 5, connect("mq", false, sessionExpiry(60))), recv("s", 1), send("s", ack(mw.PUBACK, 2)), quiet("s"),
		send("s", disconnect), until("s"), open("s", 5, connect("mq", true))),
		[]string{"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 01", "s: closed",
			"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "p: PUBACK id=1 rc=0x0", "p: PUBACK id=2 rc=0x0",
			"s: CONNACK sp=true rc=0x0 [alias-max=10 receive-max=20]", `s: PUBLISH q1 id=2 mq/b "long" [expiry=95-99]`, "s: closed",
			"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]"}},
	{"v5 message expiry", steps(open("p", 5, connect("pub", true)),
		send("p", publish("me/a", "short", 0, true, 0, expiry(1))), send("p", publish("me/b", "long", 0, true, 0, expiry(100))),
		send("p", pingreq), recv("p", 1), pause(2100*time.Millisecond),
		open("s", 5, connect("sub", true)), send("s", subscribe(1, "me/#", 0)), recv("s", 2), quiet("s")),
		[]string{"p: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "p: PINGRESP",
			"s: CONNACK sp=false rc=0x0 [alias-max=10 receive-max=20]", "s: SUBACK id=1 00", `s: PUBLISH q0 retain me/b "long" [expiry=95-99]`}},
}

func pubrecs(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("p: PUBREC id=%d rc=0x0", i+1))
	}
	return out
}

func qos2Flood(n int) []step {
	var out []step
	for i := range n {
		out = append(out, send("p", publish("rx/t", "m", 2, false, uint16(i+1))), recv("p", 1))
	}
	return out
}

func willDelay(d uint32) func(*mw.Packet) {
	return func(p *mw.Packet) { p.WillProps.WillDelay = d; p.WillProps.Set(mw.PropWillDelay) }
}

func alias(a uint16) func(*mw.Packet) {
	return func(p *mw.Packet) { p.Props.TopicAlias = a; p.Props.Set(mw.PropTopicAlias) }
}

func expiry(s uint32) func(*mw.Packet) {
	return func(p *mw.Packet) { p.Props.MessageExpiry = s; p.Props.Set(mw.PropMessageExpiry) }
}

func subID(p *mw.Packet, id uint32) *mw.Packet {
	p.Props.SubscriptionIDs = []uint32{id}
	return p
}

// TestProtocol runs every script against the engine.
func TestProtocol(t *testing.T) {
	for _, sc := range scripts {
		if sc.want == nil {
			continue
		}
		t.Run(sc.name, func(t *testing.T) {
			t.Parallel()
			addr, _ := startEngine(t, engine.Options{})
			got := runScript(t, addr, sc.steps)
			if !slices.Equal(got, sc.want) {
				t.Errorf("transcript:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(sc.want, "\n"))
			}
		})
	}
}
