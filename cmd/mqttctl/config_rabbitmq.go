package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/fsx"
	"github.com/mqttctl/mqttctl/pki"
)

func newConfigRabbitMQCmd(s *streams) *cobra.Command {
	var (
		o      confgen.RabbitOptions
		nodes  []string
		passwd string
		out    string
		force  bool
		group  string
	)
	cmd := &cobra.Command{
		Use:   "rabbitmq --pki DIR --node NAME=HOST:PORT... --out DIR",
		Short: "Write a RabbitMQ cluster configuration (MQTT plugin over TLS) from the same PKI, identities and ACL",
		Long: `rabbitmq writes, in --out, per node NAME/rabbitmq.conf and NAME/enabled_plugins, and one
definitions.json to import (rabbitmqctl import_definitions) with the users, their
permissions and topic permissions translated from the ACL: each user's block
becomes regular expressions on routing keys, exactly, or the command refuses the
rules RabbitMQ cannot hold at their file:line and writes nothing: deny lines; topics
with '.' or '*', which RabbitMQ's routing keys cannot tell apart from '/' and '+';
topics starting with '$'. A pattern line with %u (a whole level, as in devices/%u/#)
is written into each user's permissions with the username for %u, after its own
rules, as mosquitto applies it (a username with '+' or '#' gets nothing from patterns);
it is refused, naming the user, where a username makes the topic one of the above or
holds '/'. Patterns with %c are refused: the client chooses its id (use %u, the CN).

Each node serves MQTT over TLS with servers/NAME.crt, which must name HOST (mqttctl
pki issue server NAME --host HOST); the cluster forms from the node list
(classic_config). RabbitMQ binds listeners to IP addresses only: without --bind a
node whose HOST is a name listens on all interfaces, one whose HOST is an IP
address on that address.

--mode mtls: certificate login, the CN is the username (ssl_cert_login_from =
common_name), users are the CNs of the pki's valid client certificates. RabbitMQ lets
a username and password in CONNECT win over the certificate, so these users have no
password: a client that sends credentials is refused instead of logging in as
someone else. --mode tls: the password file's users (set their passwords with
rabbitmqctl change_password: RabbitMQ cannot check mosquitto's hashes).`,
		Example: `  mqttctl pki init --node rabbit1=localhost --node rabbit2=localhost --client alice
  mqttctl config rabbitmq --pki pki --mode mtls --acl acl --node rabbit1=localhost:8883 --node rabbit2=localhost:8893 --out rabbit/`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if out == "" {
				return errors.New("give the directory to write to with --out DIR")
			}
			if err := refuseDash(cmd, "out", "a directory of files"); err != nil {
				return err
			}
			for _, n := range nodes {
				name, hp, ok := strings.Cut(n, "=")
				host, port, err := splitHostPort(hp)
				if !ok || err != nil {
					return fmt.Errorf("--node %q: use NAME=HOST:MQTTPORT, e.g. rabbit1=mqtt1.example.com:8883", n)
				}
				o.Nodes = append(o.Nodes, confgen.RabbitNode{Name: name, Host: host, MQTTPort: port})
			}
			users, usersWarnings, err := confgen.RabbitUsers(o.Mode, passwd, func() ([]string, error) {
				entries, notes, err := (&pki.Dir{Path: o.PKIDir}).Entries()
				if err != nil {
					return nil, err
				}
				for _, n := range notes {
					fmt.Fprintf(s.Err, "note: %s\n", n)
				}
				return pki.CertLoginUsers(entries), nil
			})
			if err != nil {
				return err
			}
			o.Users = users
			if o.Dir, err = filepath.Abs(out); err != nil {
				return err
			}
			o.Definitions = filepath.Join(o.Dir, "definitions.json")
			f, err := confgen.GenerateRabbitMQ(o)
			if err != nil {
				return err
			}
			var t fsx.Txn
			defer t.Abort()
			var wrote, made []string
			committed := false
			defer func() { // a refusal leaves no directory it made, deepest first
				t.Abort() // its temporary files first
				sort.Slice(made, func(i, j int) bool { return len(made[i]) > len(made[j]) })
				for _, d := range made {
					if !committed {
						os.Remove(d)
					}
				}
			}()
			add := func(path string, data []byte) error {
				for d := filepath.Dir(path); ; d = filepath.Dir(d) {
					if _, err := os.Lstat(d); err == nil || d == filepath.Dir(d) {
						break
					}
					made = append(made, d)
				}
				if err := fsx.MkdirPrivate(filepath.Dir(path)); err != nil {
					return err
				}
				wrote = append(wrote, path)
				return t.Add(path, data, 0o600, force)
			}
			for _, n := range o.Nodes {
				if err := add(filepath.Join(out, n.Name, "rabbitmq.conf"), f.Conf[n.Name]); err != nil {
					return err
				}
				if err := add(filepath.Join(out, n.Name, "enabled_plugins"), f.Plugins); err != nil {
					return err
				}
				if err := add(filepath.Join(out, n.Name, "rabbitmq-env.conf"), f.Env[n.Name]); err != nil {
					return err
				}
			}
			if err := add(filepath.Join(out, "definitions.json"), f.Definitions); err != nil {
				return err
			}
			if err := t.Commit(); err != nil {
				return err
			}
			committed = true
			for _, p := range wrote {
				fmt.Fprintf(s.Out, "Wrote %s\n", p)
			}
			for _, w := range append(f.Warnings, usersWarnings...) {
				fmt.Fprintf(s.Out, "warning: %s\n", w)
			}
			if group != "none" && os.Geteuid() == 0 {
				if err := grantRabbitAccess(s, o, wrote, group); err != nil {
					return err
				}
			}
			printRabbitNext(s, o)
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&o.PKIDir, "pki", "pki", "pki directory (ca.crt, servers/NODE.crt)")
	addModeFlag(cmd, &o.Mode, "mtls", "mtls (certificate login) or tls (passwords)")
	fl.StringArrayVar(&nodes, "node", nil, "a cluster node, NAME=HOST:MQTTPORT (repeatable)")
	fl.StringVar(&o.ACLFile, "acl", "", "mosquitto ACL file to translate into topic permissions")
	fl.StringVar(&passwd, "passwd", "", "password file whose users to create (--mode tls)")
	fl.StringVar(&o.Bind, "bind", "", "IP address the MQTT listeners bind to (default: each node's HOST if it is an IP address, else all interfaces)")
	fl.StringVar(&out, "out", "", "directory to write to")
	fl.BoolVar(&force, "force", false, "replace existing files")
	addBrokerGroupFlag(cmd, &group, "rabbitmq")
	return cmd
}

