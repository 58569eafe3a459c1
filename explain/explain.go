// Package explain holds the plain-words explanations of TLS and MQTT
// failures that `mqttctl check` (live connections) and `mqttctl pki check`
// (files on disk) share, so both say the same thing the same way.
package explain

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Problem is a cause in plain words and what to do about it.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

func (p Problem) String() string {
	if p.Fix == "" {
		return p.Message
	}
	return p.Message + "\n  fix: " + p.Fix
}

// The fix commands other packages name live here, so that a library
// package never spells a command's flags itself. Names and paths in them
// are shell-quoted (ShellWord): a name may hold $( ) or backquotes, which
// a pasted command would run.

// ShellWord quotes s for a POSIX shell when it needs it.
func ShellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func hostFlags(hosts []string) string {
	var b strings.Builder
	for _, h := range hosts {
		b.WriteString(" --host " + ShellWord(h))
	}
	return strings.TrimSpace(b.String())
}

// ReissueServer is the command that issues server certificate name (the
// default broker's is "server") of pkiDir again, with hosts as its names
// ("--host ..." when hosts is empty).
func ReissueServer(name, pkiDir string, hosts []string) string {
	h := hostFlags(hosts)
	if h == "" {
		h = "--host ..."
	}
	return fmt.Sprintf("mqttctl pki issue server %s --dir %s --force %s", ShellWord(name), ShellWord(pkiDir), h)
}

// IssueServer is the command that issues a new server certificate.
func IssueServer(name, pkiDir string, hosts []string) string {
	return strings.TrimSpace(fmt.Sprintf("mqttctl pki issue server %s --dir %s %s", ShellWord(name), ShellWord(pkiDir), hostFlags(hosts)))
}

// Reissue is the command that issues a certificate of the given profile
// (bridge, ...) again under name, with a new key.
func Reissue(profile, name, pkiDir string) string {
	return "mqttctl pki issue " + profile + " " + ShellWord(name) + DirFlag(pkiDir) + " --force"
}

// Revoke is the command that revokes the valid certificates of a name.
func Revoke(name, pkiDir string) string {
	return "mqttctl pki revoke " + ShellWord(name) + DirFlag(pkiDir)
}

// RevokeSerial is the command that revokes one certificate by serial.
func RevokeSerial(serial, pkiDir string) string {
	return "mqttctl pki revoke --serial " + ShellWord(serial) + DirFlag(pkiDir)
}

// ReissueClient is the command that issues client name again, with a new key.
func ReissueClient(name, pkiDir string) string {
	cmd := "mqttctl pki issue client " + ShellWord(name)
	if pkiDir != "" {
		cmd += " --dir " + ShellWord(pkiDir)
	}
	return cmd + " --force"
}

// DirFlag is the --dir part of a suggested pki command: empty for the
// default directory "pki".
func DirFlag(pkiDir string) string {
	if pkiDir == "" || pkiDir == "pki" {
		return ""
	}
	return " --dir " + ShellWord(pkiDir)
}

// Renew is the command that renews a certificate in place, same names and
// key (rekey: a new key).
func Renew(name, pkiDir string, rekey bool) string {
	cmd := "mqttctl pki renew " + ShellWord(name) + DirFlag(pkiDir)
	if rekey {
		cmd += " --rekey"
	}
	return cmd
}

// Reindex is the command that records in index.yaml the certificates of
// pkiDir's CA that it does not list, keeping every entry and revocation.
func Reindex(pkiDir string) string {
	return "mqttctl pki reindex" + DirFlag(pkiDir)
}

// SignCSR is the command that signs a CSR with pkiDir's CA.
func SignCSR(pkiDir string) string {
	return "mqttctl pki sign --dir " + ShellWord(pkiDir) + " --csr FILE --profile client|server"
}

