package reload

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuf is a log destination safe to read while Watch writes.
type lockedBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWatchDebounces: a burst of changes is one decision, taken once the
// files are quiet; a later change is another; the end of ctx stops Watch.
// (The config names no pid file, so each decision is a logged refusal.)
func TestWatchDebounces(t *testing.T) {
	dir := t.TempDir()
	acl := filepath.Join(dir, "acl")
	os.WriteFile(acl, []byte("topic read a\n"), 0o600)
	conf := filepath.Join(dir, "mosquitto.conf")
	os.WriteFile(conf, []byte("acl_file "+acl+"\nlistener 1883 127.0.0.1\n"), 0o600)
	log := &lockedBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() {
		done <- Watch(ctx, Options{Config: conf}, WatchOptions{Poll: 20 * time.Millisecond, Quiet: time.Second}, slog.New(slog.NewTextHandler(log, nil)))
	}()
	decisions := func() int { return strings.Count(log.String(), "msg=\"not reloaded\"") }
	wait := func(n int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for decisions() < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d decisions, want %d:\n%s", decisions(), n, log.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	time.Sleep(100 * time.Millisecond)
	for i := 0; i < 5; i++ { // a burst, each change within the quiet time
		os.WriteFile(acl, []byte(strings.Repeat("topic read a\n", i+2)), 0o600)
		time.Sleep(60 * time.Millisecond)
	}
	wait(1)
	time.Sleep(1500 * time.Millisecond)
	if n := decisions(); n != 1 {
		t.Fatalf("a burst of 5 changes gave %d decisions:\n%s", n, log.String())
	}
	os.WriteFile(acl, []byte("topic read b\n"), 0o600)
	wait(2)
	if !strings.Contains(log.String(), "no pid_file line") {
		t.Errorf("the refusal's reason is not logged:\n%s", log.String())
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return when ctx ended")
	}
}
