package source

import (
	"bytes"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the reads that reach the network.
type countingConn struct {
	net.Conn
	reads atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	c.reads.Add(1)
	return c.Conn.Read(p)
}

// A stream arriving in small pieces every 10 ms is read from the network about once per
// coalescing period, and every byte comes out in order, whether the reader reads in small
// steps (through the conn's buffer) or with a buffer as large (straight into it).
func TestCoalescingConnReadsLessOften(t *testing.T) {
	t.Run("small reads", func(t *testing.T) { testCoalescing(t, func(r io.Reader) io.Reader { return &smallReader{r} }) })
	t.Run("large reads", func(t *testing.T) { testCoalescing(t, func(r io.Reader) io.Reader { return &largeReader{r} }) })
}

// largeReader reads with a buffer as large as the conn's, like the RTMP tap.
type largeReader struct{ r io.Reader }

func (l *largeReader) Read(p []byte) (int, error) {
	buf := make([]byte, coalesceBuffer)
	n, err := l.r.Read(buf)
	if n > len(p) {
		panic("largeReader: short destination")
	}
	copy(p, buf[:n])
	return n, err
}

func testCoalescing(t *testing.T, reader func(io.Reader) io.Reader) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 0, 100*1500)
	for i := 0; i < 100*1500; i++ {
		want = append(want, byte(i*7))
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		for i := 0; i < 100; i++ { // 1 s of 10 ms pieces
			c.Write(want[i*1500 : (i+1)*1500])
			time.Sleep(10 * time.Millisecond)
		}
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	counted := &countingConn{Conn: raw}
	c := &coalescingConn{Conn: counted, every: 100 * time.Millisecond}
	c.start()
	var got []byte
	buf := make([]byte, coalesceBuffer)
	for {
		n, err := reader(c).Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d sent in order", len(got), len(want))
	}
	if n := counted.reads.Load(); n > 30 {
		t.Fatalf("%d network reads for 1 s of 10 ms pieces with a 100 ms period", n)
	}
}

// smallReader reads in 4 KiB steps, like the RTMP reader's bufio.
type smallReader struct{ r io.Reader }

func (s *smallReader) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 4096)]) }

// A stream that is behind (each read fills the buffer) is read at full speed.
func TestCoalescingConnCatchesUp(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	payload := bytes.Repeat([]byte{1}, 8*coalesceBuffer)
	go func() { a.Write(payload); a.Close() }()
	c := &coalescingConn{Conn: b, every: time.Second}
	c.start()
	start := time.Now()
	n, err := io.Copy(io.Discard, c)
	if err != nil || n != int64(len(payload)) {
		t.Fatalf("copied %d, %v", n, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("a backlog of 8 buffers took %v to read with a 1 s period", d)
	}
}
