// Package mqttwire is mqttctl's MQTT codec: every control packet of MQTT
// 3.1, 3.1.1 and 5.0, for the broker's own engine (issue 21) and for
// mqttctl's clients.
//
// Layout:
//
//   - wire.go: the first, client-side helpers (AppendConnect,
//     AppendPublish, AppendSubscribe, AppendAck, ReadPacket, PublishInfo)
//     that the load generator, `check` and tests use without the
//     allocations of a client library. They stay as they are.
//   - packet.go: Packet, one struct for every packet type, and Decode,
//     which validates a packet as strictly as mosquitto 2.0 does and
//     refuses it with an *Error carrying the reason code (reason.go):
//     MalformedPacket or ProtocolError where mosquitto says
//     MOSQ_ERR_MALFORMED_PACKET/MALFORMED_UTF8 or MOSQ_ERR_PROTOCOL,
//     UnsupportedProtocolVersion for a CONNECT of an unknown level,
//     PacketTooLarge over Reader.MaxSize.
//   - props.go: the MQTT 5 properties, which packets allow which, and their
//     value rules.
//   - utf8.go: the string rules (mosquitto_validate_utf8: no U+0000, no
//     control characters, no non-characters, well-formed UTF-8) and the
//     topic name and filter rules (wildcards, $share/GROUP/FILTER).
//   - encode.go: Packet.Append, the encoder (no validation: the engine
//     builds valid packets, tests build invalid ones).
//   - reader.go: Reader, one per connection: reads a packet from a
//     bufio.Reader into a reused buffer, refusing a length over MaxSize
//     before reading the body, and decodes it into a reused Packet. A
//     decoded packet's []byte fields alias that buffer (valid until the
//     next Read), so reading a PUBLISH allocates nothing (bench_test.go).
//
// Where mosquitto 2.0.11 and 2.1.2 differ, the decoder follows 2.1.2 and
// the spec: 2.0.11 accepts some packets both refuse (flags on PINGREQ and
// PUBACK, DUP on QoS 0, out-of-range property values and ack reason codes,
// no-local on a shared subscription, a subscription identifier in a
// client's PUBLISH); the refusals table marks them (lax20) and the peer test
// checks that 2.0.11 still accepts exactly those.
//
// The tests: TestRoundTrip and TestRandomRoundTrip (decode(encode(p)) == p
// for samples and for random valid packets of every type, level and
// property), TestRefusals (a table of malformed inputs with their
// reason codes), TestMosquittoRefusesTheSame (the same table, and valid
// packets, sent to mosquitto 2.1.2 and 2.0.11: they refuse and accept the
// same ones, 2.1.2 with the same reason codes), TestMosquittoMaxPacketSize
// (Reader.MaxSize refuses what max_packet_size refuses),
// TestMosquittoPacketsDecode (what mosquitto sends decodes, MQTT 5
// properties intact), FuzzRead (decode, and
// decode(encode(p)) == p, on any bytes), FuzzValidString and
// FuzzValidTopicFilter (against plain reference implementations); their
// seeds in testdata/fuzz run in make test.
//
// The engine around a Reader is broker/engine (one goroutine per
// connection; Reset and SwapBuffer lend it pooled buffers while busy).
// Deliberately left to the engine:
// decisions that need session state (a topic alias above the maximum, a
// second CONNECT, the client identifier rules, a subscription identifier
// in a client's PUBLISH) and the optional payload-format check (reason
// code 0x99): mosquitto 2.0 and 2.1 keep the connection of a client whose
// PUBLISH says UTF-8 and is not (an acceptance in the peer test).
package mqttwire
