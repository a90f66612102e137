// Command bareproxy is the bare peer of the proxy benchmark
// (benchmarks/proxy/run.sh): a plain, tuned httputil.ReverseProxy to one
// upstream, with no policies, no telemetry and no access log — what a user
// would write in thirty lines instead of running the ambassador.
//
// With -observe it is that proxy plus what the same user would add to see
// as much as the ambassador shows: otelhttp on both sides
// (http.server.request.duration and http.client.request.duration on an
// SDK meter provider) and one slog text line per request to the file
// -access-log names (remote, host, method, path, status, bytes out,
// duration). It still has no policies: the ambassador's retry and breaker
// are what the two then differ by.
//
// Usage:
//
//	bareproxy -addr 127.0.0.1:18081 -upstream 127.0.0.1:18080 [-observe -access-log FILE]
package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/outbound-go/outbound/benchmarks/internal/loopback"
)

var (
	upstream  = flag.String("upstream", "127.0.0.1:18080", "host:port of the upstream")
	observe   = flag.Bool("observe", false, "add otelhttp metrics on both sides and a slog access log (-access-log)")
	accessLog = flag.String("access-log", "", "with -observe: the `FILE` the access log is appended to (default: discarded)")
)

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
	var h http.Handler = rp
	shutdownMetrics := func() error { return nil }
	if *observe {
		var w io.Writer = io.Discard
		if *accessLog != "" {
			f, err := os.OpenFile(*accessLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
			if err != nil {
				return err
			}
			defer f.Close()
			w = f
		}
		// Read only when collected, as a Prometheus exporter's is.
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
		shutdownMetrics = func() error { return mp.Shutdown(context.Background()) }
		h = observed(rp, mp, w)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	defer func() { _ = shutdownMetrics() }()
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

// observed wraps rp as -observe says: otelhttp's handler and transport on
// mp, and a slog text line per request to w.
func observed(rp *httputil.ReverseProxy, mp metric.MeterProvider, w io.Writer) http.Handler {
	rp.Transport = otelhttp.NewTransport(rp.Transport, otelhttp.WithMeterProvider(mp))
	log := slog.New(slog.NewTextHandler(w, nil))
	logged := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		start := time.Now()
		cw := &countingWriter{ResponseWriter: rw, status: http.StatusOK}
		rp.ServeHTTP(cw, r)
		log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("remote", r.RemoteAddr),
			slog.String("host", r.Host),
			slog.String("method", r.Method),
			slog.String("path", r.URL.Path),
			slog.Int("status", cw.status),
			slog.Int64("bytes_out", cw.n),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000))
	})
	return otelhttp.NewHandler(logged, "proxy", otelhttp.WithMeterProvider(mp))
}

// countingWriter records the status and the body bytes written.
type countingWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *countingWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

func (w *countingWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController (ReverseProxy's flushes) reach the
// writer below.
func (w *countingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
