package persist

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/broker/engine/topic"
	"github.com/mqttctl/mqttctl/internal/mqttwire"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestValuesRoundTrip: every kind of value decodes to what was encoded,
// MQTT 5 properties, QoS, retain, From and Created included.
func TestValuesRoundTrip(t *testing.T) {
	created := time.Date(2026, 12, 4, 21, 0, 0, 123456789, time.UTC)
	for _, m := range []*engine.Message{
		{Topic: "a", Payload: []byte{}, QoS: 0, Created: created},
		{Topic: "a/b", Payload: []byte("x"), QoS: 1, Retain: true, From: "dev1", Created: created},
		{Topic: "a/b", Payload: []byte("x"), QoS: 2, From: "dev1"}, // no creation time
		{Topic: "v5", Payload: make([]byte, 70000), QoS: 2, From: "c", Created: created, Props: &engine.MessageProps{
			PayloadFormat: 1, HasPayloadFormat: true, MessageExpiry: 4000000000, ContentType: "text/plain",
			ResponseTopic: "r/1", CorrelationData: []byte{0, 1, 2},
			User: []engine.UserProperty{{Key: "k1", Value: "v1"}, {Key: "k1", Value: "v2"}, {}}}},
		{Topic: "v5/empty", Payload: []byte("y"), QoS: 1, Created: created, Props: &engine.MessageProps{CorrelationData: []byte{}}},
		{Topic: "v5/format0", Payload: []byte("y"), QoS: 1, Created: created, Props: &engine.MessageProps{HasPayloadFormat: true}},
	} {
		got, err := decodeMessage(appendMessage(nil, m))
		if err != nil {
			t.Fatalf("%s: %v", m.Topic, err)
		}
		if !got.Created.Equal(m.Created) || got.Created.IsZero() != m.Created.IsZero() {
			t.Errorf("%s: created %v, want %v", m.Topic, got.Created, m.Created)
		}
		got.Created = m.Created
		if !reflect.DeepEqual(got, m) {
			t.Errorf("%s: got %+v %+v, want %+v %+v", m.Topic, got, got.Props, m, m.Props)
		}
	}
	for _, r := range []engine.SessionRecord{
		{ClientID: "a", Version: 4, Expiry: 0xFFFFFFFF},
		{ClientID: "b", Username: "alice", Version: 5, Expiry: 60},
	} {
		if got, err := decodeSession(r.ClientID, appendSession(nil, r)); err != nil || got != r {
			t.Errorf("session %+v: got %+v %v", r, got, err)
		}
	}
	for _, sub := range []topic.Subscription{
		{Client: "a", Filter: "x/#", QoS: 1},
		{Client: "a", Filter: "$share/g/x", QoS: 2, NoLocal: true, RetainAsPublished: true, RetainHandling: 2, ID: 268435455},
	} {
		if got, err := decodeSub(sub.Client, sub.Filter, appendSub(nil, &sub)); err != nil || got != sub {
			t.Errorf("subscription %+v: got %+v %v", sub, got, err)
		}
	}
}

// TestGarbageValuesNeverPanic: every cut of a good value, and arbitrary
// bytes, decode to an error or a value, never a panic.
func TestGarbageValuesNeverPanic(t *testing.T) {
	good := appendMessage(nil, &engine.Message{Topic: "t", Payload: []byte("p"), QoS: 1, Created: time.Now(),
		Props: &engine.MessageProps{ContentType: "c", User: []engine.UserProperty{{Key: "k", Value: "v"}}}})
	for i := range len(good) {
		if _, err := decodeMessage(good[:i]); err == nil {
			t.Errorf("a message cut at %d of %d bytes decoded", i, len(good))
		}
		_, _ = decodeSession("c", good[:i])
		_, _ = decodeSub("c", "f", good[:i])
	}
	for _, v := range [][]byte{nil, {1}, {2, 0}, {1, 0xff}, {1, 8, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}} {
		_, _ = decodeMessage(v)
		_, _ = decodeSession("c", v)
		_, _ = decodeSub("c", "f", v)
	}
}

