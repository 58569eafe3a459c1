package errs

import (
	"errors"
	"fmt"
	"io/fs"
	"testing"
)

func TestKinds(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	e := fmt.Errorf("context: %w", New("the file exists", errA, errB))
	if e.Error() != "context: the file exists" || !errors.Is(e, errA) || !errors.Is(e, errB) || errors.Is(e, fs.ErrExist) {
		t.Fatalf("New: %q, Is a %v, b %v", e, errors.Is(e, errA), errors.Is(e, errB))
	}
	w := Wrap(fs.ErrNotExist, "no CA here", errA)
	if w.Error() != "no CA here" || !errors.Is(w, fs.ErrNotExist) || !errors.Is(w, errA) {
		t.Fatalf("Wrap: %q", w)
	}
}