// NameMismatch: the server certificate does not name the host dialled.
func NameMismatch(host string, names []string, pkiDir string) Problem {
	have := "no names at all"
	if len(names) > 0 {
		have = strings.Join(names, ", ")
	}
	all := append(append([]string(nil), names...), host)
	return Problem{
		Code:    "name-mismatch",
		Message: fmt.Sprintf("the broker's certificate does not name %s, the host you dialled; it names %s (clients report \"hostname mismatch\" or \"A TLS error occurred\")", host, have),
		Fix:     fmt.Sprintf("dial one of those names, or reissue the broker certificate with %s added: %s, then restart the broker (or send it SIGHUP)", host, ReissueServer("server", pkiDir, all)),
	}
}

// Expired: a certificate's validity ended.
func Expired(what string, notAfter time.Time, fix string) Problem {
	return Problem{
		Code:    "expired",
		Message: fmt.Sprintf("the %s expired on %s (%d days ago)", what, notAfter.UTC().Format(time.DateOnly), int(time.Since(notAfter).Hours()/24)),
		Fix:     fix,
	}
}

// NotYetValid: a certificate's validity has not begun (often a wrong clock).
func NotYetValid(what string, notBefore time.Time) Problem {
	return Problem{
		Code:    "not-yet-valid",
		Message: fmt.Sprintf("the %s is not valid before %s", what, notBefore.UTC().Format(time.RFC3339)),
		Fix:     "check the clocks of this machine and the broker (timedatectl)",
	}
}

// KeyMismatch: a key file is not the certificate's key.
func KeyMismatch(keyFile, certFile string) Problem {
	return Problem{
		Code:    "key-mismatch",
		Message: fmt.Sprintf("the key %s does not belong to the certificate %s: the TLS handshake cannot succeed with this pair", keyFile, certFile),
		Fix:     "use the key that was made with this certificate, or issue a new pair: mqttctl pki issue client NAME --force",
	}
}

// UnknownServerCA: the broker's chain does not lead to the CA given.
func UnknownServerCA(issuer, caFile string) Problem {
	return Problem{
		Code:    "unknown-server-ca",
		Message: fmt.Sprintf("the broker's certificate is issued by %q, which %s does not hold", issuer, caFile),
		Fix:     "give the broker's CA with --cafile (with mqttctl: the ca.crt of the broker's pki directory)",
	}
}

// SameNameOtherServerCA: the CA file holds a CA with the name of the
// broker's issuer, but another key: every mqttctl CA is "CN=mqttctl Root
// CA", so the name alone tells them apart from nothing. ids describe the
// two keys (key ids, fingerprints).
func SameNameOtherServerCA(issuer, caFile, caIDs, brokerIDs string) Problem {
	return Problem{
		Code: "unknown-server-ca",
		Message: fmt.Sprintf("the broker's certificate is issued by a different CA with the same name, %q: %s holds %s; the broker's issuer is %s",
			issuer, caFile, caIDs, brokerIDs),
		Fix: "give the broker's own CA with --cafile (with mqttctl: the ca.crt of the pki directory that issued the broker's certificate; mqttctl pki inspect shows its key id)",
	}
}

// ClientCertRequired: the broker wants a client certificate and got none.
func ClientCertRequired() Problem {
	return Problem{
		Code:    "client-cert-required",
		Message: "the broker requires a client certificate (mutual TLS) and none was sent (mosquitto_pub says \"The connection was lost.\")",
		Fix:     "add --cert and --key; make a pair with: mqttctl pki issue client NAME",
	}
}

// UnknownClientCA: the broker does not trust the client certificate's CA.
func UnknownClientCA(issuer string) Problem {
	return Problem{
		Code:    "unknown-client-ca",
		Message: fmt.Sprintf("the broker does not trust the CA that signed your client certificate (%s): the broker's cafile holds another CA (openssl: alert unknown ca)", issuer),
		Fix:     "use a client certificate from the broker's CA (mqttctl pki issue client NAME --dir BROKER_PKI), or add this CA to the broker's cafile",
	}
}

// ClientCertRefused: the broker refused the client certificate for another reason.
func ClientCertRefused(alert string) Problem {
	return Problem{
		Code:    "client-cert-refused",
		Message: "the broker refused your client certificate: " + alert,
		Fix:     "check it with: mqttctl pki inspect CERT (it must be a client certificate, with clientAuth, valid now, from the broker's CA)",
	}
}

