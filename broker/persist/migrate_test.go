package persist

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// copyFixture copies testdata/name to a new directory (mode 0600, the
// broker's own) and returns the copy's path.
func copyFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	path := dbPath(t)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMigrateMochi: a database written by serve on mochi-mqtt v2.7.9
// (testdata/README.md) is converted at Open in one transaction that
// deletes the old bucket, and restores: dev1's three queued messages in
// order, dev5's MQTT 5 session, both retained messages with their MQTT 5
// properties.
func TestMigrateMochi(t *testing.T) {
	path := copyFixture(t, "mochi-v2.7.9.db")
	log := &testutil.SyncBuffer{}
	b := startBroker(t, path, log, nil)
	if !strings.Contains(log.String(), "persistence converted from the previous broker's layout") {
		t.Errorf("no log line for the conversion:\n%s", log)
	}
	if err := b.s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketMochi) != nil {
			t.Error("the mochi bucket is still there")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n, r := b.srv.Sessions(), b.srv.Retained(); n != 2 || r != 2 {
		t.Fatalf("restored %d sessions and %d retained messages, want 2 and 2", n, r)
	}
	dev1 := dial(t, b.addr, 4)
	if !dev1.connect("dev1", false, 0) {
		t.Fatal("dev1: no session present")
	}
	if got := dev1.receive(300*time.Millisecond, nil); !slices.Equal(got, []string{"queued 1", "queued 2", "queued 3"}) {
		t.Fatalf("dev1 got %q", got)
	}
	dev5 := dial(t, b.addr, 5)
	if !dev5.connect("dev5", false, 86400) {
		t.Fatal("dev5: no session present")
	}
	dev5.subscribe("fx/#", 1, 0)
	got := map[string]*mqttwire.Packet{}
	for range 2 {
		p := dev5.expect(mqttwire.PUBLISH)
		got[string(p.Topic)] = p
		dev5.send(&mqttwire.Packet{Type: mqttwire.PUBACK, ID: p.ID})
	}
	if p := got["fx/plain"]; p == nil || string(p.Payload) != "retained v3" || !p.Retain || p.Props.Present != 0 {
		t.Errorf("fx/plain: %s", describe(p))
	}
	p := got["fx/v5"]
	if p == nil || string(p.Payload) != "retained v5" || !p.Retain || p.QoS != 1 {
		t.Fatalf("fx/v5: %s", describe(p))
	}
	if pr := p.Props; string(pr.ContentType) != "text/plain" || len(pr.User) != 2 || string(pr.User[0].Key) != "k1" || string(pr.User[1].Value) != "v2" ||
		pr.MessageExpiry < 3900000000 {
		t.Errorf("fx/v5 properties: %+v", pr)
	}

	// Converted once: the next start reads the new layout only.
	b.stop()
	log2 := &testutil.SyncBuffer{}
	b = startBroker(t, path, log2, nil)
	if strings.Contains(log2.String(), "converted") || b.srv.Sessions() != 2 || b.srv.Retained() != 2 {
		t.Fatalf("second start: %d sessions, %d retained\n%s", b.srv.Sessions(), b.srv.Retained(), log2)
	}
}

// TestMigrateJournal: publishes the previous broker journalled (a kill -9
// between its PUBACK and storing the copies) are published again at the
// first start, and the journal is removed once they are committed.
func TestMigrateJournal(t *testing.T) {
	path := copyFixture(t, "mochi-v2.7.9.db")
	rec := func(op byte, k, v string) []byte {
		b := []byte{op, 0, byte(len(k)), 0, 0, 0, byte(len(v))}
		return append(append(b, k...), v...)
	}
	var j []byte
	j = append(j, rec(1, "pub\x001", `{"t":"q/dev1/4","p":"cXVldWVkIDQ=","q":1}`)...)
	j = append(j, rec(1, "pub\x002", `{"t":"q/dev1/5","p":"eA==","q":1}`)...)
	j = append(j, rec(2, "pub\x002", "")...)                    // stored before the crash
	j = append(j, rec(1, "pub\x003", `{"t":"q/dev1/6"`)[:9]...) // cut short by the crash
	if err := os.WriteFile(path+".journal", j, 0o600); err != nil {
		t.Fatal(err)
	}
	b := startBroker(t, path, nil, nil)
	if _, err := os.Stat(path + ".journal"); !os.IsNotExist(err) {
		t.Fatalf("the journal is still there: %v", err)
	}
	b.stop()
	b = startBroker(t, path, nil, nil) // the republished message was stored
	dev1 := dial(t, b.addr, 4)
	dev1.connect("dev1", false, 0)
	if got := dev1.receive(300*time.Millisecond, nil); !slices.Equal(got, []string{"queued 1", "queued 2", "queued 3", "queued 4"}) {
		t.Fatalf("dev1 got %q", got)
	}
}

// TestMigrateCrash: a kill -9 at any moment of the conversion leaves
// either the old layout whole or the new one whole: the next Open
// converts or reads it, and every session and queued message is there.
func TestMigrateCrash(t *testing.T) {
	const sessions, queued = 300, 20
	src := filepath.Join(t.TempDir(), "mochi.db")
	db, err := bbolt.Open(src, 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket(bucketMochi)
		if err != nil {
			return err
		}
		for i := range sessions {
			id := fmt.Sprintf("dev%d", i)
			put := func(k, v string) {
				if err == nil {
					err = b.Put([]byte(k), []byte(v))
				}
			}
			put("CL_"+id, fmt.Sprintf(`{"id":%q,"protocolVersion":4,"clean":false}`, id))
			put("SUB_"+id+":q/#", fmt.Sprintf(`{"client":%q,"filter":"q/#","qos":1}`, id))
			for j := 1; j <= queued; j++ {
				put(fmt.Sprintf("IFM_%s:%d", id, j), fmt.Sprintf(`{"client":%q,"topic_name":"q/%d","payload":"eA==","fixedheader":{"type":3,"qos":1},"created":1796417980,"packet_id":%d}`, id, j, j))
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	fixture, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		path := dbPath(t)
		if err := os.WriteFile(path, fixture, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestMigrateChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), "PERSIST_MIGRATE_CHILD="+path)
		out := &testutil.SyncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Duration(rand.IntN(120)) * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		converted := strings.Contains(out.String(), "MIGRATED")
		s := openStore(t, path, nil)
		srv := engine.New(engine.Options{MaxQueued: 100000})
		if err := s.Restore(srv, nil); err != nil {
			t.Fatal(err)
		}
		st := srv.Stats()
		s.Close()
		if st.Sessions != sessions || st.Queued != sessions*queued {
			t.Fatalf("round %d (converted before the kill: %v): %d sessions and %d queued messages, want %d and %d",
				round, converted, st.Sessions, st.Queued, sessions, sessions*queued)
		}
		t.Logf("round %d: killed %s the conversion committed", round, map[bool]string{true: "after", false: "before"}[converted])
	}
}

// TestMigrateChild converts the database PERSIST_MIGRATE_CHILD names, for
// TestMigrateCrash to kill.
func TestMigrateChild(t *testing.T) {
	path := os.Getenv("PERSIST_MIGRATE_CHILD")
	if path == "" {
		t.Skip("the child process of TestMigrateCrash")
	}
	s, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("MIGRATED")
	s.Close()
}
