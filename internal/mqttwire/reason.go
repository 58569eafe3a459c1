package mqttwire

import (
	"errors"
	"fmt"
)

// More packet types (see the constants in wire.go).
const (
	UNSUBSCRIBE = 10
	UNSUBACK    = 11
	AUTH        = 15
)

// ReasonCode is an MQTT 5 reason code; for 3.1.1 it also holds the CONNACK
// return code (0-5) and the SUBACK return codes (0, 1, 2, 0x80).
type ReasonCode byte

// The reason codes a decoder refuses a packet with, and the others the
// engine sends (MQTT 5.0 section 2.4).
const (
	Success                    ReasonCode = 0x00
	GrantedQoS1                ReasonCode = 0x01
	GrantedQoS2                ReasonCode = 0x02
	DisconnectWithWill         ReasonCode = 0x04
	NoMatchingSubscribers      ReasonCode = 0x10
	NoSubscriptionExisted      ReasonCode = 0x11
	ContinueAuthentication     ReasonCode = 0x18
	ReAuthenticate             ReasonCode = 0x19
	UnspecifiedError           ReasonCode = 0x80
	MalformedPacket            ReasonCode = 0x81
	ProtocolError              ReasonCode = 0x82
	ImplementationSpecific     ReasonCode = 0x83
	UnsupportedProtocolVersion ReasonCode = 0x84
	ClientIDNotValid           ReasonCode = 0x85
	BadUsernameOrPassword      ReasonCode = 0x86
	NotAuthorized              ReasonCode = 0x87
	ServerUnavailable          ReasonCode = 0x88
	ServerBusy                 ReasonCode = 0x89
	Banned                     ReasonCode = 0x8A
	ServerShuttingDown         ReasonCode = 0x8B
	BadAuthenticationMethod    ReasonCode = 0x8C
	KeepAliveTimeout           ReasonCode = 0x8D
	SessionTakenOver           ReasonCode = 0x8E
	TopicFilterInvalid         ReasonCode = 0x8F
	TopicNameInvalid           ReasonCode = 0x90
	PacketIDInUse              ReasonCode = 0x91
	PacketIDNotFound           ReasonCode = 0x92
	ReceiveMaximumExceeded     ReasonCode = 0x93
	TopicAliasInvalid          ReasonCode = 0x94
	PacketTooLarge             ReasonCode = 0x95
	MessageRateTooHigh         ReasonCode = 0x96
	QuotaExceeded              ReasonCode = 0x97
	AdministrativeAction       ReasonCode = 0x98
	PayloadFormatInvalid       ReasonCode = 0x99
	RetainNotSupported         ReasonCode = 0x9A
	QoSNotSupported            ReasonCode = 0x9B
	UseAnotherServer           ReasonCode = 0x9C
	ServerMoved                ReasonCode = 0x9D
	SharedSubsNotSupported     ReasonCode = 0x9E
	ConnectionRateExceeded     ReasonCode = 0x9F
	MaximumConnectTime         ReasonCode = 0xA0
	SubIDsNotSupported         ReasonCode = 0xA1
	WildcardSubsNotSupported   ReasonCode = 0xA2
)

// Error is a packet the decoder refuses: Code is the reason code an MQTT 5
// peer is told in its DISCONNECT (or CONNACK) before the connection
// closes, as mosquitto 2.1 does; an MQTT 3 peer's connection just closes.
// UnsupportedProtocolVersion is answered, as mosquitto does, with CONNACK
// return code 1 (3.1.1's form) to MQIsdp and with an MQTT 5 CONNACK 0x84
// to an MQTT level above 5.
type Error struct {
	Code   ReasonCode
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (reason code 0x%02x): %s", codeName(e.Code), byte(e.Code), e.Reason)
}

// Is makes errors.Is(err, ErrMalformed) true for a malformed packet.
func (e *Error) Is(target error) bool {
	return target == ErrMalformed && e.Code == MalformedPacket
}

func codeName(c ReasonCode) string {
	switch c {
	case MalformedPacket:
		return "malformed packet"
	case ProtocolError:
		return "protocol error"
	case PacketTooLarge:
		return "packet too large"
	case UnsupportedProtocolVersion:
		return "unsupported protocol version"
	}
	return "refused packet"
}

func malformed(reason string) error   { return &Error{MalformedPacket, reason} }
func protocolErr(reason string) error { return &Error{ProtocolError, reason} }

// CodeOf returns the reason code of a decoding error, or UnspecifiedError
// for another error (an I/O error, which closes the connection silently).
func CodeOf(err error) ReasonCode {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return UnspecifiedError
}
