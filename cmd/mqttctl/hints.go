package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/cobra"

	"github.com/mqttctl/mqttctl/agent"
	"github.com/mqttctl/mqttctl/broker"
	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/explain"
	"github.com/mqttctl/mqttctl/pki"
	"github.com/mqttctl/mqttctl/reload"
)

// mosquittoOptionFlags names the flag of each confgen.MosquittoOptions
// field; config mosquitto and serve's quick form share them.
var mosquittoOptionFlags = map[string]string{
	"PKIDir": "pki", "Mode": "mode", "PasswordFile": "passwd", "ACLFile": "acl", "Listen": "listen",
	"Plain": "plain", "Identity": "identity", "DataDir": "data-dir", "WebSockets": "websockets",
	"BridgeTo": "bridge-to", "BridgeName": "bridge-name", "BridgeTopics": "bridge-topic",
	"Target": "target", "Origins": "http-origin", "PluginDir": "plugin-dir", "PIDFile": "pid-file",
	"Nodes": "node", "Bind": "bind", // RabbitOptions
}

// withHint adds to a library error the fix in terms of the flags of the
// command that ran. Library packages never name flags (a flag that one
// command has, another lacks: `up` has no --force); they return errors that
// match kinds such as pki.ErrNeedsForce, and this is the one place that
// turns a kind into advice.
func withHint(cmd *cobra.Command, err error) error {
	if cmd == nil || err == nil {
		return err
	}
	has := func(flag string) bool { return cmd.Flags().Lookup(flag) != nil }
	var oe *confgen.OptionError
	if errors.As(err, &oe) {
		if flag := mosquittoOptionFlags[oe.Field]; flag != "" && has(flag) {
			err = fmt.Errorf("--%s: %w", flag, err)
		}
		if h := kindHint(err); h != "" {
			return fmt.Errorf("%w (%s)", err, h)
		}
		return err
	}
	dir := "pki"
	if f := cmd.Flags().Lookup("dir"); f != nil {
		dir = f.Value.String()
	}
	var hint string
	var missing *confgen.MissingFileError
	switch {
	case errors.Is(err, reload.ErrNoPID) && has("pid-file"):
		hint = "add a pid_file line to the config and restart mosquitto, or name its pid file with --pid-file; mqttctl never signals a process found by name"
	case errors.Is(err, pki.ErrHalfPair) && has("force"):
		hint = "restore the missing file, or use --force to issue a new pair"
	case errors.Is(err, pki.ErrHalfPair):
		hint = "restore the missing file"
	case errors.Is(err, pki.ErrTokenExists) && has("force"):
		hint = "revoke it with: mqttctl enroll token revoke NAME, or use --force to replace it"
	case errors.Is(err, pki.ErrIdentityInUse) && has("force") && cmd.Parent() != nil && cmd.Parent().Name() == "token":
		hint = "use --force to let the device's enrolment supersede that certificate (revoke it too if the device was lost)"
	case errors.Is(err, pki.ErrIdentityInUse) && has("force"):
		hint = "use another name, or --force to issue a second certificate for the same identity"
	case errors.Is(err, pki.ErrValidity) && errors.Is(err, pki.ErrNeedsForce) && has("force"):
		hint = "add --force to issue it anyway"
	case errors.Is(err, fs.ErrExist) && cmd.Flags().Changed("batch") && cmd.Flags().Changed("bundle-dir"):
		hint = "a batch never replaces a file: give it a new --bundle-dir, or take out the line of the device whose file it is"
	case errors.Is(err, fs.ErrExist) && cmd.Flags().Changed("batch"):
		hint = "a batch never replaces a file: take out the line of the device whose file it is (pki reindex records a certificate index.yaml lacks)"
	case errors.Is(err, fs.ErrExist) && has("force"):
		hint = "use --force to replace it"
	case errors.Is(err, pki.ErrNoCA) && cmd.Name() != "init":
		hint = "make one with: mqttctl pki init --dir " + shellWord(dir)
	case errors.Is(err, errNoPasswordSource) && cmd.Flags().ShorthandLookup("b") != nil: // passwd's -b (pki issue's --batch is a devices file)
		hint = "give it with --password-file FILE, --password-stdin or -b PASSWORD"
	case errors.Is(err, errNoPasswordSource) && has("password-stdin"):
		hint = "give it with --password-file FILE or --password-stdin"
	case errors.Is(err, errNoPasswordSource) && has("password-file"):
		hint = "give it with --password-file FILE (- for standard input)"
	case errors.Is(err, errNoPasswordSource) && has("ca-password-file"):
		hint = "give the CA key's password with --ca-password-file FILE (- for standard input)"
	case errors.Is(err, pki.ErrKeyEncrypted) && has("ca-password-file"):
		hint = "give its password with --ca-password-file FILE (- for standard input), or run on a terminal to be asked"
	case errors.Is(err, pki.ErrNeedsHosts) && has("host"):
		hint = "add --host NAME for each DNS name or IP address, e.g. --host broker.example.com --host 192.0.2.10"
	case errors.Is(err, pki.ErrHostsNotForClient):
		hint = "leave out --host"
	case errors.Is(err, pki.ErrRevoked) && cmd.Name() != "revoke":
		hint = "a revoked certificate stays revoked; to let the device back in, give it a new certificate: mqttctl pki issue client|server NAME --dir " + shellWord(dir) + " --force"
	case errors.Is(err, agent.ErrNeedToken) && has("token-file"):
		hint = "give the token with --token-file FILE (its first line is the token; mqttctl enroll token create NAME prints one on the CA)"
	case errors.Is(err, agent.ErrNoCA) && has("cafile"):
		hint = "copy the pki's ca.crt into --dir, or give --cafile FILE"
	case errors.Is(err, agent.ErrRevoked) && has("token-file"):
		hint = "a revoked device cannot renew: make it a new token on the CA (mqttctl enroll token create NAME --force) and give it with --token-file FILE"
	case errors.Is(err, pki.ErrNotFound):
		hint = "mqttctl pki list --dir " + shellWord(dir) + " shows every name and serial"
	case errors.Is(err, pki.ErrAmbiguous) && has("serial"):
		hint = "revoke one with --serial HEX (mqttctl pki list -o json shows the serials)"
	case errors.Is(err, pki.ErrSubjectInUse) && has("cn"):
		hint = "or give another subject name with --cn"
	case errors.Is(err, broker.ErrPersistenceInUse) && cmd.Flags().Changed("config-file"):
		hint = "give each broker its own persistence_location in " + shellWord(cmd.Flags().Lookup("config-file").Value.String()) +
			": write the config with mqttctl config mosquitto ... --data-dir DIR, one DIR per broker"
	case errors.Is(err, broker.ErrPersistenceInUse) && has("data-dir"):
		hint = "give each broker its own --data-dir DIR"
	case errors.Is(err, broker.ErrPersistenceInUse):
		hint = "give each broker its own persistence_location (mqttctl config mosquitto --data-dir DIR writes it)"
	case errors.Is(err, broker.ErrPersistenceNotWritable) && cmd.Flags().Changed("config-file"):
		hint = "give " + shellWord(cmd.Flags().Lookup("config-file").Value.String()) +
			" a persistence_location this account can write (mqttctl config mosquitto ... --data-dir DIR writes one), or run the broker as the account that owns the directory"
	case errors.Is(err, broker.ErrPersistenceNotWritable) && has("data-dir"):
		hint = "give a --data-dir this account can write"
	case errors.Is(err, pki.ErrNeedsForce) && has("force") && cmd.Name() == "issue":
		hint = "or --force to issue it anyway"
	case errors.Is(err, confgen.ErrPasswordFileWithCertLogin) && has("passwd"):
		hint = "--passwd is for --mode tls: leave it out, or use --mode tls for password login"
	case errors.Is(err, confgen.ErrNeedsPasswordFile) && has("passwd"):
		hint = "--mode tls needs --passwd FILE: its users become RabbitMQ users"
	case errors.Is(err, confgen.ErrNoFile) && cmd.Parent() != nil && cmd.Parent().Name() == "passwd":
		hint = "create it with: mqttctl passwd add FILE USER"
	case errors.As(err, &missing) && missing.Kind == "ACL":
		hint = "create it with: mqttctl acl add " + shellWord(missing.Path) + " read 'TOPIC' --user USER"
	case errors.As(err, &missing):
		hint = "create it with: mqttctl passwd add " + shellWord(missing.Path) + " USER"
	}
	if hint == "" {
		hint = kindHint(err)
	}
	if hint == "" {
		return err
	}
	return fmt.Errorf("%w (%s)", err, hint)
}

// kindHint is the advice for a library error kind that carries what the
// fix needs (names, directories), whichever command ran.
func kindHint(err error) string {
	var mc *confgen.MissingCertError
	var ie *confgen.IterationsError
	switch {
	case errors.As(err, &mc):
		host := mc.Host
		if host == "" {
			host = "NAME"
		}
		return fmt.Sprintf("issue it with: mqttctl pki issue %s %s --dir %s --host %s", mc.Profile, mc.Name, shellWord(mc.PKIDir), host)
	case errors.As(err, &ie):
		return fmt.Sprintf("with --iterations %d", ie.Want)
	}
	return ""
}

// diagnosticWithHint is d as text with the advice for its kind, if any.
func diagnosticWithHint(d confgen.Diagnostic) string {
	if d.Kind != nil {
		if h := kindHint(d.Kind); h != "" {
			return fmt.Sprintf("%s (%s)", d, h)
		}
	}
	return d.String()
}

// shellWord quotes s for a POSIX shell when it needs it.
func shellWord(s string) string { return explain.ShellWord(s) }
