package pki

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// CHeader renders a device's CA certificate, certificate (with its chain)
// and private key as C string literals, the way ESP-IDF and Arduino
// firmware embeds them (esp_mqtt_client_config_t's broker.verification.
// certificate, credentials.authentication.certificate and .key;
// WiFiClientSecure's setCACert, setCertificate, setPrivateKey):
//
//	static const char mqtt_ca_pem[] = "-----BEGIN CERTIFICATE-----\n" ...;
//
// The symbols are the same in every device's header, so that one firmware
// source builds with any of them; mqtt_client_id is the device's name.
func CHeader(name string, ca, cert, key []byte) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "/* %s.h: MQTT credentials of device %s, written by mqttctl pki issue client --batch.\n", commentText(name), commentText(name))
	b.WriteString(" * It holds the device's private key: keep it out of version control. */\n")
	b.WriteString("#ifndef MQTTCTL_DEVICE_CREDENTIALS_H\n#define MQTTCTL_DEVICE_CREDENTIALS_H\n\n")
	fmt.Fprintf(&b, "static const char mqtt_client_id[] = \"%s\";\n\n", cString(name))
	for _, v := range []struct {
		sym  string
		data []byte
	}{{"mqtt_ca_pem", ca}, {"mqtt_cert_pem", cert}, {"mqtt_key_pem", key}} {
		fmt.Fprintf(&b, "static const char %s[] =", v.sym)
		for _, line := range strings.SplitAfter(string(v.data), "\n") {
			if line != "" {
				fmt.Fprintf(&b, "\n    \"%s\"", cString(line))
			}
		}
		b.WriteString(";\n\n")
	}
	b.WriteString("#endif\n")
	return []byte(b.String())
}

// cString escapes s for a C string literal: printable ASCII as it is, '"',
// '\\' and '?' (trigraphs) escaped, a newline as \n, every other byte in
// octal (three digits, so a digit after it cannot extend it).
func cString(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\' || c == '?':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c >= 0x20 && c < 0x7f:
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "\\%03o", c)
		}
	}
	return b.String()
}

// commentText is s as it is in a C comment, the file's and the device's
// real name (an MQTT identity has no '/', '\\' or control character, so
// nothing in it can end the comment or splice a line); any other s is
// commentSafe.
func commentText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsAny(s, "/\\") && strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) < 0 {
		return s
	}
	return commentSafe(s)
}

// commentSafe is s for a C comment: letters, digits, '.', '_' and '-' as
// they are, any other byte as '_' (so that nothing can end the comment).
func commentSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '_'
	}, s)
}
