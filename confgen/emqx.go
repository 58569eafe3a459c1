package confgen

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// EMQXUser is one entry of the users file EMQX 5's built-in database
// authenticator imports (POST /api/v5/authentication/ID/import_users
// ?type=hash): the hash in hex and the salt as text.
type EMQXUser struct {
	UserID       string `json:"user_id"`
	PasswordHash string `json:"password_hash"`
	Salt         string `json:"salt"`
	IsSuperuser  bool   `json:"is_superuser"`
}

// EMQXUsers converts a mosquitto password file without knowing a single
// password: mosquitto's $7$ is PBKDF2-HMAC-SHA512 with a 64-byte key, which
// EMQX's pbkdf2 algorithm (mac_fun sha512, dk_length 64) recomputes from
// the same salt and iteration count. EMQX has one iteration count per
// authenticator, so the users of the most common count are converted; a
// line that cannot be (another count, a $6$ hash, a salt that is not
// printable text, a damaged line) is reported at its line, never dropped
// silently. Hashes made by mqttctl have printable salts; mosquitto_passwd's
// usually do not: re-set those users with `mqttctl passwd add`.
func EMQXUsers(pf *PasswordFile, name string) (users []EMQXUser, iterations int, problems []Diagnostic) {
	count := map[int]int{}
	for _, l := range pf.Lines {
		if l.User == "" || l.Err != nil {
			continue
		}
		if h, err := ParseHash(l.Hash); err == nil && h.Kind == 7 {
			count[h.Iterations]++
		}
	}
	for it, n := range count {
		if n > count[iterations] || n == count[iterations] && it < iterations {
			iterations = it
		}
	}
	last := map[string]int{} // a duplicate user's last line wins, as in mosquitto
	for i, l := range pf.Lines {
		if l.User != "" {
			last[l.User] = i
		}
	}
	for i, l := range pf.Lines {
		if l.User == "" || last[l.User] != i {
			continue
		}
		pos := Pos{File: name, Line: l.Line}
		skip := func(f string, a ...any) {
			problems = append(problems, Diagnostic{Pos: pos, Msg: fmt.Sprintf("user %s not converted: ", l.User) + fmt.Sprintf(f, a...)})
		}
		if l.Err != nil {
			skip("%v", l.Err)
			continue
		}
		h, _ := ParseHash(l.Hash)
		switch {
		case h.Kind == KindArgon2id:
			skip("an $argon2id$ hash, which EMQX's pbkdf2 cannot check: set the password again with mqttctl passwd add --hash pbkdf2")
			continue
		case h.Kind != 7:
			skip("a $6$ (SHA-512) hash, which EMQX's pbkdf2 cannot check: set the password again with mqttctl passwd add")
			continue
		case h.Iterations != iterations:
			skip("%d iterations where the others have %d (EMQX has one count per authenticator): set the password again with mqttctl passwd add", h.Iterations, iterations)
			problems[len(problems)-1].Kind = &IterationsError{Want: iterations}
			continue
		case !printable(h.Salt):
			skip("its salt is not printable text, which EMQX's import needs (mosquitto_passwd makes such salts): set the password again with mqttctl passwd add")
			continue
		}
		users = append(users, EMQXUser{UserID: l.User, PasswordHash: hex.EncodeToString(h.Key), Salt: string(h.Salt)})
	}
	sort.Slice(users, func(i, j int) bool { return users[i].UserID < users[j].UserID })
	return users, iterations, problems
}

