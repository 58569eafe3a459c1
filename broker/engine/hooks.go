package engine

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
)

// Hooks is the seam between the engine and the broker: every decision and
// every side effect the broker owns (authentication, the ACL, counters,
// persistence) is one call here, with plain types of this package. The
// engine never blocks on anything else of the broker's. A broker embeds
// NopHooks and overrides what it needs. Every method may be called from
// many connections' goroutines at once.
type Hooks interface {
	// Authenticate decides a CONNECT, after the protocol checks and before
	// the session is looked up. Accept with Verdict{} (the CONNECT's
	// username stays); a Code of 0x80 or more refuses it (the engine
	// writes the CONNACK: that code for MQTT 5, its 3.1.1 return code
	// otherwise, see v3Code).
	Authenticate(req *ConnectRequest) Verdict
	// MayPublish is the ACL's write check of a client's PUBLISH (and of its
	// will, when it is sent). A refusal drops the message: QoS 1 and 2 are
	// acknowledged as mosquitto does (3.1.1: normal acks; 5: 0x87).
	MayPublish(c *Client, topic string) bool
	// MayRead is the ACL's read check, asked at every delivery (as
	// mosquitto does; subscriptions are granted as asked).
	MayRead(c *Client, topic string) bool

	// Connected and Disconnected bracket a session's connection (for logs
	// and metrics); err is nil after the client's DISCONNECT.
	Connected(c *Client, sessionPresent bool)
	Disconnected(c *Client, err error)
	// Published counts a message a client published (after the ACL);
	// Delivered one the engine wrote to a subscriber.
	Published(c *Client, m *Message)
	Delivered(c *Client, m *Message)

	// Persistence, as calls. The engine calls them in order for each
	// session from the goroutine that changed it; Restore* put the stored
	// state back before Serve.
	//
	// SaveSession: a persistent session (not clean, or MQTT 5 with a
	// session expiry) was created or its expiry changed; DeleteSession:
	// it ended (clean start, expiry, or a clean client's disconnect).
	SaveSession(s SessionRecord)
	DeleteSession(clientID string)
	// SaveSubscription and DeleteSubscription keep a persistent session's
	// subscriptions.
	SaveSubscription(clientID string, s topic.Subscription)
	DeleteSubscription(clientID, filter string)
	// SaveRetained stores topic's retained message; DeleteRetained removes it.
	SaveRetained(m *Message)
	DeleteRetained(topic string)
	// SaveQueued keeps a QoS 1/2 message the engine owes a persistent
	// session (queued or in flight), as it is to be delivered; DeleteQueued
	// drops it once acknowledged (or dropped).
	SaveQueued(clientID string, seq uint64, q Queued)
	DeleteQueued(clientID string, seq uint64)
}

// ConnectRequest is a CONNECT to decide, with the connection it came on.
// Password aliases the packet: valid only during Authenticate.
type ConnectRequest struct {
	Listener    string
	Remote      net.Addr
	TLS         *tls.ConnectionState // nil on a plain connection
	Version     byte                 // 3, 4 or 5
	Bridge      bool                 // the protocol level's top bit (try_private)
	ClientID    string               // as the engine will use it (assigned when empty)
	Assigned    bool                 // the engine made ClientID up
	Username    string
	HasUsername bool
	Password    []byte
	HasPassword bool
	CleanStart  bool
	Will        bool
	WillTopic   string
	WillRetain  bool
}

// Verdict is Authenticate's answer.
type Verdict struct {
	// Code refuses the connection when 0x80 or more (MQTT 5 reason code).
	Code mqttwire.ReasonCode
	// Username, when SetUsername, replaces the CONNECT's (the certificate's
	// CN for use_identity_as_username); HasUsername false makes the client
	// anonymous.
	SetUsername bool
	Username    string
	HasUsername bool
	// ClientID, when not empty, replaces the client id
	// (use_username_as_clientid, or an assigned id of the broker's).
	ClientID string
	// Data becomes Client.Data: the broker's own state of the connection.
	Data any
	// MaxPacketSize, when not 0 and below Options.MaxPacketSize, is this
	// client's own limit (told to MQTT 5 clients in CONNACK): a client
	// the broker restricts is refused bigger packets before they are read.
	MaxPacketSize int
}