// NotClientCert: the certificate cannot authenticate a client.
func NotClientCert(certFile string) Problem {
	return Problem{
		Code:    "not-client-cert",
		Message: fmt.Sprintf("%s is not a client certificate (no clientAuth usage); brokers refuse it (openssl: unsupported certificate purpose)", certFile),
		Fix:     "issue a client certificate: mqttctl pki issue client NAME",
	}
}

// TLSVersionRefused: the listener does not accept the TLS version offered.
func TLSVersionRefused(offered string) Problem {
	return Problem{
		Code:    "tls-version",
		Message: fmt.Sprintf("the listener refuses %s (its tls_version is higher; openssl: alert protocol version)", offered),
		Fix:     "use TLS 1.3 on the client, or lower the broker's tls_version to tlsv1.2 (never below)",
	}
}

// PlainOnTLSPort: plain MQTT was spoken to a TLS listener.
func PlainOnTLSPort(url string) Problem {
	return Problem{
		Code:    "plain-on-tls",
		Message: "this port speaks TLS, but the client spoke plain MQTT (mosquitto_pub: \"Protocol error\" or \"The connection was lost\")",
		Fix:     "use mqtts:// (mosquitto_pub: add --cafile) instead of " + url,
	}
}

// WSOnTLSPort: plain ws:// was spoken to a wss (TLS) listener.
func WSOnTLSPort(url string) Problem {
	wss := url
	if strings.HasPrefix(url, "ws://") {
		wss = "wss://" + strings.TrimPrefix(url, "ws://")
	}
	return Problem{
		Code:    "ws-on-tls",
		Message: "this port speaks TLS: use wss:// (the client sent a plain ws:// upgrade, which the broker's TLS listener cannot read, so it closed the connection)",
		Fix:     "connect to " + wss + " instead of " + url + " (with --cafile if the broker's CA is not in the system store)",
	}
}

// TLSOnPlainPort: TLS was spoken to a plain MQTT listener.
func TLSOnPlainPort(url string) Problem {
	return Problem{
		Code:    "tls-on-plain",
		Message: "this port speaks plain MQTT, but the client started TLS (openssl: \"wrong version number\")",
		Fix:     "use mqtt:// for this port, or the broker's TLS port, instead of " + url,
	}
}

// NotMQTT: the port answers, but in a protocol that is not MQTT (an HTTP
// server, for example).
func NotMQTT(url, what string) Problem {
	return Problem{
		Code:    "not-mqtt",
		Message: "this port does not speak MQTT: it answered like " + what,
		Fix:     "check the port number: " + url + " reaches another service (a broker's websockets listener takes ws:// or wss:// clients, not mqtt:// or mqtts://)",
	}
}

// MixedContent: a page served over https opening ws:// (not wss://) to a
// host other than this machine; browsers block it.
func MixedContent(url string) Problem {
	return Problem{
		Code:    "mixed-content",
		Message: "a web page served over https cannot open " + url + ": browsers block ws:// to another host as mixed content (Chromium: \"This request has been blocked; this endpoint must be available over WSS\")",
		Fix:     "give the broker a wss listener (mqttctl config mosquitto --websockets ADDR:PORT) and connect with wss:// to a name in its certificate",
	}
}

// OriginRefused: the listener refused the upgrade from a page of origin
// (mqttctl serve's "# mqttctl: http_origin" list does not hold it).
func OriginRefused(url, origin string) Problem {
	return Problem{
		Code:    "origin-refused",
		Message: "the broker refuses WebSocket connections from pages at " + origin + " (it answered the upgrade with HTTP 403 Forbidden): a browser page there cannot connect to " + url,
		Fix:     "add the page's origin to the websockets listener of the broker's config, '# mqttctl: http_origin " + origin + "' (one line per origin), and restart the broker; or open the page from an origin the listener lists",
	}
}