func printable(b []byte) bool {
	for _, c := range string(b) {
		if c > unicode.MaxASCII || !unicode.IsPrint(c) || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// EMQXOptions configures GenerateEMQX.
type EMQXOptions struct {
	PKIDir       string
	Mode         string // mtls or tls
	PasswordFile string // tls: required; mtls: optional
	Listen       string // [ADDR]:PORT, default 0.0.0.0:8883
	// ACLFile is the mosquitto ACL to carry over as acl.conf (EMQXACL).
	ACLFile string
	// ACLPath is where acl.conf will be (absolute), for emqx.conf.
	ACLPath string
}

// GenerateEMQX returns the files for EMQX 5.8: emqx.conf (an SSL listener
// with the pki's certificates, the only MQTT listener: EMQX's default tcp
// 1883, ws 8083 and wss 8084 are disabled, its HTTP API and dashboard bound
// to 127.0.0.1) and, with a password file, users.json for the built-in
// database with the matching pbkdf2 authenticator; with an ACL, acl.conf
// (EMQXACL) and the file authorization with no_match = deny. It also
// returns the password-file lines it could not convert.
//
// --mode mtls is refused: EMQX checks revocation only against the CRL it
// downloads from the distribution point a client certificate names (and
// the CRL must carry an Issuing Distribution Point); mqttctl's certificates
// and CRL have neither, so a revoked certificate would log in.
func GenerateEMQX(o EMQXOptions) (map[string][]byte, []Diagnostic, error) {
	pkiDir, err := filepath.Abs(o.PKIDir)
	if err != nil {
		return nil, nil, err
	}
	if o.Listen == "" {
		o.Listen = "0.0.0.0:8883"
	}
	bind, port, err := SplitListen(o.Listen)
	if err != nil {
		return nil, nil, optErr("Listen", err.Error())
	}
	if bind == "" {
		bind = "0.0.0.0"
	}
	switch o.Mode {
	case "mtls":
		return nil, nil, optErr("Mode", "mtls: EMQX 5.8 checks revocation only against a CRL it downloads from the URL each client certificate names (CRL distribution point, and an Issuing Distribution Point in the CRL); mqttctl's certificates and pki/crl.pem carry neither, so a revoked certificate would log in. Use mode tls (passwords), or a broker that reads pki/crl.pem (mosquitto, mqttctl serve)")
	case "tls":
		if o.PasswordFile == "" {
			return nil, nil, optErr("PasswordFile", "one-way TLS authenticates clients by password: give a password file")
		}
	default:
		return nil, nil, optErr("Mode", fmt.Sprintf("%q: use tls or mtls", o.Mode))
	}
	// Every value goes through hoconString.
	c := checked{check: hoconString}
	q := c.v
	var b strings.Builder
	var aclData []byte
	fmt.Fprintf(&b, "# EMQX 5.8 configuration written by mqttctl config emqx (mode %s).\n", o.Mode)
	fmt.Fprintf(&b, "listeners.ssl.default {\n  bind = %s\n  ssl_options {\n", q("listen address", net.JoinHostPort(bind, strconv.Itoa(port))))
	fmt.Fprintf(&b, "    cacertfile = %s\n    certfile = %s\n    keyfile = %s\n", q("CA path", filepath.Join(pkiDir, "ca.crt")),
		q("certificate path", filepath.Join(pkiDir, "server.crt")), q("key path", filepath.Join(pkiDir, "server.key")))
	b.WriteString("    versions = [\"tlsv1.3\", \"tlsv1.2\"]\n")
	b.WriteString("    verify = verify_none\n")
	b.WriteString("  }\n}\n")
	b.WriteString("# the only MQTT listener is the one above: EMQX's default plain (1883), WebSocket (8083) and secure WebSocket (8084) listeners are off\n")
	b.WriteString("listeners.tcp.default.enable = false\nlisteners.ws.default.enable = false\nlisteners.wss.default.enable = false\n")
	b.WriteString("# the HTTP API (users.json is imported through it) and dashboard answer on this machine only\ndashboard.listeners.http.bind = \"127.0.0.1:18083\"\n")
	// The users users.json will have: the ACL's patterns are expanded for
	// each of them.
	var problems []Diagnostic
	var users []EMQXUser
	var names []string
	iterations := 0
	if o.PasswordFile != "" {
		pf, err := ReadPasswordFile(o.PasswordFile)
		if err != nil {
			return nil, nil, err
		}
		users, iterations, problems = EMQXUsers(pf, o.PasswordFile)
		if len(users) == 0 {
			return nil, problems, fmt.Errorf("%s: no user could be converted for EMQX", o.PasswordFile)
		}
		for _, u := range users {
			if _, err := jsonString("username", u.UserID); err != nil {
				return nil, problems, err
			}
			names = append(names, u.UserID)
		}
	}
	if o.ACLFile != "" {
		acl, err := ReadACL(o.ACLFile)
		if err != nil {
			return nil, nil, err
		}
		if o.ACLPath == "" {
			return nil, nil, optErr("ACLPath", "the path acl.conf will have is needed for emqx.conf")
		}
		data, err := EMQXACL(acl, o.ACLFile, names)
		if err != nil {
			return nil, nil, err
		}
		fmt.Fprintf(&b, `# the ACL (acl.conf): first match wins, nothing else is allowed
authorization {
  no_match = deny
  deny_action = ignore
  sources = [
    { type = file, enable = true, path = %s }
  ]
}
`, q("acl.conf path", o.ACLPath))
		aclData = data
	} else {
		b.WriteString("# no ACL given: as mosquitto without acl_file, every authenticated client may publish and subscribe to every topic\n")
	}
	if c.err != nil {
		return nil, nil, c.err
	}
	files := map[string][]byte{}
	if aclData != nil {
		files["acl.conf"] = aclData
	}
	if o.PasswordFile != "" {
		fmt.Fprintf(&b, `authentication = [
  {
    mechanism = password_based
    backend = built_in_database
    user_id_type = username
    password_hash_algorithm { name = pbkdf2, mac_fun = sha512, iterations = %d, dk_length = 64 }
  }
]
# Import users.json (hashes as written by mqttctl): POST /api/v5/authentication/password_based:built_in_database/import_users?type=hash
`, iterations)
		data, err := json.MarshalIndent(users, "", "  ")
		if err != nil {
			return nil, nil, err
		}
		files["users.json"] = append(data, '\n')
	}
	files["emqx.conf"] = []byte(b.String())
	return files, problems, nil
}
