package mqttwire

import "encoding/binary"

// Append appends p encoded at its Version (a CONNECT's own level). It
// encodes what p holds, without validation: the engine builds only valid
// packets, and tests build invalid ones on purpose. For MQTT 3 it leaves
// out what that level does not have (properties, reason codes other than
// the CONNACK and SUBACK ones).
func (p *Packet) Append(b []byte) []byte {
	start := len(b)
	head := p.Type << 4
	switch p.Type {
	case PUBLISH:
		head |= p.QoS << 1
		if p.Dup {
			head |= 8
		}
		if p.Retain {
			head |= 1
		}
	case PUBREL, SUBSCRIBE, UNSUBSCRIBE:
		head |= 2
	}
	b = append(b, head, 0, 0, 0, 0) // room for the longest remaining length
	v5 := p.Version == 5
	switch p.Type {
	case CONNECT:
		b = p.appendConnect(b)
	case CONNACK:
		var f byte
		if p.SessionPresent {
			f = 1
		}
		b = append(b, f, byte(p.Reason))
		if v5 {
			b = p.Props.appendTo(b)
		}
	case PUBLISH:
		b = appendBytes(b, p.Topic)
		if p.QoS > 0 {
			b = binary.BigEndian.AppendUint16(b, p.ID)
		}
		if v5 {
			b = p.Props.appendTo(b)
		}
		b = append(b, p.Payload...)
	case PUBACK, PUBREC, PUBREL, PUBCOMP:
		b = binary.BigEndian.AppendUint16(b, p.ID)
		if v5 && (p.Reason != Success || p.hasProps()) {
			b = append(b, byte(p.Reason))
			if p.hasProps() {
				b = p.Props.appendTo(b)
			}
		}
	case SUBSCRIBE, UNSUBSCRIBE:
		b = binary.BigEndian.AppendUint16(b, p.ID)
		if v5 {
			b = p.Props.appendTo(b)
		}
		for _, s := range p.Subs {
			b = appendBytes(b, s.Filter)
			if p.Type == SUBSCRIBE {
				o := s.QoS
				if v5 {
					o |= s.RetainHandling << 4
					if s.NoLocal {
						o |= 4
					}
					if s.RetainAsPublished {
						o |= 8
					}
				}
				b = append(b, o)
			}
		}
	case SUBACK, UNSUBACK:
		b = binary.BigEndian.AppendUint16(b, p.ID)
		if v5 {
			b = p.Props.appendTo(b)
		}
		if v5 || p.Type == SUBACK {
			for _, c := range p.Reasons {
				b = append(b, byte(c))
			}
		}
	case DISCONNECT, AUTH:
		if v5 && (p.Reason != Success || p.hasProps()) {
			b = append(b, byte(p.Reason))
			if p.hasProps() {
				b = p.Props.appendTo(b)
			}
		}
	}
	return closeLength(b, start+1, 4)
}

func (p *Packet) hasProps() bool {
	return p.Props.Present != 0 || len(p.Props.User) > 0 || len(p.Props.SubscriptionIDs) > 0
}

func (p *Packet) appendConnect(b []byte) []byte {
	level := p.Version
	name := "MQTT"
	if level == 3 {
		name = "MQIsdp"
	}
	if p.ProtocolName != nil {
		name = string(p.ProtocolName)
	}
	if p.Bridge {
		level |= 0x80
	}
	var f byte
	if p.CleanStart {
		f |= 0x02
	}
	if p.Will {
		f |= 0x04 | p.WillQoS<<3
		if p.WillRetain {
			f |= 0x20
		}
	}
	if p.HasPassword {
		f |= 0x40
	}
	if p.HasUsername {
		f |= 0x80
	}
	b = AppendString(b, name)
	b = append(b, level, f)
	b = binary.BigEndian.AppendUint16(b, p.Keepalive)
	v5 := p.Version == 5
	if v5 {
		b = p.Props.appendTo(b)
	}
	b = appendBytes(b, p.ClientID)
	if p.Will {
		if v5 {
			b = p.WillProps.appendTo(b)
		}
		b = appendBytes(b, p.WillTopic)
		b = appendBytes(b, p.WillPayload)
	}
	if p.HasUsername {
		b = appendBytes(b, p.Username)
	}
	if p.HasPassword {
		b = appendBytes(b, p.Password)
	}
	return b
}