// TestRoundTripThroughEngine: sessions (3.1.1 and MQTT 5 with expiry),
// subscriptions with their options, retained and queued messages with
// every MQTT 5 property survive a restart of engine and store.
func TestRoundTripThroughEngine(t *testing.T) {
	path := dbPath(t)
	props := func(p *mqttwire.Packet) {
		p.Props.PayloadFormat = 1
		p.Props.Set(mqttwire.PropPayloadFormat)
		p.Props.MessageExpiry = 3600
		p.Props.Set(mqttwire.PropMessageExpiry)
		p.Props.ContentType = []byte("text/plain")
		p.Props.Set(mqttwire.PropContentType)
		p.Props.ResponseTopic = []byte("reply/1")
		p.Props.Set(mqttwire.PropResponseTopic)
		p.Props.CorrelationData = []byte{9, 8, 7}
		p.Props.Set(mqttwire.PropCorrelationData)
		p.Props.User = []mqttwire.UserProperty{{Key: []byte("k"), Value: []byte("v1")}, {Key: []byte("k"), Value: []byte("v2")}}
	}
	b := startBroker(t, path, nil, nil)
	s5 := dial(t, b.addr, 5)
	s5.connect("sub5", true, 3600)
	s5.subscribe("rt/q/#", 1, 7)
	s5.disconnect()
	s4 := dial(t, b.addr, 4)
	s4.connect("sub4", false, 0)
	s4.subscribe("rt/q/#", 2, 0)
	s4.disconnect()
	pub := dial(t, b.addr, 5)
	pub.connect("pub", true, 0)
	for i, payload := range []string{"one", "two"} {
		p := &mqttwire.Packet{Topic: []byte("rt/q/" + payload), Payload: []byte(payload), ID: uint16(i + 1)}
		props(p)
		pub.publish1(p)
	}
	ret := &mqttwire.Packet{Topic: []byte("rt/ret"), Payload: []byte("kept"), Retain: true, ID: 3}
	props(ret)
	pub.publish1(ret)
	pub.publish1(&mqttwire.Packet{Topic: []byte("rt/gone"), Payload: []byte("x"), Retain: true, ID: 4})
	pub.publish1(&mqttwire.Packet{Topic: []byte("rt/gone"), Retain: true, ID: 5}) // cleared
	pub.disconnect()
	time.Sleep(100 * time.Millisecond) // the engine handles DISCONNECT
	b.stop()

	b = startBroker(t, path, nil, nil)
	if n, r := b.srv.Sessions(), b.srv.Retained(); n != 2 || r != 1 {
		t.Fatalf("restored %d sessions and %d retained messages, want 2 and 1", n, r)
	}
	check := func(p *mqttwire.Packet, what string, subID bool) {
		t.Helper()
		pr := &p.Props
		if !pr.Has(mqttwire.PropPayloadFormat) || pr.PayloadFormat != 1 || pr.MessageExpiry == 0 || pr.MessageExpiry > 3600 ||
			string(pr.ContentType) != "text/plain" || string(pr.ResponseTopic) != "reply/1" || string(pr.CorrelationData) != "\x09\x08\x07" ||
			len(pr.User) != 2 || string(pr.User[1].Value) != "v2" || subID != slices.Equal(pr.SubscriptionIDs, []uint32{7}) {
			t.Errorf("%s: properties not restored: %+v", what, pr)
		}
	}
	s5 = dial(t, b.addr, 5)
	if !s5.connect("sub5", false, 3600) {
		t.Fatal("sub5: no session present after the restart")
	}
	for _, want := range []string{"one", "two"} {
		p := s5.expect(mqttwire.PUBLISH)
		if string(p.Payload) != want || p.QoS != 1 || p.Retain {
			t.Fatalf("sub5 got %s, want %q", describe(p), want)
		}
		// The delivery is restored with its subscription identifier.
		check(p, "queued "+want, true)
		s5.send(&mqttwire.Packet{Type: mqttwire.PUBACK, ID: p.ID})
	}
	s5.subscribe("rt/#", 1, 0)
	p := s5.expect(mqttwire.PUBLISH)
	if string(p.Payload) != "kept" || !p.Retain || p.QoS != 1 {
		t.Fatalf("retained: got %s", describe(p))
	}
	check(p, "retained", false)
	s5.send(&mqttwire.Packet{Type: mqttwire.PUBACK, ID: p.ID})

	s4 = dial(t, b.addr, 4)
	if !s4.connect("sub4", false, 0) {
		t.Fatal("sub4: no session present after the restart")
	}
	// The subscription is QoS 2: the messages were published at QoS 1.
	if got := s4.receive(300*time.Millisecond, nil); !slices.Equal(got, []string{"one", "two"}) {
		t.Fatalf("sub4 got %q", got)
	}
}

