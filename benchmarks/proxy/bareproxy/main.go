// Command bareproxy is the bare peer of the proxy benchmark
// (benchmarks/proxy/run.sh): a plain, tuned httputil.ReverseProxy to one
// upstream, with no policies, no telemetry and no access log — what a user
// would write in thirty lines instead of running the ambassador.
//
// Usage:
//
//	bareproxy -addr 127.0.0.1:18081 -upstream 127.0.0.1:18080
package main

import (
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

var upstream = flag.String("upstream", "127.0.0.1:18080", "host:port of the upstream")

func main() { loopback.Main("bareproxy", "127.0.0.1:18081", run) }

func run(ctx context.Context, ln net.Listener) error {
	target := &url.URL{Scheme: "http", Host: *upstream}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) },
		// Tuned as a careful user would: a large idle pool for the one
		// upstream, so no request waits for a dial under -c32.
		Transport: &http.Transport{
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 1024,
			IdleConnTimeout:     90 * time.Second,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		},
		// Without a pool ReverseProxy allocates a 32 KiB copy buffer per
		// request, which the GC then pays for; a careful user pools them
		// (the ambassador does).
		BufferPool: &bufferPool{},
	}
	srv := &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
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

// bufferPool is httputil.BufferPool on a sync.Pool of 32 KiB arrays
// (pointers, so that Put allocates nothing).
type bufferPool struct{ p sync.Pool }

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[32 << 10]byte); ok {
		return v[:]
	}
	return new([32 << 10]byte)[:]
}

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == 32<<10 {
		b.p.Put((*[32 << 10]byte)(buf))
	}
}
