package decode

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
)

// Many streams share a small pool: each Decode gives the same picture as a decoder of its
// own, across codecs and concurrently, and the pool never keeps more decoders than its size.
func TestPoolSharesDecoders(t *testing.T) {
	h264, h265 := getStream(t, specH264), getStream(t, specH265)
	want := map[*stream][]byte{}
	for _, s := range []*stream{h264, h265} {
		p, err := newDecoder(t, s.codec).Decode(s.units[:1], Options{})
		if err != nil {
			t.Fatal(err)
		}
		want[s] = p.JPEG
	}

	pool := &Pool{Size: 2}
	defer pool.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		s := h264
		if i%2 == 1 {
			s = h265
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 3 {
				p, err := pool.Decode(context.Background(), s.units[:1], Options{})
				if err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(p.JPEG, want[s]) {
					errs <- errors.New(s.codec.String() + ": pooled decode differs from a fresh decoder's")
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	pool.mu.Lock()
	for c, list := range pool.idle {
		if len(list) > 2 {
			t.Errorf("%v: %d idle decoders, more than the pool size 2", c, len(list))
		}
	}
	pool.mu.Unlock()
}

// A caller waiting for a slot gives up when its context ends.
func TestPoolWaitHonoursContext(t *testing.T) {
	s := getStream(t, specH264)
	pool := &Pool{Size: 1}
	defer pool.Close()
	pool.init()
	pool.slots <- struct{}{} // the only slot is busy
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := pool.Decode(ctx, s.units[:1], Options{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-pool.slots
	if _, err := pool.Decode(context.Background(), s.units[:1], Options{}); err != nil {
		t.Fatal(err)
	}
}
