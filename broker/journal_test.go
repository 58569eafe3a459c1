package broker

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

func TestJournalRecoversPendingEntries(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"a", "b", "c"} {
		if err := j.put(k, []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.del("a"); err != nil {
		t.Fatal(err)
	}
	j.f.Close()
	// A crash cut the last record short.
	f, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{opPut, 0, 1, 0, 0, 0, 9, 'x', 'y'})
	f.Close()

	j, err = openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	if len(j.recovered) != 2 || string(j.recovered["b"]) != "vb" || string(j.recovered["c"]) != "vc" {
		t.Fatalf("recovered %q, want b and c", j.recovered)
	}
	if err := j.reset(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(path); st.Size() != 0 {
		t.Fatalf("reset left %d bytes", st.Size())
	}
}

func TestJournalCompacts(t *testing.T) {
	j, err := openJournal(filepath.Join(t.TempDir(), "j"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	big := make([]byte, 64<<10)
	written := 0
	for i := 0; written < 2*journalCompactSize; i++ {
		k := string(rune('a' + i%26))
		j.put(k, big)
		j.del(k)
		written += len(big)
	}
	if j.size > journalCompactSize {
		t.Fatalf("journal grew to %d bytes with nothing pending", j.size)
	}
}

// TestJournalStaysSmallUnderLoad: with entries always pending (a load that
// never pauses), compaction keeps the file small and keeps what is pending.
func TestJournalStaysSmallUnderLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	val := make([]byte, 4<<10)
	for i := range 4000 { // 16 MB written, 4 entries always pending
		j.put(fmt.Sprint(i), val)
		if i >= 4 {
			j.del(fmt.Sprint(i - 4))
		}
	}
	if j.size > journalCompactSize+int64(len(val))*8 {
		t.Fatalf("journal grew to %d bytes with 4 entries pending", j.size)
	}
	j.close()
	again, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	if len(again.recovered) != 4 || again.recovered["3999"] == nil {
		t.Fatalf("after compaction the journal holds %d entries, want the 4 pending", len(again.recovered))
	}
}

// TestJournalKeepsRecoveredUntilReset: entries found at open survive a
// compaction that comes before they are republished.
func TestJournalKeepsRecoveredUntilReset(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	j.put("acked-before-crash", []byte("v"))
	j.close()
	if j, err = openJournal(path); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 64<<10)
	for i := range 2 * journalCompactSize / len(big) { // new traffic: the journal compacts on the way
		j.put(fmt.Sprint(i), big)
		j.del(fmt.Sprint(i))
	}
	j.close()
	again, err := openJournal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer again.close()
	if again.recovered["acked-before-crash"] == nil {
		t.Fatal("a compaction before the replay dropped an entry recovered at open")
	}
}
