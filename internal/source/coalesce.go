package source

import (
	"context"
	"net"
	"sync/atomic"
	"time"
)

// coalesceBuffer is what one network read may take at once (a few hundred milliseconds of a
// 4 Mbit/s stream).
const coalesceBuffer = 64 << 10

// coalescingConn reads the network at most once per period while a stream arrives in real
// time: pictures that arrive meanwhile wait in the kernel's socket buffer and are read
// together. A live stream otherwise wakes its reader for every picture, with two or three
// system calls each; for hundreds of streams those wake-ups cost more than the snapshots.
// Reads are not delayed while the stream is behind (a read filled the buffer) or before
// start is called (the handshake and track discovery run at full speed).
type coalescingConn struct {
	net.Conn
	every   time.Duration
	started atomic.Bool
	buf     []byte
	r, w    int
	last    time.Time // when the last network read returned
	behind  bool      // the last network read filled the buffer
}

// coalescing wraps dial's connections in a coalescingConn.
func coalescing(dial func(ctx context.Context, network, address string) (net.Conn, error), every time.Duration) func(ctx context.Context, network, address string) (net.Conn, error) {
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &coalescingConn{Conn: c, every: every}, nil
	}
}

// start turns coalescing on (after the handshake).
func (c *coalescingConn) start() { c.started.Store(true) }

func (c *coalescingConn) Read(p []byte) (int, error) {
	if c.r < c.w {
		n := copy(p, c.buf[c.r:c.w])
		c.r += n
		return n, nil
	}
	if !c.started.Load() {
		return c.Conn.Read(p)
	}
	if c.buf == nil {
		c.buf = make([]byte, coalesceBuffer)
	}
	if now := time.Now(); now.Sub(c.last) < c.every && !c.behind {
		// Wait for the next multiple of the period on the wall clock, not for a period after
		// this stream's own last read: every stream of the process then wakes at the same
		// instants, and a handful of thread wake-ups serve them all. A closed connection
		// fails the read that follows.
		time.Sleep(now.Truncate(c.every).Add(c.every).Sub(now))
	}
	n, err := c.Conn.Read(c.buf)
	c.last, c.behind = time.Now(), n == len(c.buf)
	c.r, c.w = 0, n
	m := copy(p, c.buf[:n])
	c.r = m
	return m, err
}
