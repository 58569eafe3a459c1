// Command mqttctl takes an operator from nothing to a secured MQTT
// deployment: certificates (pki), password and ACL files, mosquitto
// configurations and a bundled broker.
package main

import (
	"os"
)

func main() {
	os.Exit(run(os.Args[1:], newStreams(os.Stdin, os.Stdout, os.Stderr)))
}
