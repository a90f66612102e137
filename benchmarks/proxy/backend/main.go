// Command backend is the upstream of the proxy benchmark (benchmarks/proxy/run.sh):
// an HTTP/1.1 server on a loopback address that answers every request with
// the same 100-byte body and keeps connections alive.
//
// Usage:
//
//	backend -addr 127.0.0.1:18080
package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

// body is the 100 bytes every response carries.
var body = []byte("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")

func main() { loopback.Main("backend", "127.0.0.1:18080", run) }

func run(ctx context.Context, ln net.Listener) error {
	length := strconv.Itoa(len(body))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			h := w.Header()
			h["Content-Type"] = []string{"text/plain"}
			h["Content-Length"] = []string{length}
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
	}
	return loopback.ServeUntil(ctx, func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func() error {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(shutdownCtx)
	})
}