// TestRekeyAfterRestore: the engine numbers a restored session's messages
// 1..n; the store renumbers them the same way, so acknowledgements after a
// restart delete the right entries: nothing comes back twice, nothing is
// lost, over several restarts with gaps in the numbering.
func TestRekeyAfterRestore(t *testing.T) {
	path := dbPath(t)
	publish := func(b *broker, msgs ...string) {
		t.Helper()
		pub := dial(t, b.addr, 4)
		pub.connect("pub", true, 0)
		for i, m := range msgs {
			pub.publish1(&mqttwire.Packet{Topic: []byte("q/" + m), Payload: []byte(m), ID: uint16(i + 1)})
		}
		pub.disconnect()
	}
	// drain connects dev1, acks what ack says and returns what arrived.
	drain := func(b *broker, ack ...string) []string {
		t.Helper()
		c := dial(t, b.addr, 4)
		c.connect("dev1", false, 0)
		got := c.receive(300*time.Millisecond, func(p string) bool { return ack == nil || slices.Contains(ack, p) })
		c.disconnect()
		time.Sleep(50 * time.Millisecond)
		return got
	}
	b := startBroker(t, path, nil, nil)
	c := dial(t, b.addr, 4)
	c.connect("dev1", false, 0)
	c.subscribe("q/#", 1, 0)
	c.disconnect()
	publish(b, "m1", "m2", "m3", "m4", "m5")
	b.stop()

	for i, round := range []struct {
		publish []string // while dev1 is away, after the restart
		want    []string
		ack     []string // nil: all
	}{
		{[]string{"m6", "m7"}, []string{"m1", "m2", "m3", "m4", "m5", "m6", "m7"}, []string{"m1", "m2", "m3", "m6"}},
		{nil, []string{"m4", "m5", "m7"}, []string{"m5"}},
		{[]string{"m8"}, []string{"m4", "m7", "m8"}, nil},
		{nil, nil, nil},
	} {
		b = startBroker(t, path, nil, nil)
		publish(b, round.publish...)
		if got := drain(b, round.ack...); !slices.Equal(got, round.want) {
			t.Fatalf("round %d: got %q, want %q", i, got, round.want)
		}
		b.stop()
	}
}

// TestDurableWaitsForCommit: Durable returns only once what was handed
// before it is committed (here the database's write lock is held, as a
// slow disk would), and then the change is in the database.
func TestDurableWaitsForCommit(t *testing.T) {
	s := openStore(t, dbPath(t), nil)
	defer s.Close()
	release, held := make(chan struct{}), make(chan struct{})
	var once sync.Once
	unlock := func() { once.Do(func() { close(release) }) }
	defer unlock() // before Close, also when the test fails
	go s.db.Update(func(*bbolt.Tx) error { close(held); <-release; return nil })
	<-held
	s.SaveQueued("dev1", 1, engine.Queued{M: &engine.Message{Topic: "q/1", Payload: []byte("x"), QoS: 1, Created: time.Now()}, QoS: 1})
	returned := make(chan struct{})
	go func() { s.Durable(nil); close(returned) }()
	select {
	case <-returned:
		t.Fatal("Durable returned while the commit could not happen")
	case <-time.After(200 * time.Millisecond):
	}
	unlock()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("Durable did not return after the commit")
	}
	if n := count(t, s, bucketQueued); n != 1 {
		t.Fatalf("%d queued entries after Durable, want 1", n)
	}
}