// NotWebSocket: the port did not accept a WebSocket upgrade.
func NotWebSocket(url, answer string) Problem {
	return Problem{
		Code:    "not-websocket",
		Message: "this port did not accept a WebSocket upgrade at " + url + ": " + answer,
		Fix:     "check the port: a broker's MQTT listener takes mqtt:// or mqtts://, its websockets listener (protocol websockets) ws:// or wss://",
	}
}

// NoTLS: the port answered the TLS handshake with something that is
// neither TLS nor MQTT.
func NoTLS(url string) Problem {
	return Problem{
		Code:    "no-tls",
		Message: "this port does not speak TLS, and does not answer a plain MQTT CONNECT either",
		Fix:     "check the host and port of " + url + ", and the broker's listener lines",
	}
}

// Silent: the port accepted the TCP connection and then said nothing
// within the time allowed.
func Silent(addr, step string, timeout time.Duration) Problem {
	return Problem{
		Code:    "silent",
		Message: fmt.Sprintf("%s accepted the TCP connection but did not answer the %s within %s", addr, step, timeout),
		Fix: "a plain MQTT port waits silently for CONNECT, so mqtts:// to a plain port looks like this (try mqtt://), as does a firewall or proxy that holds connections open; " +
			"otherwise the broker is overloaded: check its log, or allow more time with --timeout",
	}
}

// BadLogin: CONNACK 4 or 5 (v5 0x86/0x87).
func BadLogin(code byte, username string) Problem {
	switch code {
	case 4:
		return Problem{
			Code:    "bad-username-or-password",
			Message: "the broker answered CONNACK 4 (bad user name or password); with use_identity_as_username this means no client certificate was presented",
			Fix:     "send a client certificate (--cert, --key), or check the username and password",
		}
	}
	if username == "" {
		return Problem{
			Code:    "not-authorised",
			Message: "the broker answered CONNACK 5 (not authorised): anonymous clients are not allowed (allow_anonymous false)",
			Fix:     "log in with --username and --password-stdin (add a user with: mqttctl passwd add PASSWORD_FILE USER)",
		}
	}
	return Problem{
		Code:    "not-authorised",
		Message: fmt.Sprintf("the broker answered CONNACK 5 (not authorised) for user %s: unknown user or wrong password", username),
		Fix:     "check the password (mqttctl passwd verify PASSWORD_FILE " + username + "), or set it: mqttctl passwd add PASSWORD_FILE " + username + ", then SIGHUP the broker",
	}
}

// NotDelivered: the broker took a publish but delivered nothing back.
func NotDelivered(topic, user string) Problem {
	return Problem{
		Code:    "not-delivered",
		Message: fmt.Sprintf("the broker accepted the publish to %s but delivered nothing back: its ACL does not let %s write or read that topic", topic, user),
		Fix:     "pick a topic the ACL allows with --topic, or allow it: mqttctl acl add ACL_FILE readwrite TOPIC --user " + user + ", then SIGHUP the broker",
	}
}

// Unreachable: nothing listens or the network refuses.
func Unreachable(addr string, err error) Problem {
	return Problem{
		Code:    "unreachable",
		Message: fmt.Sprintf("cannot connect to %s: %v", addr, err),
		Fix:     "check that the broker runs and listens there (ss -ltn), and the host and port",
	}
}

// WriteCRL is the command that writes pkiDir's CRL again.
func WriteCRL(pkiDir string) string { return "mqttctl pki crl" + DirFlag(pkiDir) }

// CRLDir is the pki directory a broker's crlfile belongs to, for a fix
// command: the directory of a crl.pem, "" (a CRL of another tool) otherwise.
func CRLDir(crlFile string) (string, bool) {
	if filepath.Base(crlFile) != "crl.pem" {
		return "", false
	}
	return filepath.Dir(crlFile), true
}

// crlFix is how to get a current CRL to the broker.
func crlFix(crlFile string) string {
	dir, ok := CRLDir(crlFile)
	w := WriteCRL(dir)
	if !ok {
		w = "write a current CRL into " + crlFile + " (mqttctl pki crl, or the CA's own tool)"
	}
	return w + ", then reload the broker (mosquitto: SIGHUP; mqttctl serve rereads crlfile by itself); run it from cron well before the next update"
}

