//go:build !linux

package main

import (
	"errors"
	"os"
)

// openPTY: the documentation runner types on a terminal on Linux only.
func openPTY() (ptm, pts *os.File, err error) {
	return nil, nil, errors.New("a pseudo-terminal needs Linux here")
}
