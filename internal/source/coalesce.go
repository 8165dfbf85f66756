package source

import (
	"context"
	"net"
	"sync"
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
	grid    *readGrid
}

// readGrid wakes every reader of the process that waits for the same period at once, from
// one timer. A timer per reader, even with the same deadline, wakes the scheduler for each
// (they fire microseconds apart): for hundreds of streams that idling and waking cost more
// than reading. Closing a channel makes all its waiters runnable together.
type readGrid struct {
	every   time.Duration
	mu      sync.Mutex
	ch      chan struct{} // closed at the next multiple of every; nil while no one waits
	waiters int           // readers that waited on ch
}

var grids sync.Map // period → *readGrid

func gridFor(every time.Duration) *readGrid {
	g, _ := grids.LoadOrStore(every, &readGrid{every: every})
	return g.(*readGrid)
}

// wait returns at the next multiple of the period on the wall clock.
func (g *readGrid) wait() {
	g.mu.Lock()
	if g.ch == nil {
		g.ch = make(chan struct{})
		go g.pump(g.ch)
	}
	ch := g.ch
	g.waiters++
	g.mu.Unlock()
	<-ch
}

// pump releases the waiters period after period; it ends after a period without any.
func (g *readGrid) pump(ch chan struct{}) {
	for {
		now := time.Now()
		time.Sleep(now.Truncate(g.every).Add(g.every).Sub(now))
		g.mu.Lock()
		close(ch)
		if g.waiters == 0 {
			g.ch = nil
			g.mu.Unlock()
			return
		}
		g.waiters = 0
		ch = make(chan struct{})
		g.ch = ch
		g.mu.Unlock()
	}
}

// coalescing wraps dial's connections in a coalescingConn.
func coalescing(dial func(ctx context.Context, network, address string) (net.Conn, error), every time.Duration) func(ctx context.Context, network, address string) (net.Conn, error) {
	grid := gridFor(every)
	return func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &coalescingConn{Conn: c, every: every, grid: grid}, nil
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
	// A reader with a buffer as large as ours (the RTMP tap) is read into directly.
	dst, direct := p, len(p) >= coalesceBuffer/2
	if !direct {
		if c.buf == nil {
			c.buf = make([]byte, coalesceBuffer)
		}
		dst = c.buf
	}
	if time.Since(c.last) < c.every && !c.behind {
		// Wait for the next multiple of the period on the wall clock, not for a period after
		// this stream's own last read: every stream of the process then wakes at the same
		// instants. A closed connection fails the read that follows.
		if c.grid == nil {
			c.grid = gridFor(c.every)
		}
		c.grid.wait()
	}
	n, err := c.Conn.Read(dst)
	c.last, c.behind = time.Now(), n == len(dst)
	if direct {
		return n, err
	}
	c.r, c.w = 0, n
	m := copy(p, c.buf[:n])
	c.r = m
	return m, err
}
