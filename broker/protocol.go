package broker

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"github.com/mqttctl/mqttctl/confgen"
	"strings"
	"sync"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// protocolHook gives the engine mosquitto's answers (2.1's where 2.0 and
// 2.1 differ) where they differ:
// the CONNECT rules (unknown protocol level, empty client ids,
// allow_zero_length_clientid, auto_id_prefix, max_keepalive, retained wills
// with retain_available false), mount_point, retain_available, invalid
// subscription filters, and SUBSCRIBE packet ids that happen to equal the id
// of a message the broker has in flight to the same client (the two
// directions' ids are independent; the engine answered 0x91 "all denied").
// Each rule was found, and is kept, by the options differential test.
type protocolHook struct {
	mqtt.HookBase
	b *Broker

	// swapped holds, per client, the SUBSCRIBE/UNSUBSCRIBE packet id that
	// was replaced to get past the engine's in-flight check, so that the
	// SUBACK/UNSUBACK carries the client's own id.
	swapped sync.Map // *mqtt.Client -> [2]uint16{stand-in, original}
}

func (h *protocolHook) ID() string { return "mqttctl-protocol" }

func (h *protocolHook) Provides(b byte) bool {
	switch b {
	case mqtt.OnPacketRead, mqtt.OnPacketEncode, mqtt.OnConnect, mqtt.OnDisconnect:
		return true
	}
	return false
}

// errClose ends a connection after the hook has answered (or, as mosquitto
// does, decided to send nothing).
// It wraps the engine's ErrRejectPacket, the one error from OnPacketRead
// that the engine does not ignore.
var errClose = fmt.Errorf("connection closed by a protocol rule: %w", packets.ErrRejectPacket)

func (h *protocolHook) OnPacketRead(cl *mqtt.Client, pk packets.Packet) (packets.Packet, error) {
	switch pk.FixedHeader.Type {
	case packets.Connect:
		// A bridge (mosquitto's try_private) says so with the protocol
		// level's top bit: 0x84 for 3.1.1, 0x83 for 3.1. It is served as
		// that version, and never gets its own publishes back.
		if v := pk.ProtocolVersion; v == 0x84 && string(pk.Connect.ProtocolName) == "MQTT" || v == 0x83 && string(pk.Connect.ProtocolName) == "MQIsdp" {
			pk.ProtocolVersion = v &^ 0x80
			if pk.Connect.ClientIdentifier != "" {
				h.b.bridgeClients.Store(pk.Connect.ClientIdentifier, cl)
			}
		}
		return pk, h.connect(cl, pk)
	case packets.Publish:
		if pk.FixedHeader.Retain && !h.b.cfg.RetainAvailable {
			h.b.log.Info("client disconnected: retained publish while retain_available is false", "client", cl.ID, "topic", pk.TopicName)
			return pk, h.closeWith(cl, packets.ErrRetainNotSupported)
		}
		if mp := h.mountPoint(cl); mp != "" && pk.TopicName != "" {
			pk.TopicName = mp + pk.TopicName
		}
	case packets.Subscribe, packets.Unsubscribe:
		mp := h.mountPoint(cl)
		bridge := false
		if c, ok := h.b.bridgeClients.Load(cl.ID); ok && c == cl {
			bridge = true
		}
		for i := range pk.Filters {
			if bridge && pk.FixedHeader.Type == packets.Subscribe {
				// As mosquitto does for bridges: never their own publishes
				// back, and the retain flag as published. The engine honours
				// RetainAsPublished for v5 clients only; FwdRetainedFlag makes
				// it keep the flag for a 3.1.1 bridge too.
				pk.Filters[i].NoLocal, pk.Filters[i].RetainAsPublished, pk.Filters[i].FwdRetainedFlag = true, true, true
			}
			f := pk.Filters[i].Filter
			if !validFilter(f) {
				h.b.log.Info("client disconnected: invalid topic filter", "client", cl.ID, "filter", f)
				return pk, h.closeWith(cl, packets.ErrMalformedPacket)
			}
			if mp != "" {
				pk.Filters[i].Filter = mount(mp, f)
			}
		}
		if _, busy := cl.State.Inflight.Get(pk.PacketID); busy {
			for id := uint16(65535); id > 0; id-- {
				if _, used := cl.State.Inflight.Get(id); !used {
					h.swapped.Store(cl, [2]uint16{id, pk.PacketID})
					pk.PacketID = id
					break
				}
			}
		}
	}
	return pk, nil
}

