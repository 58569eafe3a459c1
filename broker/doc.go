// Package broker is mqttctl's bundled MQTT broker. It runs the engine
// github.com/mochi-mqtt/server/v2 behind this package's small API, built only
// from the confgen model, so that `mqttctl serve` enforces exactly what a
// generated mosquitto.conf says, with mosquitto's semantics: TLS listeners
// (one-way and mutual), password files, use_identity_as_username, ACLs, a
// connect deadline, per-listener connection limits and SIGHUP reloads, and
// refuses at start-up every mosquitto.conf option it does not implement
// (confgen.CheckServe).
package broker
