package confgen

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
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
	// Bind is the IP address the MQTT listeners bind to ("": HOST if it is
	// an IP address, else every interface; RabbitMQ binds no host name).
	Bind string
	// Definitions is where definitions.json will be (absolute): nodes
	// import it at boot. "" leaves the import to rabbitmqctl.
	Definitions string
	// Dir is the absolute directory the files go to (DIR/NODE/...): the
	// environment files name the node's files by absolute path, because
	// Debian's rabbitmq-server changes to /var/lib/rabbitmq first. ""
	// writes no environment files.
	Dir string
}

// RabbitDefaultUser is the default user the generated configuration makes
// unusable (RabbitMQ's own default is guest/guest).
const RabbitDefaultUser = "mqttctl-default-unused"

// RabbitFiles is what GenerateRabbitMQ makes: per node a rabbitmq.conf and
// an enabled_plugins file, and one definitions.json for the cluster.
type RabbitFiles struct {
	Conf map[string][]byte // by node name
	// Env is each node's rabbitmq-env.conf (by node name): its node name
	// and every variable it needs, for RABBITMQ_CONF_ENV_FILE.
	Env         map[string][]byte
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
	var bind string
	if o.Bind != "" {
		a, err := netip.ParseAddr(o.Bind)
		if err != nil || a.Zone() != "" {
			return nil, optErr("Bind", fmt.Sprintf("%q is not an IP address: RabbitMQ binds a listener to an IP address only (it refuses to boot on a host name); leave it out to listen on all interfaces", o.Bind))
		}
		bind = a.String()
	}
	names := map[string]bool{}
	var cluster []string
	for _, n := range o.Nodes {
		if !rabbitNodeName.MatchString(n.Name) || names[n.Name] {
			return nil, optErr("Nodes", fmt.Sprintf("node name %q: one word of letters, digits, '-' and '_', unique", n.Name))
		}
		if !validHost(n.Host) {
			return nil, optErr("Nodes", fmt.Sprintf("node %s: host %q is not a DNS name or IP address", n.Name, n.Host))
		}
		if strings.Contains(n.Host, ":") {
			return nil, optErr("Nodes", fmt.Sprintf("node %s: host %s: an IPv6 address cannot be the host of an Erlang node name (%s@HOST); give the node's DNS name", n.Name, n.Host, n.Name))
		}
		if n.MQTTPort < 1 || n.MQTTPort > 65535 {
			return nil, optErr("Nodes", fmt.Sprintf("node %s: port %d is not from 1 to 65535", n.Name, n.MQTTPort))
		}
		names[n.Name] = true
		cluster = append(cluster, n.Name+"@"+n.Host)
		for _, ext := range []string{".crt", ".key"} {
			if _, err := os.Stat(filepath.Join(pkiDir, "servers", n.Name+ext)); err != nil {
				return nil, &OptionError{Field: "Nodes", Msg: fmt.Sprintf("node %s has no certificate: %s is missing", n.Name, filepath.Join(pkiDir, "servers", n.Name+ext)),
					Err: &MissingCertError{Path: filepath.Join(pkiDir, "servers", n.Name+ext), Profile: "server", Name: n.Name, PKIDir: o.PKIDir, Host: n.Host}}
			}
		}
		crt := filepath.Join(pkiDir, "servers", n.Name+".crt")
		if err := certHasName(crt, n.Host); err != nil {
			return nil, optErr("Nodes", fmt.Sprintf("node %s: %v: clients dialling %s would fail the hostname check; issue it again with mqttctl pki issue server %s --dir %s --host %s --force, or give the host it names",
				n.Name, err, n.Host, n.Name, o.PKIDir, n.Host))
		}
	}
	f := &RabbitFiles{Conf: map[string][]byte{}, Env: map[string][]byte{}}
	onHost := map[string]int{} // nodes so far on each host
	// A node that does not import definitions makes a default user
	// (guest/guest). A username and password in CONNECT beat the
	// certificate, so that user must be useless: a random password and no
	// permissions. Delete it once the cluster runs (rabbitmqctl delete_user).
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	for _, n := range o.Nodes {
		// Every value goes through confValue: rabbitmq.conf has no quoting.
		var b strings.Builder
		c := checked{check: confValue}
		v := c.v
		fmt.Fprintf(&b, "# RabbitMQ configuration of node %s@%s, written by mqttctl config rabbitmq (mode %s).\n", v("node name", n.Name), v("node host", n.Host), o.Mode)
		// RabbitMQ takes an IP address here, never a host name: bind what
		// was asked, the node's address if HOST is one, or (a bare port)
		// every interface.
		listen := strconv.Itoa(n.MQTTPort)
		switch {
		case bind != "":
			listen = bind + ":" + listen
		case net.ParseIP(n.Host) != nil:
			listen = n.Host + ":" + listen
		default:
			b.WriteString("# HOST is a name, and RabbitMQ binds IP addresses only: the listener takes every interface (a port alone)\n")
		}
		fmt.Fprintf(&b, "listeners.tcp = none\nmqtt.listeners.tcp = none\nmqtt.listeners.ssl.default = %s\n", v("listen address", listen))
		fmt.Fprintf(&b, "ssl_options.cacertfile = %s\nssl_options.certfile = %s\nssl_options.keyfile = %s\n",
			v("CA path", filepath.Join(pkiDir, "ca.crt")), v("certificate path", filepath.Join(pkiDir, "servers", n.Name+".crt")), v("key path", filepath.Join(pkiDir, "servers", n.Name+".key")))
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
			fmt.Fprintf(&b, "cluster_formation.classic_config.nodes.%d = %s\n", i+1, v("cluster node", c))
		}
		if o.Definitions != "" && n.Name == o.Nodes[0].Name {
			// Imported at boot by the first node only (two nodes importing
			// while the cluster forms leave the vhost down on one); the
			// others get them by joining. A node that loads definitions
			// makes no default guest user.
			fmt.Fprintf(&b, "definitions.import_backend = local_filesystem\ndefinitions.local.path = %s\n", v("definitions path", o.Definitions))
		}
		if c.err != nil {
			return nil, c.err
		}
		f.Conf[n.Name] = []byte(b.String())
		if o.Dir != "" {
			env, err := rabbitEnv(o.Dir, n, onHost[n.Host])
			if err != nil {
				return nil, err
			}
			f.Env[n.Name] = env
		}
		onHost[n.Host]++
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
	var perms map[string]RabbitTopicPermission
	if o.ACLFile != "" {
		acl, err := ReadACL(o.ACLFile)
		if err != nil {
			return nil, err
		}
		if perms, err = RabbitTopicPermissions(acl, o.ACLFile, o.Users); err != nil {
			return nil, err
		}
	}
	users := append([]string(nil), o.Users...)
	sort.Strings(users)
	for _, u := range users {
		if _, err := jsonString("username", u); err != nil {
			return nil, err
		}
		defs.Users = append(defs.Users, user{Name: u, Hashing: "rabbit_password_hashing_sha256", Tags: []string{}})
		defs.Permissions = append(defs.Permissions, perm{User: u, Vhost: "/", Configure: ".*", Write: ".*", Read: ".*"})
		if perms != nil {
			p := perms[u]
			defs.TopicPermissions = append(defs.TopicPermissions, topicPerm{User: u, Vhost: "/", Exchange: "amq.topic", Write: p.Write, Read: p.Read})
		}
	}
	if perms != nil && len(users) > 1 {
		// RabbitMQ checks topic permissions when a subscription is made, and
		// keeps a persistent session's queue under its client id: another
		// user who connects with that client id and clean_session=false
		// consumes what was queued for the first (mosquitto delivers it
		// nothing). The topic permissions cannot close that.
		f.Warnings = append(f.Warnings, "RabbitMQ ties a persistent session to its client id, not its user: a user who connects with another user's client id (clean_session=false) receives the messages queued for that session, which mosquitto's ACL would deny. Give every device a client id nobody else knows (e.g. its CN plus a random suffix), or have subscribers use clean sessions")
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

// rabbitNodeName is the part of an Erlang node name before '@'.
var rabbitNodeName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// validHost accepts an IP address or a DNS name (letters, digits and '-'
// in labels of 1 to 63 characters, '.' between them).
func validHost(h string) bool {
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Zone() == ""
	}
	if h == "" || len(h) > 253 {
		return false
	}
	for _, l := range strings.Split(h, ".") {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// certHasName checks that the certificate in file is valid for host (a SAN
// DNS name or IP address), as a client's hostname check does.
func certHasName(file, host string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	blk, _ := pem.Decode(data)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return fmt.Errorf("%s is not a PEM certificate", file)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if err := c.VerifyHostname(host); err != nil {
		names := append([]string(nil), c.DNSNames...)
		for _, ip := range c.IPAddresses {
			names = append(names, ip.String())
		}
		return fmt.Errorf("%s is for %s, not %s", file, strings.Join(names, ", "), host)
	}
	return nil
}

// RabbitDistPort is the Erlang distribution port of a RabbitMQ node
// (AMQP's 5672 plus 20000); a second node on the same host takes the next.
const RabbitDistPort = 25672

// rabbitEnv is node n's rabbitmq-env.conf, sourced by the rabbitmq-server
// and rabbitmqctl scripts (variables without the RABBITMQ_ prefix). Every
// value passes confValue, whose characters are plain words to sh too.
// earlier is how many nodes before n share its host: they need their own
// distribution ports.
func rabbitEnv(dir string, n RabbitNode, earlier int) ([]byte, error) {
	var b strings.Builder
	c := checked{check: confValue}
	v := c.v
	env := filepath.Join(dir, n.Name, "rabbitmq-env.conf")
	fmt.Fprintf(&b, "# Environment of RabbitMQ node %s@%s, written by mqttctl config rabbitmq.\n", n.Name, n.Host)
	fmt.Fprintf(&b, "# As root: RABBITMQ_CONF_ENV_FILE=%s rabbitmq-server -detached\n", env)
	b.WriteString("# (and the same variable for rabbitmqctl, which then talks to this node).\n")
	fmt.Fprintf(&b, "NODENAME=%s@%s\n", v("node name", n.Name), v("node host", n.Host))
	if strings.Contains(n.Host, ".") {
		b.WriteString("# the host has dots: a long Erlang node name\nUSE_LONGNAME=true\n")
	}
	fmt.Fprintf(&b, "CONFIG_FILE=%s\n", v("config path", filepath.Join(dir, n.Name, "rabbitmq")))
	fmt.Fprintf(&b, "ENABLED_PLUGINS_FILE=%s\n", v("plugins path", filepath.Join(dir, n.Name, "enabled_plugins")))
	if earlier > 0 {
		fmt.Fprintf(&b, "# another node runs on %s: its own distribution port\nDIST_PORT=%d\n", n.Host, RabbitDistPort+earlier)
	}
	if c.err != nil {
		return nil, c.err
	}
	return []byte(b.String()), nil
}

// GrantRabbitAccess gives group (the rabbitmq account, which Debian's
// rabbitmq-server switches to before it reads anything) read access to
// exactly the files a node reads: the files written to o.Dir (wrote) and
// the pki files rabbitmq.conf names. Keys stay unreadable by others.
func GrantRabbitAccess(o RabbitOptions, wrote []string, group string) (BrokerAccess, error) {
	var a BrokerAccess
	if _, err := user.LookupGroup(group); err != nil {
		a.NoGroup = true
		return a, nil
	}
	pkiFiles := []string{filepath.Join(o.PKIDir, "ca.crt")}
	for _, n := range o.Nodes {
		pkiFiles = append(pkiFiles, filepath.Join(o.PKIDir, "servers", n.Name+".crt"), filepath.Join(o.PKIDir, "servers", n.Name+".key"))
	}
	for _, set := range []struct {
		root  string
		files []string
	}{{o.Dir, wrote}, {o.PKIDir, pkiFiles}} {
		var abs []string
		for _, f := range set.files {
			p, err := filepath.Abs(f)
			if err != nil {
				return a, err
			}
			abs = append(abs, p)
		}
		c, err := GrantGroupAccess(abs, group, set.root)
		a.Changes = append(a.Changes, c...)
		if err != nil {
			return a, err
		}
		for _, f := range abs {
			if d := Unreachable(f, group); d != "" {
				a.Warnings = append(a.Warnings, fmt.Sprintf("user %s cannot enter %s, so it cannot read %s: chmod o+x %s, or move the files", group, d, f, d))
				break
			}
		}
	}
	return a, nil
}
