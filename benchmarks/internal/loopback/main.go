package loopback

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
)

// Main is the main of a benchmark server: it parses the -addr flag
// (defaultAddr unless given), listens there after Check, and runs serve on
// the listener until it returns. serve's context ends on SIGINT or SIGTERM.
// An error is printed as "name: error" and ends the process with status 1.
func Main(name, defaultAddr string, serve func(ctx context.Context, ln net.Listener) error) {
	addr := flag.String("addr", defaultAddr, "loopback host:port to listen on")
	flag.Parse()
	err := func() error {
		ln, err := Listen(*addr)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return serve(ctx, ln)
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// ServeUntil runs serve in a goroutine until it returns or ctx ends; then
// it calls stop and returns stop's error, or else what serve returned.
// serve reports a server stopped by stop as nil.
func ServeUntil(ctx context.Context, serve, stop func() error) error {
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if err := stop(); err != nil {
		return err
	}
	return <-errc
}
