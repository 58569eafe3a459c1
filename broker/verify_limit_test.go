package broker

import (
	"testing"

	"github.com/mqttctl/mqttctl/confgen"
)

// TestPasswordChecksGoThroughTheLimiter: a login's hash check holds a slot
// of hooks.verifying while it runs (the README's claim that argon2id's
// 46 MiB is taken at most once per core rests on it). Not a timing test: it
// only watches the slot being taken during one argon2id check.
func TestPasswordChecksGoThroughTheLimiter(t *testing.T) {
	line, err := confgen.HashArgon2id([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	hash, err := confgen.ParseHash(line)
	if err != nil {
		t.Fatal(err)
	}
	h := &hooks{verifying: make(chan struct{}, 1)}
	done := make(chan bool)
	go func() { done <- h.verify(hash, []byte("pw")) }()
	held := false
	for {
		select {
		case ok := <-done:
			if !ok {
				t.Fatal("the right password did not verify")
			}
			if !held {
				t.Fatal("an argon2id check ran without taking a slot of the limiter")
			}
			if len(h.verifying) != 0 {
				t.Fatal("the slot was not given back")
			}
			return
		default:
			if len(h.verifying) == 1 {
				held = true
			}
		}
	}
}
