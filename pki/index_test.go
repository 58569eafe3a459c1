package pki

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func newIndexedDir(t *testing.T) (*Dir, []byte) {
	t.Helper()
	d := &Dir{Path: filepath.Join(t.TempDir(), "pki")}
	if _, err := d.Init(InitOptions{Hosts: []string{"localhost"}, Clients: []string{"alice", "bob"}, Intermediate: true}); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(d.path(IndexFile))
	if err != nil {
		t.Fatal(err)
	}
	return d, data
}

// TestDamagedIndexIsAnError: a truncated, edited or unknown-version
// index.yaml is refused with the file's name and the fix, and nothing is
// rewritten by a command that would have written it.
func TestDamagedIndexIsAnError(t *testing.T) {
	d, good := newIndexedDir(t)
	text := string(good)
	cut := func(frac float64) string { return text[:int(float64(len(text))*frac)] }
	lastEntry := strings.LastIndex(text, "\n  - name:")
	tests := []struct {
		name, content, want string
		kind                error
	}{
		{"truncated to a quarter", cut(0.25), "", ErrIndexCorrupt},
		{"truncated mid-entry", cut(0.6), "", ErrIndexCorrupt},
		{"truncated before the last entry", text[:lastEntry+1], "does not list it", ErrUnlisted},
		{"unknown version", strings.Replace(text, "version: 1", "version: 7", 1), "version 7", ErrIndexCorrupt},
		{"no version", strings.Replace(text, "version: 1\n", "", 1), "version 0", ErrIndexCorrupt},
		{"not YAML", "{{{", "", ErrIndexCorrupt},
		{"empty", "", "", ErrIndexCorrupt},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.name, " ", "_"), func(t *testing.T) {
			if err := os.WriteFile(d.path(IndexFile), []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIndex(d.Path)
			if err == nil || !errors.Is(err, tt.kind) || !strings.Contains(err.Error(), d.path(IndexFile)) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadIndex = %v, want a %v naming %s and saying %q", err, tt.kind, d.path(IndexFile), tt.want)
			}
			if _, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "carol"}); err == nil {
				t.Fatal("issue went ahead with a damaged index")
			}
			after, _ := os.ReadFile(d.path(IndexFile))
			if string(after) != tt.content || fileExists(d.path("clients/carol.crt")) {
				t.Fatal("a damaged index was rewritten, or a certificate was issued")
			}
		})
	}
}

// TestMissingIndexIsRebuilt: a deleted index.yaml is rebuilt from the
// certificates on disk, and the report says so.
func TestMissingIndexIsRebuilt(t *testing.T) {
	d, good := newIndexedDir(t)
	before, err := LoadIndex(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(d.path(IndexFile))
	rep, err := d.Issue(IssueOptions{Profile: ProfileClient, Name: "carol"})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Warnings) == 0 || !strings.Contains(strings.Join(rep.Warnings, "\n"), "was missing: rebuilt it") {
		t.Errorf("no warning about the rebuilt index: %q", rep.Warnings)
	}
	after, err := LoadIndex(d.Path)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Certificates) != len(before.Certificates)+1 {
		t.Fatalf("rebuilt index has %d entries, want %d:\n%s", len(after.Certificates), len(before.Certificates)+1, good)
	}
	for _, e := range before.Certificates {
		got := after.find(e.Cert)
		if got == nil || got.Serial != e.Serial || got.Profile != e.Profile || got.Name != e.Name || !got.NotAfter.Equal(e.NotAfter) {
			t.Errorf("rebuilt entry for %s = %+v, want %+v", e.Cert, got, e)
		}
	}
}