// validFilter applies mosquitto's rule for subscription filters: not
// empty, '+' and '#' only as whole levels, '#' only as the last level.
func validFilter(f string) bool {
	if f == "" {
		return false
	}
	start := 0
	for i := 0; i <= len(f); i++ {
		if i < len(f) && f[i] != '/' {
			continue
		}
		level := f[start:i]
		if len(level) > 1 && strings.ContainsAny(level, "+#") || level == "#" && i != len(f) {
			return false
		}
		start = i + 1
	}
	return true
}

// mount puts a filter under a mount point (after the group of a shared
// subscription).
func mount(mp, filter string) string {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		if group, f, ok := strings.Cut(rest, "/"); ok {
			return "$share/" + group + "/" + mp + f
		}
	}
	return mp + filter
}

// closeWith ends the connection as mosquitto does for a protocol error: a
// v5 client gets DISCONNECT with the reason, a 3.1.1 client is just closed.
func (h *protocolHook) closeWith(cl *mqtt.Client, code packets.Code) error {
	if cl.Properties.ProtocolVersion == 5 {
		_ = h.b.srv.DisconnectClient(cl, code)
	}
	return errClose
}

func (h *protocolHook) mountPoint(cl *mqtt.Client) string {
	if ls := h.b.listener(cl.Net.Listener); ls != nil {
		return ls.spec.MountPoint
	}
	return ""
}

// connack answers a CONNECT before the engine has parsed it.
func (h *protocolHook) connack(cl *mqtt.Client, version, code byte, why string) error {
	cl.Properties.ProtocolVersion = version
	h.refused(cl)
	h.b.log.Info("client refused", "listener", cl.Net.Listener, "remote", cl.Net.Remote, "reason", why)
	_ = cl.WritePacket(packets.Packet{FixedHeader: packets.FixedHeader{Type: packets.Connack}, ReasonCode: code})
	return errClose
}

// refused counts a refusal by a CONNECT rule.
func (h *protocolHook) refused(cl *mqtt.Client) {
	if ls := h.b.listener(cl.Net.Listener); ls != nil {
		ls.m.refuse(refusedProtocol)
	}
}

// connect applies mosquitto's CONNECT rules that come before
// authentication.
func (h *protocolHook) connect(cl *mqtt.Client, pk packets.Packet) error {
	name, v := string(pk.Connect.ProtocolName), pk.ProtocolVersion
	if ls := h.b.listener(cl.Net.Listener); ls != nil && !ls.spec.AcceptsProtocol(v) {
		// mosquitto 2.1 checks accept_protocol_versions first: levels 3 and
		// 4 get a 3.1.1 CONNACK 1, any other a v5 CONNACK 0x84.
		if v == 3 || v == 4 {
			return h.connack(cl, 4, 1, "protocol version not in accept_protocol_versions")
		}
		return h.connack(cl, 5, packets.ErrUnsupportedProtocolVersion.Code, "protocol version not in accept_protocol_versions")
	}
	if v&0x7f < 3 || v&0x7f > 5 {
		// mosquitto 2.1 answers a level it does not know with a v5
		// CONNACK 0x84 (src/handle_connect.c:514-521 of 2.1.2; 2.0.11
		// answered the 3.1.1 code 1).
		return h.connack(cl, 5, packets.ErrUnsupportedProtocolVersion.Code, "unsupported protocol version")
	}
	if !(name == "MQTT" && (v == 4 || v == 5) || name == "MQIsdp" && v == 3) {
		return h.connack(cl, 3, 1, "unsupported protocol version")
	}
	if pk.Connect.ClientIdentifier == "" {
		if v < 5 && !pk.Connect.Clean {
			return h.connack(cl, v, 2, "empty client id with clean session false")
		}
		if ls := h.b.listener(cl.Net.Listener); ls != nil && !ls.sec.Load().allowZeroID {
			code := byte(2)
			if v == 5 {
				code = packets.ErrUnspecifiedError.Code
			}
			return h.connack(cl, v, code, "empty client id (allow_zero_length_clientid false)")
		}
	}
	if pk.Connect.WillFlag && confgen.ValidateTopicName(pk.Connect.WillTopic) != nil {
		// mosquitto_pub_topic_check refuses a will topic with + or # (or
		// empty): mosquitto closes without a CONNACK (handle_connect.c
		// will__read of 2.1.2; 2.0.11 the same). The engine would publish
		// to a topic name no client may use.
		h.refused(cl)
		h.b.log.Info("client refused", "listener", cl.Net.Listener, "remote", cl.Net.Remote, "reason", "the will topic is not a valid topic name (wildcards or empty)")
		return errClose
	}
	if pk.Connect.WillFlag && pk.Connect.WillRetain && !h.b.cfg.RetainAvailable && v < 5 {
		h.refused(cl)
		h.b.log.Info("client refused", "listener", cl.Net.Listener, "remote", cl.Net.Remote, "reason", "retained will while retain_available is false")
		return errClose // mosquitto closes without a CONNACK
	}
	return nil
}

