package agent

import (
	"fmt"
	"path/filepath"
	"strings"
	"unicode"
)

// Unit is a systemd service that runs argv (the agent's command line,
// without --once) as a long-running service: it waits for the renew point
// itself, and systemd restarts it after a failure (a refusal such as a
// revoked certificate exits 1; the restart tries again every 15 minutes).
// It runs in workDir (absolute), so that a relative path in --exec means
// what it meant where the unit was printed. A value with a control
// character (a newline would start a directive of its own) is refused; %
// is doubled everywhere systemd reads specifiers.
func Unit(argv []string, dir, workDir string) (string, error) {
	for _, v := range append([]string{dir, workDir}, argv...) {
		if i := strings.IndexFunc(v, unicode.IsControl); i >= 0 {
			return "", fmt.Errorf("%q holds a control character (%q): a systemd unit cannot hold it; use a path or command without it", v, v[i:i+1])
		}
	}
	if !filepath.IsAbs(workDir) || !filepath.IsAbs(dir) {
		return "", fmt.Errorf("the unit's directories must be absolute: %q, %q", dir, workDir)
	}
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = QuoteSystemd(a)
	}
	pct := func(s string) string { return strings.ReplaceAll(s, "%", "%%") }
	return fmt.Sprintf(`# mqttctl agent: keeps the MQTT client certificate in %s current.
# Install: save as /etc/systemd/system/mqttctl-agent.service, then
#   systemctl daemon-reload && systemctl enable --now mqttctl-agent
[Unit]
Description=mqttctl agent: renews the MQTT client certificate in %s
Wants=network-online.target
After=network-online.target

[Service]
WorkingDirectory=%s
ExecStart=%s
Restart=on-failure
RestartSec=15min
UMask=0077

[Install]
WantedBy=multi-user.target
`, dir, pct(dir), pct(workDir), strings.Join(quoted, " ")), nil
}

// QuoteSystemd quotes one argument for an ExecStart= line: double quotes
// when it holds white space, quotes or backslashes, with \ and " escaped,
// and $ and %% (systemd's variables and specifiers) doubled.
func QuoteSystemd(a string) string {
	a = strings.ReplaceAll(a, "%", "%%")
	a = strings.ReplaceAll(a, "$", "$$")
	if a != "" && !strings.ContainsAny(a, " \t\n\"'\\;") {
		return a
	}
	a = strings.ReplaceAll(a, `\`, `\\`)
	a = strings.ReplaceAll(a, `"`, `\"`)
	a = strings.ReplaceAll(a, "\n", `\n`)
	return `"` + a + `"`
}
