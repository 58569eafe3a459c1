package confgen

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mqttctl/mqttctl/internal/fsx"
)

const aclWithComments = `# site ACL, edited by hand
topic read public/#

# operators
user admin
topic readwrite #

# the dashboard reads sensors
user dashboard
topic read sensors/#
pattern readwrite clients/%c/#
`

func TestAddACLRule(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		target ACLTarget
		rule   ACLRule
		want   string
	}{
		{"to an existing user block", aclWithComments, ACLTarget{User: "dashboard"}, ACLRule{Access: Read, Topic: "alerts/#"},
			strings.Replace(aclWithComments, "topic read sensors/#\n", "topic read sensors/#\ntopic read alerts/#\n", 1)},
		{"a new user block at the end", aclWithComments, ACLTarget{User: "bob"}, ACLRule{Access: Write, Topic: "bob/#"},
			aclWithComments + "\nuser bob\ntopic write bob/#\n"},
		{"anonymous after the anonymous rules", aclWithComments, ACLTarget{Anonymous: true}, ACLRule{Access: Read, Topic: "news/#"},
			strings.Replace(aclWithComments, "topic read public/#\n", "topic read public/#\ntopic read news/#\n", 1)},
		{"anonymous before the first user and its comment", "# header\n\n# admins\nuser admin\ntopic readwrite #\n", ACLTarget{Anonymous: true}, ACLRule{Access: Read, Topic: "news/#"},
			"# header\n\ntopic read news/#\n# admins\nuser admin\ntopic readwrite #\n"},
		{"a pattern at the end", aclWithComments, ACLTarget{Pattern: true}, ACLRule{Access: ReadWrite, Topic: "home/%u/#"},
			aclWithComments + "pattern readwrite home/%u/#\n"},
		{"a deny rule", aclWithComments, ACLTarget{User: "admin"}, ACLRule{Access: Deny, Topic: "secret/#"},
			strings.Replace(aclWithComments, "topic readwrite #\n", "topic readwrite #\ntopic deny secret/#\n", 1)},
		{"into an empty file", "", ACLTarget{User: "alice"}, ACLRule{Access: Read, Topic: "a/#"}, "user alice\ntopic read a/#\n"},
		{"a rule that is there already", aclWithComments, ACLTarget{User: "dashboard"}, ACLRule{Access: Read, Topic: "sensors/#"}, aclWithComments},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			out, _, err := AddACLRule([]byte(tt.in), "acl", tt.target, tt.rule)
			if err != nil {
				t.Fatal(err)
			}
			if string(out) != tt.want {
				t.Fatalf("got:\n%s\nwant:\n%s", out, tt.want)
			}
		})
	}
}

// TestAddACLRuleRefusesInjection: nothing that would add a line of its own
// (or hide what a name is) gets into the file.
func TestAddACLRuleRefusesInjection(t *testing.T) {
	tests := []struct {
		name   string
		target ACLTarget
		topic  string
	}{
		{"newline in the topic", ACLTarget{User: "attacker"}, "x\ntopic readwrite admin/x"},
		{"CR in the topic", ACLTarget{User: "attacker"}, "x\rtopic readwrite admin/x"},
		{"NUL in the topic", ACLTarget{User: "attacker"}, "x\x00y"},
		{"invalid UTF-8 in the topic", ACLTarget{User: "attacker"}, "x\xff"},
		{"trailing space in the topic", ACLTarget{User: "attacker"}, "x/ "},
		{"newline in the user", ACLTarget{User: "a\nuser admin"}, "x"},
		{"bidi control in the user", ACLTarget{User: "adm\u202ein"}, "x"},
		{"two targets", ACLTarget{User: "a", Pattern: true}, "x"},
		{"no target", ACLTarget{}, "x"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			if out, _, err := AddACLRule([]byte(aclWithComments), "acl", tt.target, ACLRule{Access: Read, Topic: tt.topic}); err == nil {
				t.Fatalf("accepted; the file would read:\n%s", out)
			}
		})
	}
}

// TestAddACLRuleToFileKeepsModeOwnerAndComments: the broker (dropped to
// its own user) must still read the file after an edit.
func TestAddACLRuleToFileKeepsModeOwnerAndComments(t *testing.T) {
	path := filepath.Join(t.TempDir(), "acl")
	if err := os.WriteFile(path, []byte(aclWithComments), 0o640); err != nil {
		t.Fatal(err)
	}
	os.Chmod(path, 0o640)
	gid := os.Getgid()
	if os.Geteuid() == 0 {
		if g, err := user.LookupGroup("mosquitto"); err == nil {
			gid, _ = strconv.Atoi(g.Gid)
			if err := os.Chown(path, -1, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := AddACLRuleToFile(path, ACLTarget{User: "bob"}, ACLRule{Access: Read, Topic: "b/#"}); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	_, g, _ := fsx.Owner(st)
	if st.Mode().Perm() != 0o640 || g != gid {
		t.Errorf("after the edit: mode %04o group %d, want 0640 group %d", st.Mode().Perm(), g, gid)
	}
	data, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(data), aclWithComments) || !strings.Contains(string(data), "# the dashboard reads sensors") {
		t.Errorf("comments or order lost:\n%s", data)
	}
	a, err := ReadACL(path)
	if err != nil || !a.Allowed(Client{Username: "bob"}, "b/1", Read) || !a.Allowed(Client{Username: "dashboard"}, "sensors/x", Read) {
		t.Errorf("edited ACL does not grant what it should: %v", err)
	}
}
