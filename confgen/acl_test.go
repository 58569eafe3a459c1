package confgen

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestTopicMatches(t *testing.T) {
	tests := []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/broker/uptime", true},
		{"a/+/c", "a//c", true},
		{"a/b", "a/b/", false},
		{"+", "", true},
	}
	for _, tt := range tests {
		if got := TopicMatches(tt.filter, tt.topic); got != tt.want {
			t.Errorf("TopicMatches(%q, %q) = %v", tt.filter, tt.topic, got)
		}
	}
}

const sampleACL = `topic read public/#
pattern readwrite devices/%u/#
pattern write $SYS/broker/connection/%c/state
user alice
topic readwrite alice/#
topic deny alice/private
topic read with space/topic name
`

func TestACLRules(t *testing.T) {
	a, err := ParseACL([]byte(sampleACL), "acl")
	if err != nil {
		t.Fatal(err)
	}
	alice := Client{Username: "alice", ClientID: "c1"}
	anon := Client{Anonymous: true, ClientID: "c2"}
	tests := []struct {
		c      Client
		topic  string
		access Access
		want   bool
	}{
		{alice, "alice/x", Write, true},
		{alice, "alice/private", Read, false},
		{alice, "alice/private", Write, false},
		{alice, "public/news", Read, false}, // topic lines before 'user' are for anonymous clients only
		{anon, "public/news", Read, true},
		{anon, "public/news", Write, false},
		{alice, "devices/alice/t", Write, true},
		{alice, "devices/bob/t", Write, false},
		{anon, "devices/x/t", Write, false},
		{alice, "with space/topic name", Read, true},
		{Client{Username: "a+b", ClientID: "x"}, "devices/a+b/t", Write, false},
		{alice, "$SYS/x", Write, false},
		{alice, "$SYS/broker/connection/c1/state", Write, true}, // a bridge's notification: mosquitto lets the ACL decide
		{alice, "$SYS/broker/connection/c9/state", Write, false},
		{alice, "$SYS/broker/connection/c1/other", Write, false},
	}
	for _, tt := range tests {
		if got := a.Allowed(tt.c, tt.topic, tt.access); got != tt.want {
			t.Errorf("%+v %s %s = %v, want %v", tt.c, tt.access, tt.topic, got, tt.want)
		}
	}
	// Round trip.
	b, err := ParseACL(a.Marshal(), "rendered")
	if err != nil {
		t.Fatal(err)
	}
	if string(b.Marshal()) != string(a.Marshal()) {
		t.Fatalf("ACL round trip:\n%s\n---\n%s", a.Marshal(), b.Marshal())
	}
}

func TestACLErrors(t *testing.T) {
	for in, want := range map[string]string{
		"topic\n":                      "acl:1: topic line without a topic",
		"user\n":                       "acl:1: 'user' needs a username",
		"topic\treadwrite\tsecret/#\n": `acl:1: unknown keyword "topic\treadwrite\tsecret/#"`,
		"user alice\ntopic READ x/#\n": `acl:2: invalid access type "READ"`,
		"user\talice\n":                `acl:1: unknown keyword "user\talice"`,
		"\n\ntopc read a\n":            `acl:3: unknown keyword "topc"`,
		"topic read a/#/b\n":           "acl:1: topic \"a/#/b\": '#' must be the last level",
		"pattern write a/b+/c\n":       "whole levels",
	} {
		if _, err := ParseACL([]byte(in), "acl"); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseACL(%q) = %v, want %q", in, err, want)
		}
	}
}

// TestACLWordsAsMosquitto: words are separated by spaces only, and a line
// with one word after topic makes that word the topic, as mosquitto reads
// them ("topic read" is the topic "read", readwrite).
func TestACLWordsAsMosquitto(t *testing.T) {
	for in, want := range map[string]ACLRule{
		"topic read\n":        {Access: ReadWrite, Topic: "read", Line: 1},
		"  topic read  a b\n": {Access: Read, Topic: "a b", Line: 1},
	} {
		a, err := ParseACL([]byte(in), "acl")
		if err != nil || len(a.Anonymous) != 1 || a.Anonymous[0] != want {
			t.Errorf("ParseACL(%q) = %+v, %v; want %+v", in, a, err, want)
		}
	}
}

func FuzzParseACL(f *testing.F) {
	f.Add([]byte(sampleACL))
	f.Add([]byte("user bob\ntopic deny #\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ParseACL(data, "fuzz")
		if err != nil {
			return
		}
		a.Allowed(Client{Username: "u", ClientID: "c"}, "a/b", Read)
		b, err := ParseACL(a.Marshal(), "again")
		if err != nil {
			t.Fatalf("rendered ACL does not parse: %v\n%s", err, a.Marshal())
		}
		if string(b.Marshal()) != string(a.Marshal()) {
			t.Fatal("ACL render not stable")
		}
	})
}

func FuzzParsePasswordFile(f *testing.F) {
	f.Add([]byte(aliceLine + "\n# c\nbob:$6$x$y\n"))
	f.Add([]byte("a:b\r\n\n:\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pf := ParsePasswordFile(data)
		pf.Verify("alice", []byte("x"))
		again := ParsePasswordFile(pf.Marshal())
		if string(again.Marshal()) != string(pf.Marshal()) {
			t.Fatal("password file render not stable")
		}
		if len(again.Users()) != len(pf.Users()) {
			t.Fatal("users lost in a rewrite")
		}
	})
}

func BenchmarkACLAllowed(b *testing.B) {
	a, err := ParseACL([]byte(sampleACL+"user bob\ntopic read sensors/+/temp\ntopic deny sensors/secret/#\n"), "acl")
	if err != nil {
		b.Fatal(err)
	}
	cases := []struct {
		name string
		c    Client
		t    string
	}{
		{"user rule", Client{Username: "bob", ClientID: "b1"}, "sensors/kitchen/temp"},
		{"pattern", Client{Username: "alice", ClientID: "a1"}, "devices/alice/state"},
		{"denied", Client{Username: "bob", ClientID: "b1"}, "sensors/secret/x"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a.Allowed(c.c, c.t, Read)
			}
		})
	}
}

// TestSpecialFilesRefused: a config, ACL or password file that is a FIFO or
// a device is refused at once (it hung serve's start and reloads, and
// /dev/zero filled memory).
func TestSpecialFilesRefused(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/zero"} {
		done := make(chan error, 3)
		go func() {
			_, err := ReadACL(path)
			done <- err
			_, err = Load(path)
			done <- err
			_, err = ReadPasswordFile(path)
			done <- err
		}()
		for i := 0; i < 3; i++ {
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), "not a regular file") {
					t.Errorf("%s: %v, want a refusal", path, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: reading hangs", path)
			}
		}
	}
}