func count(t testing.TB, s *Store, bucket []byte) int {
	t.Helper()
	n := 0
	if err := s.db.View(func(tx *bbolt.Tx) error { n = tx.Bucket(bucket).Stats().KeyN; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestGroupCommit: publishers that hand changes while a commit runs share
// the next one: 8 concurrent SaveQueued+Durable take 2 transactions
// (the one running and the one after), not 8.
func TestGroupCommit(t *testing.T) {
	s := openStore(t, dbPath(t), nil)
	defer s.Close()
	var mu sync.Mutex
	commits := 0
	gate := make(chan struct{})
	s.holdCommit = func() {
		mu.Lock()
		commits++
		mu.Unlock()
		<-gate
	}
	m := &engine.Message{Topic: "q", Payload: []byte("x"), QoS: 1}
	first := make(chan struct{})
	go func() { s.SaveQueued("c0", 1, engine.Queued{M: m, QoS: m.QoS}); s.Durable(nil); close(first) }()
	for { // the first commit has started and waits on the gate
		mu.Lock()
		n := commits
		mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { s.SaveQueued("c"+string(rune('1'+i)), 1, engine.Queued{M: m, QoS: m.QoS}); s.Durable(nil) })
	}
	for { // all 8 handed their change
		s.mu.Lock()
		n := len(s.pending)
		s.mu.Unlock()
		if n == 8 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	<-first
	if commits != 2 {
		t.Fatalf("%d commits for 9 publishers, want 2", commits)
	}
	if n := count(t, s, bucketQueued); n != 9 {
		t.Fatalf("%d queued entries, want 9", n)
	}
}

// TestBatchCoalesces: a message queued and deleted in one batch is never
// written; a session deleted between two batches' changes keeps only the
// later ones.
func TestBatchCoalesces(t *testing.T) {
	s := openStore(t, dbPath(t), nil)
	defer s.Close()
	m := &engine.Message{Topic: "q", Payload: []byte("x"), QoS: 1}
	s.commit([]op{
		{kind: opSaveSession, client: "a", sess: engine.SessionRecord{ClientID: "a", Version: 4, Expiry: 0xFFFFFFFF}},
		{kind: opSaveQueued, client: "a", seq: 1, msg: m, q: engine.Queued{M: m, QoS: 1}},
		{kind: opSaveQueued, client: "a", seq: 2, msg: m, q: engine.Queued{M: m, QoS: 1}},
		{kind: opDeleteQueued, client: "a", seq: 1},
		{kind: opSaveSub, client: "a", name: "x", sub: topic.Subscription{Filter: "x", QoS: 1}},
		{kind: opDeleteSession, client: "a"}, // a clean start: all of a's goes
		{kind: opSaveSession, client: "a", sess: engine.SessionRecord{ClientID: "a", Version: 4, Expiry: 0xFFFFFFFF}},
		{kind: opSaveQueued, client: "a", seq: 1, msg: m, q: engine.Queued{M: m, QoS: 1}}, // the new session's first
		{kind: opSaveQueued, client: "ab", seq: 1, msg: m, q: engine.Queued{M: m, QoS: 1}},
		{kind: opDeleteSession, client: "ab"},
	}, nil)
	if q, sub, ss := count(t, s, bucketQueued), count(t, s, bucketSubs), count(t, s, bucketSessions); q != 1 || sub != 0 || ss != 1 {
		t.Fatalf("%d queued, %d subscriptions, %d sessions; want 1, 0, 1", q, sub, ss)
	}
}

// TestForeignState: a database (or old journal) the broker did not write
// is refused with the fix, and what a symbolic link points to is left
// untouched. As root the file is given to nobody; otherwise the broker
// plays another uid.
func TestForeignState(t *testing.T) {
	foreign := func(t *testing.T, p string) {
		if os.Geteuid() == 0 {
			if err := os.Chown(p, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			return
		}
		t.Cleanup(SetEUIDForTest(os.Geteuid() + 1))
	}
	boltFile := func(t *testing.T, p string) {
		db, err := bbolt.Open(p, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
	}
	journal := func(t *testing.T, p string) {
		if err := os.WriteFile(p, []byte{1, 0, 1, 0, 0, 0, 2, 'k', '{', '}'}, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	link := func(t *testing.T, p string) {
		if err := os.WriteFile(p+".victim", nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(p+".victim", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		plant func(t *testing.T, db string)
		want  string
	}{
		{"database owned by another account", func(t *testing.T, db string) { boltFile(t, db); foreign(t, db) }, "owned by uid"},
		{"database writable by the group", func(t *testing.T, db string) { boltFile(t, db); os.Chmod(db, 0o660) }, "mode 0660"},
		{"database readable by others", func(t *testing.T, db string) { boltFile(t, db); os.Chmod(db, 0o604) }, "mode 0604"},
		{"database a symbolic link", link, "symbolic link"},
		{"database a directory", func(t *testing.T, db string) { os.Mkdir(db, 0o700) }, "is a directory"},
		{"old journal owned by another account", func(t *testing.T, db string) { journal(t, db+".journal"); foreign(t, db+".journal") }, "owned by uid"},
		{"old journal a symbolic link", func(t *testing.T, db string) { link(t, db+".journal") }, "symbolic link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := dbPath(t)
			tc.plant(t, db)
			s, err := Open(db, nil)
			if err == nil {
				err = s.Restore(engine.New(engine.Options{}), nil)
				s.Close()
			}
			if !errors.Is(err, ErrForeignState) {
				t.Fatalf("%v; want ErrForeignState", err)
			}
			mustContain(t, err, tc.want, "chown", "chmod 600", "move it away")
			for _, victim := range []string{db + ".victim", db + ".journal.victim"} {
				if st, err := os.Stat(victim); err == nil && st.Size() != 0 {
					t.Fatalf("%s was written through a symbolic link (%d bytes)", victim, st.Size())
				}
			}
		})
	}
}

// TestInUse: a second Open of the same database (another broker with the
// same persistence_location) fails within about a second with ErrInUse
// and the fix.
func TestInUse(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path, nil)
	defer s.Close()
	_, err := Open(path, nil)
	if !errors.Is(err, ErrInUse) {
		t.Fatalf("%v; want ErrInUse", err)
	}
	mustContain(t, err, path, "give each its own directory")
}

// TestNotADatabase: a file that is not a bbolt database is refused with
// the fix, not loaded and not overwritten.
func TestNotADatabase(t *testing.T) {
	path := dbPath(t)
	junk := []byte(strings.Repeat("not a database ", 1000))
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path, nil)
	mustContain(t, err, path, "move it away")
	if b, _ := os.ReadFile(path); string(b) != string(junk) {
		t.Fatal("the file was changed")
	}
}

// TestCorruptEntriesSkipped: garbage values, keys that name no session
// and expired messages are logged and deleted at restore, never loaded
// and never a panic; the good entries are restored.
func TestCorruptEntriesSkipped(t *testing.T) {
	path := dbPath(t)
	log := &testutil.SyncBuffer{}
	s := openStore(t, path, log)
	good := &engine.Message{Topic: "q/ok", Payload: []byte("ok"), QoS: 1, Created: time.Now()}
	expired := &engine.Message{Topic: "q/old", Payload: []byte("old"), QoS: 1, Created: time.Now().Add(-time.Hour),
		Props: &engine.MessageProps{MessageExpiry: 60}}
	s.SaveSession(engine.SessionRecord{ClientID: "dev1", Version: 4, Expiry: 0xFFFFFFFF})
	s.SaveSubscription("dev1", topic.Subscription{Filter: "q/#", QoS: 1})
	s.SaveQueued("dev1", 1, engine.Queued{M: expired, QoS: expired.QoS})
	s.SaveQueued("dev1", 2, engine.Queued{M: good, QoS: good.QoS})
	s.SaveRetained(&engine.Message{Topic: "r/ok", Payload: []byte("r"), Retain: true, Created: time.Now()})
	s.SaveRetained(&engine.Message{Topic: "r/old", Payload: []byte("r"), Retain: true, Created: time.Now().Add(-time.Hour),
		Props: &engine.MessageProps{MessageExpiry: 60}})
	s.flush()
	garbage := []byte{1, 0xff, 0xff, 0xff}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, kv := range []struct {
			b    []byte
			k, v []byte
		}{
			{bucketSessions, []byte("bad"), garbage},
			{bucketSessions, []byte("v9"), []byte{9, 9, 9}},
			{bucketSubs, appendSubKey(nil, "dev1", "bad/#"), garbage},
			{bucketSubs, appendSubKey(nil, "nobody", "x"), appendSub(nil, &topic.Subscription{QoS: 1})},
			{bucketSubs, []byte{0xff}, garbage},
			{bucketQueued, appendQueuedKey(nil, "dev1", 3), garbage},
			{bucketQueued, appendQueuedKey(nil, "nobody", 1), appendQueued(nil, engine.Queued{M: good, QoS: 1})},
			{bucketQueued, appendClientPrefix(nil, "dev1"), appendQueued(nil, engine.Queued{M: good, QoS: 1})},
			{bucketRetained, []byte("r/bad"), garbage},
			{bucketRetained, []byte("r/other"), appendMessage(nil, good)},
		} {
			if err := tx.Bucket(kv.b).Put(kv.k, kv.v); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	b := serveStore(t, s, nil)
	defer b.stop()
	if n, r := b.srv.Sessions(), b.srv.Retained(); n != 1 || r != 1 {
		t.Fatalf("restored %d sessions and %d retained messages, want 1 and 1", n, r)
	}
	for _, w := range []string{"stored session does not decode", "stored subscription does not decode", "stored queued message does not decode",
		"stored retained message does not decode", "under another topic's key"} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("log does not say %q:\n%s", w, log)
		}
	}
	if q, sub, ss, r := count(t, s, bucketQueued), count(t, s, bucketSubs), count(t, s, bucketSessions), count(t, s, bucketRetained); q != 1 || sub != 1 || ss != 1 || r != 1 {
		t.Fatalf("left %d queued, %d subscriptions, %d sessions, %d retained; want 1 each", q, sub, ss, r)
	}
	c := dial(t, b.addr, 4)
	c.connect("dev1", false, 0)
	if got := c.receive(300*time.Millisecond, nil); !slices.Equal(got, []string{"ok"}) {
		t.Fatalf("dev1 got %q, want the one good message", got)
	}
}

// TestDropRetainedAtRestore: drop decides which retained messages are
// deleted at start (the broker's own namespace).
func TestDropRetainedAtRestore(t *testing.T) {
	path := dbPath(t)
	s := openStore(t, path, nil)
	for _, tp := range []string{"a/1", "$mqttctl/x", "b"} {
		s.SaveRetained(&engine.Message{Topic: tp, Payload: []byte("v"), Retain: true, Created: time.Now()})
	}
	s.Close()
	b := startBroker(t, path, nil, func(tp string) bool { return strings.HasPrefix(tp, "$mqttctl/") })
	if r := b.srv.Retained(); r != 2 {
		t.Fatalf("%d retained, want 2", r)
	}
	if n := count(t, b.s, bucketRetained); n != 2 {
		t.Fatalf("%d retained left in the database, want 2", n)
	}
}

// TestSyncAndClose: Sync while changes are handed, and after Close (the
// broker's once-a-second ticker may fire then), is safe; changes handed
// after Close are dropped with a log line, Durable does not wait for them.
func TestSyncAndClose(t *testing.T) {
	log := &testutil.SyncBuffer{}
	s := openStore(t, dbPath(t), log)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				if err := s.Sync(); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	m := &engine.Message{Topic: "q", Payload: []byte("x"), QoS: 1}
	for i := range 1000 {
		s.SaveQueued("c", uint64(i+1), engine.Queued{M: m, QoS: m.QoS})
	}
	s.Durable(nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Sync(); err != nil {
		t.Fatalf("Sync after Close: %v", err)
	}
	close(stop)
	wg.Wait()
	s.SaveQueued("c", 1001, engine.Queued{M: m, QoS: m.QoS})
	s.Durable(nil)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "after the store was closed") {
		t.Fatalf("no log line for a change after Close:\n%s", log)
	}
}
