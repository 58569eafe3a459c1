package agent

import (
	"strings"
	"testing"
)

// TestUnit: values that would inject directives into the unit are refused;
// % is doubled in every line systemd reads specifiers in; the unit runs in
// the directory it was printed in, so that a relative --exec still names
// its file.
func TestUnit(t *testing.T) {
	for _, c := range []struct {
		name    string
		argv    []string
		dir, wd string
		refused string
		want    []string
	}{
		{"newline in the directory", []string{"/bin/mqttctl", "agent"}, "/etc/dev\nExecStartPre=/bin/evil", "/root", "control character", nil},
		{"newline in --exec", []string{"/bin/mqttctl", "agent", "--exec", "a\nb"}, "/etc/dev", "/root", "control character", nil},
		{"escape in the work directory", []string{"/bin/mqttctl"}, "/etc/dev", "/root/\x1b[2J", "control character", nil},
		{"percent", []string{"/bin/mqttctl", "agent", "--dir", "/srv/50%"}, "/srv/50%", "/srv/50%", "", []string{
			"Description=mqttctl agent: renews the MQTT client certificate in /srv/50%%\n", "WorkingDirectory=/srv/50%%\n", "--dir /srv/50%%"}},
		{"relative --exec", []string{"/bin/mqttctl", "agent", "--exec", "./reload.sh"}, "/etc/dev", "/home/op", "", []string{"WorkingDirectory=/home/op\n", "--exec ./reload.sh"}},
	} {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			u, err := Unit(c.argv, c.dir, c.wd)
			if c.refused != "" {
				if err == nil || !strings.Contains(err.Error(), c.refused) {
					t.Fatalf("%v\n%s", err, u)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range c.want {
				if !strings.Contains(u, w) {
					t.Errorf("no %q in\n%s", w, u)
				}
			}
		})
	}
}
