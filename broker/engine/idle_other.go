//go:build !linux

package engine

import (
	"crypto/tls"
	"syscall"
)

// rawOf: waiting below crypto/tls is done on Linux only.
func rawOf(*tls.Conn) syscall.RawConn { return nil }

func waitReadable(syscall.RawConn) error { return nil }
