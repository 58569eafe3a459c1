package confgen_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestRabbitRegexpsAsErlang: the expressions the translation writes match
// the same routing keys under Erlang's re (PCRE, what RabbitMQ runs, given
// binaries without the unicode option) as under Go's regexp, which
// TestRabbitMQTranslationSound uses. Keys include newlines, '#', '*', '$'
// and UTF-8.
func TestRabbitRegexpsAsErlang(t *testing.T) {
	erl := testutil.RequireBinary(t, "erl")
	filters := []string{"a/b", "a/+/c", "a/+", "a/#", "#", "+", "+/x", "+/+/#", "é/+", "{client_id}/x|y", "a/(/)"}
	keys := []string{"a", "a.b", "a.b\n", "a.bc", "a.x.c", "a..c", "a.*.c", "a.#.c", "a.#x.c", "a.#", "a.*", "a.x.y", "#", "*", "$x", "$SYS.x",
		"x", ".x", "*.x", "#.x", "$a.x", "\nx", "a.b\nc", "é.z", "é.#", "{client_id}.x|y", "a.(.)", "", "\n"}
	var exprs []string
	perm := func(acl string) confgen.RabbitTopicPermission {
		a, err := confgen.ParseACL([]byte(acl), "acl")
		if err != nil {
			t.Fatal(err)
		}
		p, err := confgen.RabbitTopicPermissions(a, "acl", []string{"u", "v"})
		if err != nil {
			t.Fatal(err)
		}
		return p["u"]
	}
	for _, f := range filters {
		exprs = append(exprs, perm("user u\ntopic read "+f+"\n").Read)
	}
	exprs = append(exprs, perm("user v\ntopic read a\n").Read, perm("user u\ntopic write a/b\ntopic write +/x\n").Write)
	bin := func(s string) string {
		var b []string
		for _, c := range []byte(s) {
			b = append(b, fmt.Sprint(c))
		}
		return "<<" + strings.Join(b, ",") + ">>"
	}
	var terms strings.Builder
	var want []string
	for _, e := range exprs {
		re := regexp.MustCompile(e)
		for _, k := range keys {
			fmt.Fprintf(&terms, "{%s,%s}.\n", bin(e), bin(k))
			w := "nomatch"
			if re.MatchString(k) {
				w = "match"
			}
			want = append(want, fmt.Sprintf("%q on %q: %s", e, k, w))
		}
	}
	file := filepath.Join(t.TempDir(), "cases")
	os.WriteFile(file, []byte(terms.String()), 0o600)
	out, err := exec.Command(erl, "-noshell", "-eval",
		`{ok, Ts} = file:consult("`+file+`"), [io:format("~p~n", [re:run(K, R, [{capture, none}])]) || {R, K} <- Ts], halt().`).CombinedOutput()
	if err != nil {
		t.Fatalf("erl: %v\n%s", err, out)
	}
	got := strings.Fields(string(out))
	if len(got) != len(want) {
		t.Fatalf("erl gave %d answers for %d cases:\n%s", len(got), len(want), out)
	}
	for i, w := range want {
		if !strings.HasSuffix(w, ": "+got[i]) {
			t.Errorf("%s in Go, %s in Erlang", w, got[i])
		}
	}
}
