package main

import (
	"context"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/livesnap/livesnap/internal/rtmpserver"
)

// relay runs our multi-client RTMP relay: publish to rtmp://ADDR/app/key, play the same URL.
func relay(args []string) error {
	fs := flag.NewFlagSet("rtmp-relay", flag.ContinueOnError)
	listen := fs.String("listen", "127.0.0.1:1935", "RTMP listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	srv := &rtmpserver.Server{Addr: *listen, Logger: logger}
	if err := srv.Start(); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
	return srv.Close()
}
