// Command h2cserver is the plain Go HTTP/2 server of benchmarks/proxy/h2spec.sh:
// a net/http server on a loopback address that speaks only HTTP/2 with prior
// knowledge (h2c, Protocols UnencryptedHTTP2) and answers every request 200
// with a 100-byte body (h2spec skips its flow-control cases when the body
// is shorter than 5 bytes). h2spec runs against it to show what net/http's own
// HTTP/2 server passes, and the ambassador under test proxies to a second
// instance of it.
//
// Usage:
//
//	h2cserver -addr 127.0.0.1:18081
package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

// body is the 100 bytes every response carries.
var body = []byte(strings.Repeat("0123456789", 10))

func main() { loopback.Main("h2cserver", "127.0.0.1:18081", run) }

func run(ctx context.Context, ln net.Listener) error {
	var protos http.Protocols
	protos.SetUnencryptedHTTP2(true)
	srv := &http.Server{
		Protocols: &protos,
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "text/plain")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	return loopback.ServeUntil(ctx, func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}, func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
}
