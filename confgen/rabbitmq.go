package confgen

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// RabbitNode is one node of a RabbitMQ cluster.
type RabbitNode struct {
	Name     string // the node's short name: rabbit1 becomes rabbit1@HOST
	Host     string // the host clients dial, and the node's host name
	MQTTPort int
}

// RabbitOptions configures GenerateRabbitMQ.
type RabbitOptions struct {
	PKIDir  string
	Mode    string // mtls (certificate login) or tls (passwords)
	Nodes   []RabbitNode
	ACLFile string
	// Users are the MQTT identities to create: the CNs of the pki's client
	// certificates (mtls) or the password file's users (tls).
	Users []string
	// Bind is the address the MQTT listeners bind to ("" for Host).
	Bind string
	// Definitions is where definitions.json will be (absolute): nodes
	// import it at boot. "" leaves the import to rabbitmqctl.
	Definitions string
}

// RabbitDefaultUser is the default user the generated configuration makes
// unusable (RabbitMQ's own default is guest/guest).
const RabbitDefaultUser = "mqttctl-default-unused"

// RabbitFiles is what GenerateRabbitMQ makes: per node a rabbitmq.conf and
// an enabled_plugins file, and one definitions.json for the cluster.
type RabbitFiles struct {
	Conf        map[string][]byte // by node name
	Plugins     []byte
	Definitions []byte
	Warnings    []string
}

