package source_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"testing"
	"time"

	"github.com/livesnap/livesnap/internal/source"
	"github.com/livesnap/livesnap/internal/source/avformat"
	"github.com/livesnap/livesnap/internal/source/sourcetest"
)

// TestAVLeak opens, reads and closes libavformat streams many times through every path that
// allocates: whole reads, Close and cancellation while a read blocks, failed opens, HLS with
// its nested playlists and segments. The C heap stays flat and every handle is released. A
// leaked packet (tens of kB), context or AVIOContext buffer (32 kB) would add megabytes.
func TestAVLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	clip := sourcetest.Make(t, sourcetest.H264)
	dir := t.TempDir()
	flv := filepath.Join(dir, "clip.flv")
	ctxRun(t, "ffmpeg", "-hide_banner", "-loglevel", "error", "-nostdin", "-y", "-i", clip.Path, "-t", "4",
		"-map", "0", "-c", "copy", "-f", "flv", flv)
	data, err := os.ReadFile(flv)
	if err != nil {
		t.Fatal(err)
	}
	vodHLS(t, clip, dir)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/static.flv":
			w.Write(data)
		case "/stuck.flv":
			// A live server that goes silent halfway.
			w.Write(data[:len(data)/2])
			w.(http.Flusher).Flush()
			<-r.Context().Done()
		default:
			http.FileServer(http.Dir(dir)).ServeHTTP(w, r)
		}
	}))
	defer srv.Close()

	iter := func(i int) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		opt := source.Options{ConnectTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
		switch i % 6 {
		case 0, 1: // whole reads
			typ, url := "http-flv", srv.URL+"/static.flv"
			if i%6 == 1 {
				typ, url = "hls", srv.URL+"/vod.m3u8"
			}
			st, err := source.Open(ctx, typ, url, opt)
			if err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
			for range 30 {
				if _, err := st.Read(); err != nil {
					t.Fatalf("iteration %d: %v", i, err)
				}
			}
			st.Close()
		case 2, 3: // Close / cancel while Read blocks
			st, err := source.Open(ctx, "http-flv", srv.URL+"/stuck.flv", opt)
			if err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := st.Read(); err != nil {
						done <- err
						return
					}
				}
			}()
			time.Sleep(20 * time.Millisecond)
			if i%6 == 2 {
				st.Close()
			} else {
				cancel()
			}
			if err := <-done; !errors.Is(err, source.ErrClosed) && !errors.Is(err, context.Canceled) {
				t.Fatalf("iteration %d: %v", i, err)
			}
			st.Close()
		case 4: // failed open
			if _, err := source.Open(ctx, "hls", srv.URL+"/missing.m3u8", opt); !errors.Is(err, source.ErrStreamNotFound) {
				t.Fatalf("iteration %d: %v", i, err)
			}
		case 5: // open, close unread
			st, err := source.Open(ctx, "http-flv", srv.URL+"/static.flv", opt)
			if err != nil {
				t.Fatalf("iteration %d: %v", i, err)
			}
			st.Close()
		}
	}
	type mem struct{ cheap, handles, goroutines int }
	settle := func() mem {
		for range 50 { // closed readers return their handles from the reading goroutine
			if avformat.LiveHandles() == 0 {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		runtime.GC()
		debug.FreeOSMemory()
		return mem{int(avformat.CHeapInUse() / 1024), int(avformat.LiveHandles()), runtime.NumGoroutine()}
	}
	for i := range 60 { // warm up: glibc arenas, HTTP connections, every path once
		iter(i)
	}
	const n = 300
	m0 := settle()
	start := time.Now()
	for i := range n {
		iter(i)
	}
	m1 := settle()
	for i := range n {
		iter(i)
	}
	m2 := settle()
	t.Logf("%d cycles in %v; C heap %d -> %d -> %d kB; handles %d -> %d -> %d; goroutines %d -> %d -> %d",
		2*n, time.Since(start).Round(time.Millisecond), m0.cheap, m1.cheap, m2.cheap,
		m0.handles, m1.handles, m2.handles, m0.goroutines, m1.goroutines, m2.goroutines)
	if grow := m2.cheap - m1.cheap; grow > 1024 {
		t.Errorf("C heap grew by %d kB over the second %d cycles", grow, n)
	}
	if grow := m2.cheap - m0.cheap; grow > 2048 {
		t.Errorf("C heap grew by %d kB over %d cycles", grow, 2*n)
	}
	if m2.handles != 0 {
		t.Errorf("%d avformat handles still alive", m2.handles)
	}
	if grow := m2.goroutines - m0.goroutines; grow > 5 {
		t.Errorf("%d more goroutines after %d cycles", grow, 2*n)
	}
}
