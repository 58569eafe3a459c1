package agent

import (
	"fmt"
	"strings"
)

// Unit is a systemd service that runs argv (the agent's command line,
// without --once) as a long-running service: it waits for the renew point
// itself, and systemd restarts it after a failure (a refusal such as a
// revoked certificate exits 1; the restart tries again every 15 minutes).
func Unit(argv []string, dir string) string {
	quoted := make([]string, len(argv))
	for i, a := range argv {
		quoted[i] = QuoteSystemd(a)
	}
	return fmt.Sprintf(`# mqttctl agent: keeps the MQTT client certificate in %s current.
# Install: save as /etc/systemd/system/mqttctl-agent.service, then
#   systemctl daemon-reload && systemctl enable --now mqttctl-agent
[Unit]
Description=mqttctl agent: renews the MQTT client certificate in %s
Wants=network-online.target
After=network-online.target

[Service]
ExecStart=%s
Restart=on-failure
RestartSec=15min
UMask=0077

[Install]
WantedBy=multi-user.target
`, dir, dir, strings.Join(quoted, " "))
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