// GenerateRabbitMQ writes a RabbitMQ 3.10+ cluster configuration with the
// MQTT plugin over TLS, from the same PKI, identities and ACL as the
// mosquitto configuration.
//
// RabbitMQ lets a username and password sent in CONNECT win over the
// certificate's CN. In mtls mode the users are therefore made without
// passwords: a client that sends credentials is refused instead of logging
// in as someone else (mosquitto's use_identity_as_username ignores them).
func GenerateRabbitMQ(o RabbitOptions) (*RabbitFiles, error) {
	if len(o.Nodes) == 0 {
		return nil, optErr("Nodes", "give at least one node, NAME=HOST:MQTTPORT")
	}
	if o.Mode != "mtls" && o.Mode != "tls" {
		return nil, optErr("Mode", fmt.Sprintf("%q: use mtls (certificate login) or tls (passwords)", o.Mode))
	}
	pkiDir, err := filepath.Abs(o.PKIDir)
	if err != nil {
		return nil, err
	}
	names := map[string]bool{}
	var cluster []string
	for _, n := range o.Nodes {
		if n.Name == "" || strings.ContainsAny(n.Name, "@ /") || names[n.Name] {
			return nil, optErr("Nodes", fmt.Sprintf("node name %q: one word, unique, without @", n.Name))
		}
		names[n.Name] = true
		cluster = append(cluster, n.Name+"@"+n.Host)
		for _, ext := range []string{".crt", ".key"} {
			if _, err := os.Stat(filepath.Join(pkiDir, "servers", n.Name+ext)); err != nil {
				return nil, &OptionError{Field: "Nodes", Msg: fmt.Sprintf("node %s has no certificate: %s is missing", n.Name, filepath.Join(pkiDir, "servers", n.Name+ext)),
					Err: &MissingCertError{Path: filepath.Join(pkiDir, "servers", n.Name+ext), Profile: "server", Name: n.Name, PKIDir: o.PKIDir, Host: n.Host}}
			}
		}
	}
	f := &RabbitFiles{Conf: map[string][]byte{}}
	// A node that does not import definitions makes a default user
	// (guest/guest). A username and password in CONNECT beat the
	// certificate, so that user must be useless: a random password and no
	// permissions. Delete it once the cluster runs (rabbitmqctl delete_user).
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	for _, n := range o.Nodes {
		var b strings.Builder
		fmt.Fprintf(&b, "# RabbitMQ configuration of node %s@%s, written by mqttctl config rabbitmq (mode %s).\n", n.Name, n.Host, o.Mode)
		bind := o.Bind
		if bind == "" {
			bind = n.Host
		}
		fmt.Fprintf(&b, "listeners.tcp = none\nmqtt.listeners.tcp = none\nmqtt.listeners.ssl.default = %s:%d\n", bind, n.MQTTPort)
		fmt.Fprintf(&b, "ssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n",
			filepath.Join(pkiDir, "ca.crt"), filepath.Join(pkiDir, "servers", n.Name+".crt"), filepath.Join(pkiDir, "servers", n.Name+".key"))
		b.WriteString("ssl_options.versions.1 = tlsv1.3\nssl_options.versions.2 = tlsv1.2\n")
		if o.Mode == "mtls" {
			b.WriteString("ssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = true\n")
			b.WriteString("# the certificate's CN is the username (mosquitto: use_identity_as_username)\nmqtt.ssl_cert_login = true\nssl_cert_login_from = common_name\n")
		} else {
			b.WriteString("ssl_options.verify = verify_none\nssl_options.fail_if_no_peer_cert = false\n")
		}
		b.WriteString("mqtt.allow_anonymous = false\nmqtt.vhost = /\nmqtt.exchange = amq.topic\n")
		fmt.Fprintf(&b, "# the default user a joining node makes: unusable (delete it: rabbitmqctl delete_user %s)\n", RabbitDefaultUser)
		fmt.Fprintf(&b, "default_user = %s\ndefault_pass = %s\ndefault_permissions.configure = ^$\ndefault_permissions.read = ^$\ndefault_permissions.write = ^$\ndefault_user_tags.administrator = false\n",
			RabbitDefaultUser, hex.EncodeToString(secret))
		b.WriteString("cluster_formation.peer_discovery_backend = classic_config\n")
		for i, c := range cluster {
			fmt.Fprintf(&b, "cluster_formation.classic_config.nodes.%d = %s\n", i+1, c)
		}
		if o.Definitions != "" && n.Name == o.Nodes[0].Name {
			// Imported at boot by the first node only (two nodes importing
			// while the cluster forms leave the vhost down on one); the
			// others get them by joining. A node that loads definitions
			// makes no default guest user.
			fmt.Fprintf(&b, "definitions.import_backend = local_filesystem\ndefinitions.local.path = %s\n", o.Definitions)
		}
		f.Conf[n.Name] = []byte(b.String())
	}
	f.Plugins = []byte("[rabbitmq_mqtt].\n")

	type user struct {
		Name         string   `json:"name"`
		PasswordHash string   `json:"password_hash"`
		Hashing      string   `json:"hashing_algorithm"`
		Tags         []string `json:"tags"`
	}
	type perm struct {
		User      string `json:"user"`
		Vhost     string `json:"vhost"`
		Configure string `json:"configure"`
		Write     string `json:"write"`
		Read      string `json:"read"`
	}
	type topicPerm struct {
		User     string `json:"user"`
		Vhost    string `json:"vhost"`
		Exchange string `json:"exchange"`
		Write    string `json:"write"`
		Read     string `json:"read"`
	}
	defs := struct {
		Users            []user      `json:"users"`
		Vhosts           []any       `json:"vhosts"`
		Permissions      []perm      `json:"permissions"`
		TopicPermissions []topicPerm `json:"topic_permissions"`
	}{Users: []user{}, Vhosts: []any{map[string]string{"name": "/"}}, Permissions: []perm{}, TopicPermissions: []topicPerm{}}
	var acl *ACL
	if o.ACLFile != "" {
		if acl, err = ReadACL(o.ACLFile); err != nil {
			return nil, err
		}
	}
	users := append([]string(nil), o.Users...)
	sort.Strings(users)
	for _, u := range users {
		defs.Users = append(defs.Users, user{Name: u, Hashing: "rabbit_password_hashing_sha256", Tags: []string{}})
		defs.Permissions = append(defs.Permissions, perm{User: u, Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"})
		if acl != nil {
			read, write, refused := aclRegexps(acl, u, o.ACLFile)
			if len(refused) > 0 {
				return nil, fmt.Errorf("%s (remove the deny line, or narrow the allow lines so they do not grant it)", strings.Join(refused, "; "))
			}
			defs.TopicPermissions = append(defs.TopicPermissions, topicPerm{User: u, Vhost: "/", Exchange: "amq.topic", Write: write, Read: read})
		}
	}
	if o.Mode == "tls" && len(users) > 0 {
		f.Warnings = append(f.Warnings, "RabbitMQ cannot check mosquitto's $7$ hashes: the users are made without a password; set each with: rabbitmqctl change_password USER (a user without one cannot log in)")
	}
	if f.Definitions, err = json.MarshalIndent(defs, "", "  "); err != nil {
		return nil, err
	}
	f.Definitions = append(f.Definitions, '\n')
	return f, nil
}

// topicRegexp turns an MQTT filter into a regular expression on RabbitMQ
// routing keys (levels joined by '.', anchored): '+' is one level, '#' the
// rest (or none), %u and %c RabbitMQ's {username} and {client_id}.
func topicRegexp(filter string) string {
	levels := strings.Split(filter, "/")
	var b strings.Builder
	for i, l := range levels {
		switch {
		case l == "#":
			if i == 0 {
				b.WriteString(".*")
			} else {
				b.WriteString(`(\..*)?`)
			}
			return b.String()
		case i > 0:
			b.WriteString(`\.`)
		}
		switch l {
		case "+":
			b.WriteString(`[^.]*`)
		case "%u":
			b.WriteString("{username}")
		case "%c":
			b.WriteString("{client_id}")
		default:
			b.WriteString(regexp.QuoteMeta(l))
		}
	}
	return b.String()
}

// aclRegexps are the read and write regular expressions of user u: its
// own block and the patterns (the rules before any user block are
// mosquitto's anonymous clients', which RabbitMQ does not admit). A deny line cannot be expressed (RabbitMQ
// has one allow expression per direction): it is returned, and the caller
// refuses (leaving it out would grant what it denies).
func aclRegexps(acl *ACL, u, file string) (read, write string, warns []string) {
	var r, w []string
	add := func(rule ACLRule) {
		if rule.Access == Deny {
			warns = append(warns, fmt.Sprintf("%s:%d: deny %s cannot be expressed in RabbitMQ topic permissions (one allow expression per direction): left out, RabbitMQ would grant what it denies", file, rule.Line, rule.Topic))
			return
		}
		re := topicRegexp(rule.Topic)
		if rule.Access&Read != 0 {
			r = append(r, re)
		}
		if rule.Access&Write != 0 {
			w = append(w, re)
		}
	}
	for _, rule := range acl.Patterns {
		add(rule)
	}
	if ub := acl.User(u); ub != nil {
		for _, rule := range ub.Rules {
			add(rule)
		}
	}
	join := func(res []string) string {
		if len(res) == 0 {
			return "^$" // nothing: an empty routing key only
		}
		return "^(" + strings.Join(res, "|") + ")$"
	}
	return join(r), join(w), warns
}