// OnConnect applies what needs the parsed client: the generated id,
// max_keepalive and the will's mount point.
func (h *protocolHook) OnConnect(cl *mqtt.Client, pk packets.Packet) error {
	ls := h.b.listener(cl.Net.Listener)
	if ls == nil {
		return packets.ErrServerUnavailable
	}
	if pk.Connect.ClientIdentifier == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		cl.ID = ls.sec.Load().autoIDPrefix + hex.EncodeToString(b[:])
		if cl.Properties.ProtocolVersion == 5 {
			cl.Properties.Props.AssignedClientID = cl.ID
		}
	}
	if max := uint16(h.b.cfg.MaxKeepalive); max > 0 && cl.Properties.ProtocolVersion == 5 &&
		(cl.State.Keepalive == 0 || cl.State.Keepalive > max) {
		cl.State.Keepalive = max
		cl.State.ServerKeepalive = true
	}
	if mp := ls.spec.MountPoint; mp != "" && cl.Properties.Will.TopicName != "" {
		cl.Properties.Will.TopicName = mp + cl.Properties.Will.TopicName
	}
	// A v5 client's packet over max_packet_size gets DISCONNECT 0x95 before
	// the close, as from mosquitto (the engine only closes). The guard
	// reads in this goroutine, the one that runs this hook.
	if g, ok := cl.Net.Conn.(*connectGuard); ok && cl.Properties.ProtocolVersion == 5 {
		g.limit = h.b.srv.Options.Capabilities.MaximumPacketSize
		g.tooLarge = func() {
			h.b.log.Info("client disconnected: packet larger than max_packet_size", "client", cl.ID, "max_packet_size", g.limit)
			_ = h.b.srv.DisconnectClient(cl, packets.ErrPacketTooLarge)
		}
	}
	return nil
}

// OnPacketEncode gives back swapped packet ids and leaves out the reason
// strings the engine adds and mosquitto never sends.
func (h *protocolHook) OnPacketEncode(cl *mqtt.Client, pk packets.Packet) packets.Packet {
	switch pk.FixedHeader.Type {
	case packets.Publish:
		// A client under a mount point sees topics without it, as
		// mosquitto 2.1 (lib/send_publish.c:126-133 of 2.1.2; 2.0.11 sent
		// them with it, fixed in 2.0.12).
		if mp := h.mountPoint(cl); mp != "" {
			pk.TopicName = strings.TrimPrefix(pk.TopicName, mp)
		}
		return pk
	case packets.Connack:
		if pk.ReasonCode >= 0x80 {
			pk.Properties = packets.Properties{} // mosquitto refuses with no properties
		}
		if cl.Properties.ProtocolVersion == 5 && pk.ReasonCode == 0 {
			pk.Properties.TopicAliasMaximum = h.b.srv.Options.Capabilities.TopicAliasMaximum
			pk.Properties.MaximumPacketSize = h.b.srv.Options.Capabilities.MaximumPacketSize
			if !h.b.cfg.RetainAvailable {
				pk.Properties.RetainAvailable, pk.Properties.RetainAvailableFlag = 0, true
			}
		}
	case packets.Suback, packets.Unsuback:
		if v, ok := h.swapped.Load(cl); ok {
			if ids := v.([2]uint16); ids[0] == pk.PacketID {
				pk.PacketID = ids[1]
				h.swapped.Delete(cl)
			}
		}
	}
	if !strings.HasPrefix(pk.Properties.ReasonString, enrolReason) {
		pk.Properties.ReasonString = "" // mosquitto sends none; the enrolment requests' refusals say why
	}
	return pk
}

func (h *protocolHook) OnDisconnect(cl *mqtt.Client, _ error, _ bool) {
	h.swapped.Delete(cl)
	h.b.bridgeClients.CompareAndDelete(cl.ID, cl)
}
