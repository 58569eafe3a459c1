package broker

import (
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mochi-mqtt/server/v2/hooks/storage"
	"go.etcd.io/bbolt"
)

// TestJournalClearedOnlyAfterCommit: a publish's journal entry outlives
// every moment its queued copies are not yet committed, so a kill -9 then
// republishes it; once committed, the entry is gone.
func TestJournalClearedOnlyAfterCommit(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	jr, err := openJournal(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	s, err := openBoltStore(path, jr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	if err := jr.put("alice\x001", []byte(`{"t":"a"}`)); err != nil {
		t.Fatal(err)
	}
	// Hold the database's write lock so the writer cannot commit.
	release, held := make(chan struct{}), make(chan struct{})
	go s.db.Update(func(*bbolt.Tx) error { close(held); <-release; return nil })
	<-held
	s.put(storage.InflightKey+"_bob:1", &storage.Message{ID: storage.InflightKey + "_bob:1", T: storage.InflightKey, TopicName: "a", PacketID: 1})
	s.clearJournal("alice\x001")
	time.Sleep(50 * time.Millisecond) // let the writer take the batch and block
	if crashed := recovered(t, path); crashed["alice\x001"] == nil {
		t.Fatal("the journal entry was cleared before its batch was committed")
	}
	close(release)
	s.flush()
	if after := recovered(t, path); after["alice\x001"] != nil {
		t.Fatal("the journal entry stayed after the commit")
	}
	msgs, err := s.StoredInflightMessages()
	if err != nil || len(msgs) != 1 || msgs[0].PacketID != 1 {
		t.Fatalf("stored inflight: %+v %v", msgs, err)
	}
}

// recovered is what a start after a crash now would republish.
func recovered(t *testing.T, path string) map[string][]byte {
	t.Helper()
	j, err := openJournal(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	defer j.f.Close()
	return j.recovered
}

// TestBatchCoalesces: a message queued and acknowledged in one batch is
// never written; the last change to a key wins.
func TestBatchCoalesces(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store.db")
	jr, err := openJournal(path + ".journal")
	if err != nil {
		t.Fatal(err)
	}
	s, err := openBoltStore(path, jr, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	msg := func(id string) *storage.Message {
		return &storage.Message{ID: storage.RetainedKey + "_" + id, T: storage.RetainedKey, TopicName: id}
	}
	s.commit([]storeOp{
		{key: storage.RetainedKey + "_a", val: mustMarshal(t, msg("a"))},
		{key: storage.RetainedKey + "_b", val: mustMarshal(t, msg("b"))},
		{key: storage.RetainedKey + "_a"},
	})
	got, err := s.StoredRetainedMessages()
	if err != nil || len(got) != 1 || got[0].TopicName != "b" {
		t.Fatalf("stored: %+v %v", got, err)
	}
}

func mustMarshal(t *testing.T, m *storage.Message) []byte {
	t.Helper()
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
