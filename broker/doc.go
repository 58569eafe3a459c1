// Package broker is mqttctl's bundled MQTT broker, built only from the
// confgen model.
package broker
