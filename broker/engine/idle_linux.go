package engine

import (
	"crypto/tls"
	"syscall"
)

// rawOf returns the socket under a TLS connection, for waiting while idle
// without crypto/tls's deep read path on the goroutine's stack (which
// keeps it at 8 KiB instead of 4).
func rawOf(tc *tls.Conn) syscall.RawConn {
	sc, ok := tc.NetConn().(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// waitReadable waits until the socket has bytes (or its end, or an
// error) without reading them: MSG_PEEK looks, and the poller waits.
func waitReadable(rc syscall.RawConn) error {
	var b [1]byte
	return rc.Read(func(fd uintptr) bool {
		// Bytes, the end or an error (which the next read reports): done.
		_, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		return err != syscall.EAGAIN && err != syscall.EINTR
	})
}
