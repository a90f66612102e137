package main

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// endDelayOnSecondSignal makes a second SIGTERM or SIGINT end
// limits.shutdown_delay at once (srv.EndShutdownDelay): the first starts
// the shutdown (ctx, from signal.NotifyContext, is done), the second says
// "now" and the ambassador stops accepting and drains. Call the returned
// func to stop listening for signals.
func endDelayOnSecondSignal(ctx context.Context, srv *proxy.Server) (stop func()) {
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	n := 0
	if ctx.Err() != nil {
		n = 1 // the first signal came before we listened
	}
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			select {
			case <-sig:
				if n++; n >= 2 {
					srv.EndShutdownDelay()
					return
				}
			case <-quit:
				return
			}
		}
	})
	return func() {
		signal.Stop(sig)
		close(quit)
		wg.Wait()
	}
}
