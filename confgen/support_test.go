package confgen

import (
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
)

// sampleValue is a value of the option's kind that is not its default.
func sampleValue(key string, spec optSpec) string {
	switch spec.kind {
	case kBool:
		return "true"
	case kInt:
		return "7"
	case kEnum:
		return spec.enum[len(spec.enum)-1]
	}
	return "/tmp/x"
}

// TestServeSupportCoversEveryOption walks every option mosquitto 2.0
// accepts: each has a row in the table, and a config with it is either run
// as the row says or refused with the option's name and line.
func TestServeSupportCoversEveryOption(t *testing.T) {
	keys := make([]string, 0, len(options)+len(bridgeOptions))
	for k := range options {
		keys = append(keys, k)
	}
	keys = append(keys, bridgeOptions...)
	keys = append(keys, "plugin_opt_x", "auth_opt_x")
	for _, key := range keys {
		sup, ok := SupportOf(key)
		if !ok {
			t.Errorf("%s: no row in the serve support table", key)
			continue
		}
		spec, _ := lookupOption(key)
		values := []string{sampleValue(key, spec)}
		if sup.Support == DefaultOnly {
			values = append(values, sup.Defaults...)
		}
		for _, v := range values {
			text := "listener 1883 127.0.0.1\n" + key + " " + v + "\n"
			if !spec.listener && !spec.security {
				text = key + " " + v + "\nlistener 1883 127.0.0.1\n"
			}
			c, err := Parse([]byte(text), "t.conf")
			if err != nil {
				t.Errorf("%s %s: %v", key, v, err)
				continue
			}
			line := 2
			if !spec.listener && !spec.security {
				line = 1
			}
			var errs, warns []string
			for _, d := range c.CheckServe() {
				if d.Pos.Line != line {
					continue
				}
				if d.Warning {
					warns = append(warns, d.Msg)
				} else {
					errs = append(errs, d.Msg)
				}
			}
			refused := len(errs) > 0
			wantRefused := sup.Support == Refused || sup.Support == DefaultOnly && !contains(sup.Defaults, v) ||
				sup.Refuse != nil && sup.Refuse(v) != ""
			if refused != wantRefused {
				t.Errorf("%s %s (%s): refused %v, want %v: %v", key, v, sup.Support, refused, wantRefused, errs)
			}
			if refused && !strings.Contains(errs[0], key) {
				t.Errorf("%s %s: the refusal does not name the option: %s", key, v, errs[0])
			}
			if (key == "log_dest" || key == "log_facility" || key == "allow_duplicate_messages") && len(warns) == 0 {
				t.Errorf("%s %s: an option serve ignores gives no warning", key, v)
			}
		}
	}
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

var updateREADME = flag.Bool("update", false, "rewrite the serve support table in README.md")

// TestServeSupportTableInREADME keeps the README's table the one the code
// has (go test ./confgen -run SupportTable -update rewrites it).
func TestServeSupportTableInREADME(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), ServeSupportTable()) {
		return
	}
	if !*updateREADME {
		t.Fatalf("README.md does not hold the current serve support table: go test ./confgen -run SupportTable -update")
	}
	lines := strings.Split(string(data), "\n")
	start := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "| option | mqttctl serve |") })
	if start < 0 {
		t.Fatal("README.md has no serve support table to replace")
	}
	end := start
	for end < len(lines) && strings.HasPrefix(lines[end], "|") {
		end++
	}
	table := strings.Split(strings.TrimSuffix(ServeSupportTable(), "\n"), "\n")
	out := slices.Concat(lines[:start], table, lines[end:])
	if err := os.WriteFile("../README.md", []byte(strings.Join(out, "\n")), 0o644); err != nil {
		t.Fatal(err)
	}
}

func ExampleConfig_CheckServe() {
	c, _ := Parse([]byte("listener 1883 127.0.0.1\nallow_anonymous true\nplugin /usr/lib/auth.so\n"), "mosquitto.conf")
	for _, d := range c.CheckServe() {
		fmt.Println(d)
	}
	// Output:
	// mosquitto.conf:3: error: plugin /usr/lib/auth.so: plugins are C shared objects and serve cannot load them; it implements only mosquitto 2.1's mosquitto_password_file.so and mosquitto_acl_file.so: run mosquitto for this file, or remove the line
}

// TestOptionRowsRenderWhatIsGenerated: every option GenerateMosquitto
// writes has a render function in its row, and every row with an apply or
// render function is an option mosquitto knows (or one of mqttctl's own).
func TestOptionRowsRenderWhatIsGenerated(t *testing.T) {
	for _, k := range append(slices.Clone(generatedGlobal), generatedListener...) {
		if row, _ := optionRow(k); row.render == nil {
			t.Errorf("%s is generated but its row has no render function", k)
		}
	}
	for k, row := range serveSupport {
		if _, known := lookupOption(k); (row.apply != nil || row.render != nil) && !known {
			t.Errorf("%s has apply/render functions but is not a mosquitto option", k)
		}
	}
}

// TestServeRefusesGlobalMaxConnectionsWithABridge: mosquitto counts a
// bridge's own connection in global_max_connections, serve's bridges make
// none through a listener: the combination is refused at its line.
func TestServeRefusesGlobalMaxConnectionsWithABridge(t *testing.T) {
	for _, c := range []struct {
		text    string
		refused bool
	}{
		{"global_max_connections 5\nlistener 1883 127.0.0.1\n", false},
		{"global_max_connections 5\nconnection b\naddress h:8883\ntopic a/# out\nlistener 1883 127.0.0.1\n", true},
		{"global_max_connections -1\nconnection b\naddress h:8883\ntopic a/# out\nlistener 1883 127.0.0.1\n", false},
	} {
		cfg, err := Parse([]byte(c.text), "g.conf")
		if err != nil {
			t.Fatal(err)
		}
		refused := false
		for _, d := range cfg.CheckServe() {
			if !d.Warning && d.Pos.Line == 1 && strings.Contains(d.Msg, "global_max_connections with a bridge") {
				refused = true
			}
		}
		if refused != c.refused {
			t.Errorf("%q: refused %v, want %v: %v", c.text, refused, c.refused, cfg.CheckServe())
		}
	}
}
