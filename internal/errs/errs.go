// Package errs makes errors whose text reads as one sentence and that still
// match sentinel kinds with errors.Is. Library packages (pki, confgen,
// internal/...) describe what is wrong with kinds such as pki.ErrNeedsForce;
// the command that ran adds the hint for its own flags.
package errs

import "errors"

type kindError struct {
	msg   string
	kinds []error
	cause error
}

func (e *kindError) Error() string { return e.msg }

func (e *kindError) Is(target error) bool {
	for _, k := range e.kinds {
		if errors.Is(k, target) {
			return true
		}
	}
	return false
}

func (e *kindError) Unwrap() error { return e.cause }

// New returns an error with text msg that errors.Is matches to each kind.
func New(msg string, kinds ...error) error {
	return &kindError{msg: msg, kinds: kinds}
}

// Wrap is New that also wraps cause (for errors.As and errors.Is); cause's
// text is not added to msg.
func Wrap(cause error, msg string, kinds ...error) error {
	return &kindError{msg: msg, kinds: kinds, cause: cause}
}
