package confgen

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sort"
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
}

// GenerateEMQX returns the files for EMQX 5.8: emqx.conf (an SSL listener
// with the pki's certificates; for mtls verify_peer, fail_if_no_peer_cert
// and the certificate CN as username) and, with a password file, users.json
// for the built-in database with the matching pbkdf2 authenticator. It
// also returns the password-file lines it could not convert.
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
	case "tls":
		if o.PasswordFile == "" {
			return nil, nil, optErr("PasswordFile", "one-way TLS authenticates clients by password: give a password file")
		}
	default:
		return nil, nil, optErr("Mode", fmt.Sprintf("%q: use tls or mtls", o.Mode))
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, "# EMQX 5.8 configuration written by mqttctl config emqx (mode %s).\n", o.Mode)
	fmt.Fprintf(&b, "listeners.ssl.default {\n  bind = %s\n  ssl_options {\n", q(fmt.Sprintf("%s:%d", bind, port)))
	fmt.Fprintf(&b, "    cacertfile = %s\n    certfile = %s\n    keyfile = %s\n", q(filepath.Join(pkiDir, "ca.crt")),
		q(filepath.Join(pkiDir, "server.crt")), q(filepath.Join(pkiDir, "server.key")))
	b.WriteString("    versions = [\"tlsv1.3\", \"tlsv1.2\"]\n")
	if o.Mode == "mtls" {
		b.WriteString("    verify = verify_peer\n    fail_if_no_peer_cert = true\n")
	} else {
		b.WriteString("    verify = verify_none\n")
	}
	b.WriteString("  }\n}\n")
	b.WriteString("# the plain listener EMQX starts by default\nlisteners.tcp.default.enable = false\n")
	if o.Mode == "mtls" {
		b.WriteString("# the certificate's CN is the username (mosquitto: use_identity_as_username); a username in CONNECT is ignored\nmqtt.peer_cert_as_username = cn\n")
	}
	files := map[string][]byte{}
	var problems []Diagnostic
	if o.PasswordFile != "" {
		pf, err := ReadPasswordFile(o.PasswordFile)
		if err != nil {
			return nil, nil, err
		}
		users, iterations, ps := EMQXUsers(pf, o.PasswordFile)
		problems = ps
		if len(users) == 0 {
			return nil, problems, fmt.Errorf("%s: no user could be converted for EMQX", o.PasswordFile)
		}
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
