//go:build !linux

package engine

import "time"

// Parking needs epoll: elsewhere idle connections wait in their goroutine.
type parker struct{}

func newParker() *parker                  { return nil }
func (p *parker) arm(*conn) bool          { return false }
func (p *parker) forget(*conn)            {}
func (p *parker) stop()                   {}
func socketFD(*conn) int32                { return -1 }
func (c *conn) parkTimer(d time.Duration) {}
