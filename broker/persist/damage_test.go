package persist

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/broker/engine"
	"github.com/mqttctl/mqttctl/internal/testutil"
)

// TestDamagedDatabase: a truncated database, or one with a damaged page,
// is refused with ErrDamaged and what to do (no fault, no panic); a
// damaged newest header (bbolt then opens the transaction before) is
// logged loudly; an empty file is said to start empty.
func TestDamagedDatabase(t *testing.T) {
	seed := func(t *testing.T) string {
		path := dbPath(t)
		s := openStore(t, path, nil)
		for i := range 200 {
			s.SaveSession(engine.SessionRecord{ClientID: "c" + string(rune('a'+i%26)) + strings.Repeat("x", i), Version: 4, Expiry: 0xFFFFFFFF})
		}
		s.SaveRetained(&engine.Message{Topic: "r/1", Payload: []byte(strings.Repeat("p", 3000)), Retain: true, Created: time.Now()})
		s.Durable(nil)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	open := func(path string, log *testutil.SyncBuffer) error {
		s, err := Open(path, logTo(log))
		if err != nil {
			return err
		}
		defer s.Close()
		return s.Restore(engine.New(engine.Options{}), nil)
	}
	write := func(t *testing.T, path string, off int64, b []byte) {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(b, off); err != nil {
			t.Fatal(err)
		}
	}
	ff := []byte(strings.Repeat("\xff", 4096))
	for _, c := range []struct {
		name   string
		damage func(t *testing.T, path string)
		log    string // when it opens
	}{
		{"truncated to 8192", func(t *testing.T, p string) { os.Truncate(p, 8192) }, ""},
		{"truncated to 10000", func(t *testing.T, p string) { os.Truncate(p, 10000) }, ""},
		{"meta 0 damaged", func(t *testing.T, p string) { write(t, p, 16, ff[:8]) }, "header is damaged"},
		{"empty file", func(t *testing.T, p string) { os.Truncate(p, 0) }, "empty file"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := seed(t)
			c.damage(t, path)
			var log testutil.SyncBuffer
			err := open(path, &log)
			if c.log != "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !strings.Contains(log.String(), c.log) {
					t.Fatalf("log lacks %q:\n%s", c.log, log.String())
				}
				return
			}
			if !errors.Is(err, ErrDamaged) {
				t.Fatalf("refused without what to do: %v", err)
			}
		})
	}
	// Garbage on any one page, header or data: refused with what to do,
	// or read (a page no tree uses), never a fault or a panic.
	path := seed(t)
	st, _ := os.Stat(path)
	good, _ := os.ReadFile(path)
	refused := 0
	for off := int64(0); off < st.Size(); off += 4096 {
		for _, n := range []int{16, 64, 4096} {
			os.WriteFile(path, good, 0o600)
			write(t, path, off, ff[:n])
			if err := open(path, nil); err != nil {
				refused++
				if !strings.Contains(err.Error(), "move it away") {
					t.Errorf("garbage at %d (%d bytes): refused without what to do: %v", off, n, err)
				}
			}
		}
	}
	if refused == 0 {
		t.Error("no damage was refused")
	}
}
