package confgen_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/confgen"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestEMQXACLConsultable: the acl.conf EMQXACL writes is read by Erlang's
// file:consult (what EMQX's file authorization uses) as the terms meant:
// the strings come back as written, the last term is {deny, all}.
func TestEMQXACLConsultable(t *testing.T) {
	erl := testutil.RequireBinary(t, "erl")
	acl, err := confgen.ParseACL([]byte("user x|.*\ntopic write a b/x|.*/$s/%c\ntopic deny a b/secret\ntopic readwrite ~'!/#\nuser bob\ntopic read $s/#\n"), "acl")
	if err != nil {
		t.Fatal(err)
	}
	data, err := confgen.EMQXACL(acl, "acl", nil)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "acl.conf")
	os.WriteFile(file, data, 0o600)
	out, err := exec.Command(erl, "-noshell", "-eval",
		`{ok, Ts} = file:consult("`+file+`"), [io:format("~w~n", [T]) || T <- Ts], halt().`).CombinedOutput()
	if err != nil {
		t.Fatalf("erl: %v\n%s\n%s", err, out, data)
	}
	// ~w prints strings as lists of codes: turn the expected terms into that.
	codes := func(s string) string {
		var b []string
		for _, c := range []byte(s) {
			b = append(b, strconv.Itoa(int(c)))
		}
		return "[" + strings.Join(b, ",") + "]"
	}
	want := []string{
		"{deny,{user," + codes("x|.*") + "},all,[" + codes("a b/secret") + "]}",
		"{allow,{user," + codes("x|.*") + "},publish,[" + codes("a b/x|.*/$s/%c") + "]}",
		"{allow,{user," + codes("x|.*") + "},all,[" + codes("~'!/#") + "]}",
		"{allow,{user," + codes("bob") + "},subscribe,[" + codes("$s/#") + "]}",
		"{deny,all}",
	}
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Errorf("file:consult read:\n%s\nwant:\n%s\nfile:\n%s", got, strings.Join(want, "\n"), data)
	}
}
