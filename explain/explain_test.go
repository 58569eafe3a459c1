package explain

import "testing"

// TestCommandsQuoteNames: a name or directory with shell syntax in it is
// quoted in every suggested command, so that pasting it runs nothing
// (finding 14: $(id) and backquotes were printed as they are).
func TestCommandsQuoteNames(t *testing.T) {
	name, dir := "$(id)x`date`", "my pki"
	for got, want := range map[string]string{
		Renew(name, dir, false):              "mqttctl pki renew '$(id)x`date`' --dir 'my pki'",
		Revoke("it's", "pki"):                `mqttctl pki revoke 'it'\''s'`,
		ReissueClient(name, ""):              "mqttctl pki issue client '$(id)x`date`' --force",
		Reissue("bridge", "a;b", "pki"):      "mqttctl pki issue bridge 'a;b' --force",
		IssueServer("s", dir, []string{"h"}): "mqttctl pki issue server s --dir 'my pki' --host h",
		Reindex(dir):                         "mqttctl pki reindex --dir 'my pki'",
		Renew("sensor-01", "pki", true):      "mqttctl pki renew sensor-01 --rekey",
	} {
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
}
