package enroll

import (
	"crypto/x509/pkix"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mqttctl/mqttctl/pki"
)

// TestTokenRepeatAfterALostAnswer: finding 9 of the adversarial pass. A
// device whose answer to a token enrolment was lost asks again with the
// same token for the same key: it gets the same certificate (logged
// "answered again"), nothing is issued. The same token for another key, or
// after pki.TokenRepeatWindow, is refused (401) as before; so is the token
// once the certificate was revoked.
func TestTokenRepeatAfterALostAnswer(t *testing.T) {
	var logs syncBuffer
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, Options{MaxFailures: 1000, Now: clock, Log: slog.New(slog.NewTextHandler(&logs, nil))}, nil)
	f.dir.Now = clock
	toks, err := f.dir.CreateTokens(pki.TokenOptions{Names: []string{"dev9"}})
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t)
	body := csrOf(t, pkix.Name{CommonName: "dev9"}, key)
	code, msg, first := f.do(t, "simpleenroll", nil, "dev9", toks[0].Secret, body)
	if code != 200 {
		t.Fatalf("enrolment: %d %s", code, msg)
	}
	before, _, _ := f.dir.Entries()
	code, msg, again := f.do(t, "simpleenroll", nil, "dev9", toks[0].Secret, csrOf(t, pkix.Name{CommonName: "dev9"}, key))
	if code != 200 || !again.Equal(first) || !strings.Contains(logs.String(), "answered again") {
		t.Fatalf("the same token for the same key: %d %s", code, msg)
	}
	if after, _, _ := f.dir.Entries(); len(after) != len(before) {
		t.Fatalf("%d certificates before, %d after the repeat", len(before), len(after))
	}
	if code, msg, _ := f.do(t, "simpleenroll", nil, "dev9", toks[0].Secret, csrOf(t, pkix.Name{CommonName: "dev9"}, newKey(t))); code != 401 {
		t.Fatalf("the used token for another key: %d %s", code, msg)
	}
	mu.Lock()
	now = now.Add(pki.TokenRepeatWindow + time.Minute)
	mu.Unlock()
	if code, msg, _ := f.do(t, "simpleenroll", nil, "dev9", toks[0].Secret, body); code != 401 {
		t.Fatalf("the used token after the window: %d %s", code, msg)
	}
	mu.Lock()
	now = time.Now()
	mu.Unlock()
	if _, _, err := f.dir.Revoke(pki.RevokeOptions{Name: "dev9"}); err != nil {
		t.Fatal(err)
	}
	if code, msg, _ := f.do(t, "simpleenroll", nil, "dev9", toks[0].Secret, body); code != 401 {
		t.Fatalf("the used token once its certificate was revoked: %d %s", code, msg)
	}
}