// CRLExpired: a CRL past its next update. OpenSSL (so mosquitto) and
// mqttctl serve then refuse every client certificate of its CA.
func CRLExpired(crlFile, issuer string, nextUpdate time.Time) Problem {
	return Problem{
		Code: "crl-expired",
		Message: fmt.Sprintf("the CRL of %s in %s expired on %s (its next update): mosquitto and mqttctl serve refuse every client certificate of that CA (clients see \"certificate expired\" or \"bad certificate\")",
			issuer, crlFile, nextUpdate.UTC().Format(time.RFC3339)),
		Fix: crlFix(crlFile),
	}
}

// CRLNotYetValid: a CRL whose this update is in the future (a clock ahead
// where it was written, or behind here). OpenSSL and serve refuse every
// client certificate of its CA until then.
func CRLNotYetValid(crlFile, issuer string, thisUpdate time.Time) Problem {
	return Problem{
		Code: "crl-not-yet-valid",
		Message: fmt.Sprintf("the CRL of %s in %s is not valid before %s (its this update): mosquitto and mqttctl serve refuse every client certificate of that CA until then",
			issuer, crlFile, thisUpdate.UTC().Format(time.RFC3339)),
		Fix: "check the clocks of this machine and the broker (timedatectl); or " + crlFix(crlFile),
	}
}

// CRLMissing: crlfile holds no CRL from a CA the broker trusts; OpenSSL
// refuses every client certificate that CA issued ("unable to get
// certificate CRL"), and so does serve.
func CRLMissing(crlFile, issuer string) Problem {
	return Problem{
		Code: "crl-missing",
		Message: fmt.Sprintf("%s holds no CRL from %s: mosquitto and mqttctl serve refuse every client certificate that CA issues (OpenSSL: unable to get certificate CRL)",
			crlFile, issuer),
		Fix: "add that CA's CRL to " + crlFile + " (cat its crl.pem >> " + crlFile + "), or take the CA out of cafile if it issues no clients",
	}
}

// CRLExpiredAtBroker: the broker refused a client certificate as expired
// that is valid: OpenSSL says "certificate expired" for an expired CRL too.
func CRLExpiredAtBroker(certFile string, notAfter time.Time, pkiDir string) Problem {
	return Problem{
		Code: "crl-expired",
		Message: fmt.Sprintf("the broker refused %s as expired, but it is valid until %s: the broker's CRL (crlfile) has most likely expired, and then mosquitto refuses every client certificate of that CA",
			certFile, notAfter.UTC().Format(time.DateOnly)),
		Fix: "on the broker's host: " + WriteCRL(pkiDir) + ", then reload the broker (mosquitto: SIGHUP; mqttctl serve rereads crlfile by itself); check it with: mqttctl pki check" + DirFlag(pkiDir),
	}
}

// Revoked: the client certificate is on its CA's CRL.
func Revoked(certFile, crlFile, name string) Problem {
	return Problem{
		Code:    "revoked",
		Message: fmt.Sprintf("%s is revoked: its serial is on the CRL in %s (openssl: certificate revoked)", certFile, crlFile),
		Fix:     "issue a new one: " + ReissueClient(name, ""),
	}
}

// ClosedAtOnce: the port accepted the TCP connection and closed it before
// saying anything, as mosquitto and mqttctl serve do on a full listener.
func ClosedAtOnce(addr, step string) Problem {
	_, port, _ := strings.Cut(addr, ":")
	if i := strings.LastIndex(addr, ":"); i >= 0 {
		port = addr[i+1:]
	}
	return Problem{
		Code: "closed-at-once",
		Message: fmt.Sprintf("%s accepted the TCP connection and closed it before the %s: the listener is most likely full (max_connections reached; mosquitto logs \"max_connections exceeded\", mqttctl serve \"max_connections reached\"), or something in between refuses your address (a firewall, proxy or tcp wrapper)",
			addr, step),
		Fix: fmt.Sprintf("look at the broker's log; raise max_connections on that listener, or find who holds its connections (on the broker: ss -tn state established '( sport = :%s )')", port),
	}
}