// Client is a connected client as the hooks see it. The engine does not
// change it after CONNECT.
type Client struct {
	ID          string
	Username    string
	HasUsername bool
	Version     byte
	Bridge      bool
	Listener    string
	Remote      net.Addr
	TLS         *tls.ConnectionState
	// Data is Verdict.Data (nil for a session restored from storage).
	Data any
}

// Message is an application message as the engine routes it: immutable
// once published, shared by every subscriber's queue.
type Message struct {
	Topic   string
	Payload []byte
	QoS     byte
	Retain  bool
	From    string // publishing client id ("" for the broker's own)
	Created time.Time
	// Props are the MQTT 5 properties passed through to subscribers
	// (nil when none).
	Props *MessageProps
}

// MessageProps are the message properties MQTT 5 passes from publisher
// to subscriber unchanged (3.3.2.3), MessageExpiry as the interval the
// publisher gave (the engine sends the rest of it).
type MessageProps struct {
	PayloadFormat    byte
	HasPayloadFormat bool
	MessageExpiry    uint32 // seconds; 0 none
	ContentType      string
	ResponseTopic    string
	CorrelationData  []byte
	User             []UserProperty
}

// UserProperty is one MQTT 5 user property.
type UserProperty struct{ Key, Value string }

// Expired reports whether m's message expiry interval has passed at now.
func (m *Message) Expired(now time.Time) bool {
	return m.Props != nil && m.Props.MessageExpiry > 0 && now.Sub(m.Created) >= time.Duration(m.Props.MessageExpiry)*time.Second
}

// Queued is a message owed to a session as it will be delivered: at QoS
// (the lower of the message's and the subscription's), with Retain as
// delivered (retain as published, or a retained message sent on
// subscribe) and the subscription's identifier (0: none).
type Queued struct {
	M      *Message
	QoS    byte
	Retain bool
	SubID  uint32
}

// SessionRecord is a persistent session's state for SaveSession.
type SessionRecord struct {
	ClientID string
	Username string
	Version  byte
	// Expiry is the session expiry interval in seconds (0xFFFFFFFF: never;
	// a 3.1.1 persistent session never expires).
	Expiry uint32
	// Disconnected is when its last connection ended (zero: it was
	// connected when saved): its expiry runs from then, across restarts.
	Disconnected time.Time
}

// NopHooks accepts every client, allows every topic and stores nothing:
// embed it and override what you need.
type NopHooks struct{}

func (NopHooks) Authenticate(*ConnectRequest) Verdict        { return Verdict{} }
func (NopHooks) MayPublish(*Client, string) bool             { return true }
func (NopHooks) MayRead(*Client, string) bool                { return true }
func (NopHooks) Connected(*Client, bool)                     {}
func (NopHooks) Disconnected(*Client, error)                 {}
func (NopHooks) Published(*Client, *Message)                 {}
func (NopHooks) Delivered(*Client, *Message)                 {}
func (NopHooks) SaveSession(SessionRecord)                   {}
func (NopHooks) DeleteSession(string)                        {}
func (NopHooks) SaveSubscription(string, topic.Subscription) {}
func (NopHooks) DeleteSubscription(string, string)           {}
func (NopHooks) SaveRetained(*Message)                       {}
func (NopHooks) DeleteRetained(string)                       {}
func (NopHooks) SaveQueued(string, uint64, Queued)           {}
func (NopHooks) DeleteQueued(string, uint64)                 {}

// v3Code is the 3.1.1 CONNACK return code for an MQTT 5 refusal, as
// mosquitto maps them.
func v3Code(c mqttwire.ReasonCode) mqttwire.ReasonCode {
	switch c {
	case mqttwire.UnsupportedProtocolVersion:
		return 1
	case mqttwire.ClientIDNotValid:
		return 2
	case mqttwire.ServerUnavailable, mqttwire.ServerBusy, mqttwire.ServerShuttingDown:
		return 3
	case mqttwire.BadUsernameOrPassword:
		return 4
	}
	return 5 // not authorised
}
