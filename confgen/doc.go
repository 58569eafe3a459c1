// Package confgen is mqttctl's config model: it parses and renders
// mosquitto.conf, password files and ACL files. The bundled broker and the
// `config` command both go through it, so they cannot disagree.
package confgen
