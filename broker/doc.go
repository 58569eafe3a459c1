// Package broker is mqttctl's bundled MQTT broker. It runs the project's
// own engine (broker/engine: connections, sessions, routing, flow control)
// behind this package's small API, built only from the confgen model, so
// that `mqttctl serve` enforces exactly what a generated mosquitto.conf
// says, with mosquitto's semantics: TLS listeners (one-way and mutual),
// password files, use_identity_as_username, ACLs, a connect deadline,
// per-listener connection limits and SIGHUP reloads, and refuses at
// start-up every mosquitto.conf option it does not implement
// (confgen.CheckServe).
//
// The broker owns every decision and side effect the engine asks for
// through its seam (engine.Hooks, auth.go): authentication, the ACL, the
// $mqttctl/ enrolment requests (enrolmqtt.go), logs and metrics, and
// persistence (persistence.go, in broker/persist). It also owns the
// listeners (listener.go, websocket.go: accept, TLS handshake, connection
// limits), live certificate and CRL reloads (watch.go, tls.go), TLS
// session tickets (tickets.go), bridges (bridge.go, in-process
// subscriptions of the engine) and the $SYS topics (sys.go).
package broker
