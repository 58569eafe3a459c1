package fsx

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// snapshotDir maps each file in dir (and its subdirectories) to its content.
func snapshotDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = string(b)
		return nil
	})
	return out
}

// journaledChange creates sub/new, replaces old and idx, and removes gone,
// journaled in dir/journal.json.
func journaledChange(dir string, crash func(string) bool) error {
	return journaledChangeSync(dir, crash, false)
}

// journaledChangeSync is journaledChange, made durable in one pass with
// syncOnce (Txn.SyncOnce).
func journaledChangeSync(dir string, crash func(string) bool, syncOnce bool) error {
	t := Txn{Journal: filepath.Join(dir, "journal.json"), Crash: crash, SyncOnce: syncOnce}
	defer t.Abort()
	for _, f := range []struct {
		name, data string
		overwrite  bool
	}{{"sub/new", "new", false}, {"old", "old v2", true}, {"idx", "idx v2", true}} {
		if err := t.Add(filepath.Join(dir, f.name), []byte(f.data), 0o600, f.overwrite); err != nil {
			return err
		}
	}
	t.Remove(filepath.Join(dir, "gone"))
	return t.Commit()
}

func setupJournalDir(t *testing.T) string {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	for n, v := range map[string]string{"old": "old v1", "idx": "idx v1", "gone": "gone"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestJournalAllOrNothingAtEveryCrashPoint stops a journaled commit at each
// of its steps, as a kill -9 would, then recovers as the next command does:
// the files are either all as before or all as after, never a mix, and no
// temporary file or journal is left. A second crash during the recovery
// changes nothing of that. The same holds for a change made durable in one
// pass (SyncOnce).
func TestJournalAllOrNothingAtEveryCrashPoint(t *testing.T) {
	for _, once := range []bool{false, true} {
		t.Run(map[bool]string{false: "sync_each", true: "sync_once"}[once], func(t *testing.T) {
			testJournalAtEveryCrashPoint(t, once)
		})
	}
}

func testJournalAtEveryCrashPoint(t *testing.T, once bool) {
	before := snapshotDir(t, setupJournalDir(t))
	full := setupJournalDir(t)
	var steps []string
	if err := journaledChangeSync(full, func(s string) bool { steps = append(steps, s); return false }, once); err != nil {
		t.Fatal(err)
	}
	after := snapshotDir(t, full)
	if maps.Equal(before, after) || len(steps) < 8 {
		t.Fatalf("the change did nothing, or has only %d steps: %v", len(steps), steps)
	}
	for k := range steps {
		for _, crashRecovery := range []bool{false, true} {
			dir := setupJournalDir(t)
			n := 0
			err := journaledChangeSync(dir, func(string) bool { n++; return n == k+1 }, once)
			if !errors.Is(err, ErrCrashed) {
				t.Fatalf("crash at step %d (%s): Commit = %v, want ErrCrashed", k, steps[k], err)
			}
			journalPath := filepath.Join(dir, "journal.json")
			if crashRecovery {
				if _, err := Recover(journalPath, anyRemove, func(string) bool { return true }); err != nil && !errors.Is(err, ErrCrashed) {
					t.Fatal(err)
				}
			}
			done, err := Recover(journalPath, anyRemove, nil)
			if err != nil {
				t.Fatalf("crash at step %d (%s): Recover: %v", k, steps[k], err)
			}
			if len(done) == 0 {
				CleanTemps(dir, filepath.Join(dir, "sub"))
			}
			got := snapshotDir(t, dir)
			if !maps.Equal(got, before) && !maps.Equal(got, after) {
				t.Errorf("crash at step %d (%s), recovery crashed too: %v: state is a mix:\n%v\nbefore %v\nafter %v", k, steps[k], crashRecovery, got, before, after)
			}
			for name := range got {
				if strings.Contains(name, ".tmp") || name == "journal.json" {
					t.Errorf("crash at step %d (%s): %s left behind", k, steps[k], name)
				}
			}
		}
	}
}

// TestJournalRefusesAnExistingFile: a file that must not be replaced makes
// Commit fail before anything is decided, and nothing is left behind.
func TestJournalRefusesAnExistingFile(t *testing.T) {
	dir := setupJournalDir(t)
	before := snapshotDir(t, dir)
	os.WriteFile(filepath.Join(dir, "sub", "new"), []byte("theirs"), 0o600)
	before["sub/new"] = "theirs"
	if err := journaledChange(dir, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("Commit = %v, want ErrExists", err)
	}
	if got := snapshotDir(t, dir); !maps.Equal(got, before) {
		t.Fatalf("refused commit changed the directory: %v", got)
	}
}

// TestRecoverRefusesAForeignJournal: a journal that does not parse is an
// error that names it, and nothing is changed.
func TestRecoverRefusesAForeignJournal(t *testing.T) {
	dir := setupJournalDir(t)
	p := filepath.Join(dir, "journal.json")
	os.WriteFile(p, []byte(`{"version":9}`), 0o600)
	if _, err := Recover(p, anyRemove, nil); err == nil || !strings.Contains(err.Error(), p) {
		t.Fatalf("Recover = %v, want an error naming %s", err, p)
	}
}

// TestRecoverRefusesForgedSteps: a journal can only rename a temporary file
// made beside its target onto it, and remove files inside its directory.
func TestRecoverRefusesForgedSteps(t *testing.T) {
	outside := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(outside, []byte("keep"), 0o600)
	for _, j := range []string{
		`{"version":1,"ops":[{"path":"` + outside + `","remove":true}]}`,
		`{"version":1,"ops":[{"path":"../x","remove":true}]}`,
		`{"version":1,"ops":[{"tmp":"old","path":"` + outside + `"}]}`,
		`{"version":1,"ops":[{"tmp":"sub/.idx.tmp1","path":"idx"}]}`,
		`{"version":1,"ops":[{"tmp":"","path":"idx"}]}`,
		`{"version":1,"ops":[{"path":"idx","remove":true}]}`,
	} {
		dir := setupJournalDir(t)
		before := snapshotDir(t, dir)
		p := filepath.Join(dir, "journal.json")
		os.WriteFile(p, []byte(j), 0o600)
		if _, err := Recover(p, anyRemove, nil); err == nil || !strings.Contains(err.Error(), "does not write") {
			t.Errorf("%s: Recover = %v, want a refusal", j, err)
		}
		got := snapshotDir(t, dir)
		delete(got, "journal.json")
		if !maps.Equal(got, before) {
			t.Errorf("%s: a refused journal changed %v", j, got)
		}
		if b, _ := os.ReadFile(outside); string(b) != "keep" {
			t.Fatalf("%s: a forged journal changed a file outside", j)
		}
	}
}

// anyRemove allows the removals journaledChange makes.
func anyRemove(rel string) bool { return rel == "gone" }

// TestPrepareOnceForManyOutside: Prepare records many targets outside the
// journal's directory in one write of the prepare file, Add of those
// targets writes it no more, and a crash before the journal leaves no
// temporary file outside once recovered.
func TestPrepareOnceForManyOutside(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	var targets []string
	for _, n := range []string{"a", "b", "c"} {
		targets = append(targets, filepath.Join(out, n))
	}
	var steps []string
	tx := Txn{Journal: filepath.Join(dir, "journal.json"), SyncOnce: true, Crash: func(s string) bool { steps = append(steps, s); return false }}
	if err := tx.Prepare(append(targets, filepath.Join(dir, "inside"))...); err != nil {
		t.Fatal(err)
	}
	for _, p := range targets {
		if err := tx.Add(p, []byte("x"), 0o600, false); err != nil {
			t.Fatal(err)
		}
	}
	prepares := 0
	for _, s := range steps {
		if strings.HasPrefix(s, "prepare ") {
			prepares++
		}
	}
	if prepares != 1 {
		t.Fatalf("%d writes of the prepare file, want 1: %v", prepares, steps)
	}
	tx.dead = true // stopped here, as by kill -9
	if _, err := Recover(tx.Journal, anyRemove, nil); err != nil {
		t.Fatal(err)
	}
	if got := snapshotDir(t, out); len(got) != 0 {
		t.Fatalf("left outside after recovery: %v", got)
	}
	if got := snapshotDir(t, dir); len(got) != 0 {
		t.Fatalf("left in the directory after recovery: %v", got)
	}
}

// manyChange adds 20 new files with AddMany, half of them outside the
// journal's directory, made durable in one pass.
func manyChange(dir, out string, crash func(string) bool) error {
	t := Txn{Journal: filepath.Join(dir, "journal.json"), Crash: crash, SyncOnce: true}
	defer t.Abort()
	var files []File
	for i := range 10 {
		files = append(files, File{Path: filepath.Join(dir, "sub", fmt.Sprint("f", i)), Data: []byte(fmt.Sprint("in", i)), Perm: 0o600},
			File{Path: filepath.Join(out, fmt.Sprint("g", i)), Data: []byte(fmt.Sprint("out", i)), Perm: 0o644})
	}
	if err := t.AddMany(files); err != nil {
		return err
	}
	return t.Commit()
}

// TestAddManyAllOrNothing: AddMany's files, written on several goroutines,
// are staged in order with their modes; a crash at any step leaves, once
// recovered, none or all of them and no temporary file, inside the
// journal's directory or outside; a file that exists refuses the change.
func TestAddManyAllOrNothing(t *testing.T) {
	setup := func() (string, string) {
		dir, out := t.TempDir(), t.TempDir()
		os.Mkdir(filepath.Join(dir, "sub"), 0o700)
		return dir, out
	}
	dir, out := setup()
	var steps []string
	if err := manyChange(dir, out, func(s string) bool { steps = append(steps, s); return false }); err != nil {
		t.Fatal(err)
	}
	all := len(snapshotDir(t, dir)) + len(snapshotDir(t, out))
	if st, err := os.Stat(filepath.Join(out, "g3")); all != 20 || err != nil || st.Mode().Perm() != 0o644 {
		t.Fatalf("%d files, g3: %v", all, err)
	}
	for k := range steps {
		dir, out := setup()
		n := 0
		if err := manyChange(dir, out, func(string) bool { n++; return n == k+1 }); !errors.Is(err, ErrCrashed) {
			t.Fatalf("crash at %q: %v", steps[k], err)
		}
		done, err := Recover(filepath.Join(dir, "journal.json"), anyRemove, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(done) == 0 {
			CleanTemps(dir, filepath.Join(dir, "sub"))
		}
		in, o := snapshotDir(t, dir), snapshotDir(t, out)
		if got := len(in) + len(o); got != 0 && got != 20 {
			t.Errorf("crash at %q: %d of 20 files after recovery: %v %v", steps[k], got, in, o)
		}
		for _, m := range []map[string]string{in, o} {
			for name := range m {
				if strings.Contains(name, ".tmp") || strings.HasPrefix(name, "journal.json") {
					t.Errorf("crash at %q: %s left behind", steps[k], name)
				}
			}
		}
	}
	dir, out = setup()
	os.WriteFile(filepath.Join(out, "g7"), []byte("theirs"), 0o600)
	if err := manyChange(dir, out, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("over an existing file: %v", err)
	}
	if in, o := snapshotDir(t, dir), snapshotDir(t, out); len(in) != 0 || len(o) != 1 {
		t.Fatalf("a refused change left %v %v", in, o)
	}
}

// TestRecoverLargeJournal: a journal and a prepare file of several MiB (a
// batch of thousands of devices) are read and completed by Recover: the
// renames are done, and the temporary files outside that a crash before
// the journal left are removed.
func TestRecoverLargeJournal(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	os.Mkdir(filepath.Join(dir, "sub"), 0o700)
	jp := filepath.Join(dir, "journal.json")
	long := strings.Repeat("x", 200)
	name := func(i int) string { return fmt.Sprintf("%s-%05d", long, i) }
	var ops []journalOp
	var targets []string
	for i := range 10000 {
		ops = append(ops, journalOp{Tmp: "sub/." + name(i) + ".tmp1", Path: "sub/" + name(i)})
		targets = append(targets, filepath.Join(out, name(i)))
	}
	os.WriteFile(filepath.Join(dir, "sub", "."+name(0)+".tmp1"), []byte("new"), 0o600)
	data, _ := json.Marshal(journal{Version: journalVersion, Ops: ops})
	if len(data) < 2<<20 {
		t.Fatalf("journal of %d bytes only", len(data))
	}
	os.WriteFile(jp, data, 0o600)
	done, err := Recover(jp, anyRemove, nil)
	if err != nil || len(done) != 10000 {
		t.Fatalf("Recover: %v, %d done", err, len(done))
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sub", name(0))); string(b) != "new" {
		t.Fatalf("the rename was not done: %q", b)
	}
	// Stopped before its journal: only the prepare file.
	pdata, _ := json.Marshal(targets)
	os.WriteFile(jp+".prepare", pdata, 0o600)
	tmp := filepath.Join(out, "."+name(7)+".tmp4242")
	keep := filepath.Join(out, "."+name(7)+".tmpx")
	os.WriteFile(tmp, []byte("key"), 0o600)
	os.WriteFile(keep, []byte("not ours"), 0o600)
	if _, err := Recover(jp, anyRemove, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(tmp); err == nil {
		t.Errorf("%s left behind", tmp)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("%s, not a temporary file of a target, was removed", keep)
	}
	if _, err := os.Stat(jp + ".prepare"); err == nil {
		t.Errorf("the prepare file is left")
	}
}

// TestRecoverLost: a target whose temporary file and file are both gone
// when the journal is replayed (deleted after the change was decided) is
// reported lost; one that was placed already is not.
func TestRecoverLost(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	jp := filepath.Join(dir, "journal.json")
	placed, gone, pending := filepath.Join(out, "placed"), filepath.Join(out, "gone"), filepath.Join(dir, "pending")
	os.WriteFile(placed, []byte("x"), 0o600)
	os.WriteFile(filepath.Join(dir, ".pending.tmp1"), []byte("y"), 0o600)
	ops := []journalOp{{Tmp: filepath.Join(out, ".placed.tmp1"), Path: placed}, {Tmp: filepath.Join(out, ".gone.tmp1"), Path: gone}, {Tmp: ".pending.tmp1", Path: "pending"}}
	data, _ := json.Marshal(journal{Version: journalVersion, Ops: ops})
	os.WriteFile(jp, data, 0o600)
	done, lost, err := RecoverLost(jp, anyRemove, nil)
	if err != nil || len(done) != 3 || fmt.Sprint(lost) != fmt.Sprint([]string{gone}) {
		t.Fatalf("RecoverLost: %v, done %v, lost %v", err, done, lost)
	}
	if b, _ := os.ReadFile(pending); string(b) != "y" {
		t.Errorf("the pending rename was not done")
	}
}