// grantRabbitAccess reports what confgen.GrantRabbitAccess changed.
func grantRabbitAccess(s *streams, o confgen.RabbitOptions, wrote []string, group string) error {
	a, err := confgen.GrantRabbitAccess(o, wrote, group)
	if a.NoGroup {
		fmt.Fprintf(s.Out, "No group %s here: give the account RabbitMQ runs as read access to %s and the pki files it names\n", group, o.Dir)
		return err
	}
	fmt.Fprintf(s.Out, "Gave group %s read access (rabbitmq-server switches to that user before reading them):\n", group)
	for _, l := range a.Changes {
		fmt.Fprintln(s.Out, "  "+l)
	}
	for _, w := range a.Warnings {
		fmt.Fprintln(s.Out, "warning: "+w)
	}
	return err
}

// printRabbitNext says how to start the nodes, with every path absolute.
func printRabbitNext(s *streams, o confgen.RabbitOptions) {
	fmt.Fprintf(s.Out, "Next, as root (Debian's rabbitmq-server changes to /var/lib/rabbitmq and switches to the rabbitmq user), %s first: it imports definitions.json at boot.\n", o.Nodes[0].Name)
	for i, n := range o.Nodes {
		env := "RABBITMQ_CONF_ENV_FILE=" + shellWord(filepath.Join(o.Dir, n.Name, "rabbitmq-env.conf"))
		if i > 0 {
			fmt.Fprintf(s.Out, "  # on %s, with the same paths, once %s runs (its /var/lib/rabbitmq/.erlang.cookie must be %s's)\n", n.Host, o.Nodes[i-1].Name, o.Nodes[0].Name)
		} else {
			fmt.Fprintf(s.Out, "  # on %s\n", n.Host)
		}
		fmt.Fprintf(s.Out, "  %s rabbitmq-server -detached\n  %s rabbitmqctl await_startup\n", env, env)
	}
	fmt.Fprintf(s.Out, "Start them one by one: nodes started together race while the cluster forms, and a node that comes up with its virtual host down drops every MQTT client (vhost_is_down in its log). "+
		"%s exists only if a node other than %s formed the cluster (rabbitmqctl list_users shows it): then delete it with rabbitmqctl delete_user %s.\n",
		confgen.RabbitDefaultUser, o.Nodes[0].Name, confgen.RabbitDefaultUser)
}

func splitHostPort(hp string) (string, int, error) {
	i := strings.LastIndexByte(hp, ':')
	if i <= 0 {
		return "", 0, errors.New("no port")
	}
	port, err := strconv.Atoi(hp[i+1:])
	if err != nil || port < 1 || port > 65535 {
		return "", 0, errors.New("bad port")
	}
	return strings.Trim(hp[:i], "[]"), port, nil
}
