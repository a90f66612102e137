package proxy

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

// cannedUpstream is a keep-alive HTTP/1.1 server on loopback that answers
// every request head with the same 100-byte response and allocates nothing
// per request, so a benchmark's allocations are the proxy's own.
func cannedUpstream(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(tb, err)
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + string(bytes.Repeat([]byte("x"), 100)))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					// A bodiless request ends with an empty line.
					for {
						line, err := br.ReadSlice('\n')
						if err != nil {
							return
						}
						if len(line) <= 2 {
							break
						}
					}
					if _, err := c.Write(resp); err != nil {
						return
					}
				}
			}()
		}
	}()
	tb.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return ln.Addr().String()
}

// discardWriter is a ResponseWriter that keeps the headers and drops the body.
type discardWriter struct{ h http.Header }

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *discardWriter) WriteHeader(int)             {}

// hopServer is a Server for one service in front of addr with the process's
// set-up: retry and breaker on, the default base transport (the direct
// HTTP/1.1 path), an SDK meter provider and a text access log at info.
func hopServer(tb testing.TB, addr string) *listenerHandler {
	tb.Helper()
	return &listenerHandler{s: newHopServer(tb, addr)}
}

// newHopServer is hopServer's Server.
func newHopServer(tb testing.TB, addr string) *Server {
	tb.Helper()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	tb.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	sc := ambassador.ServiceConfig{Discovery: discovery.Config{Static: []string{addr}}, Retry: &retry.Config{}, Breaker: &breaker.Config{}}
	s, err := NewServer(&Config{
		Listeners: []ListenerConfig{{Address: "127.0.0.1:0", Service: "backend"}},
		Services:  map[string]ambassador.ServiceConfig{"backend": sc},
	}, WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))), WithMeterProvider(mp))
	require.NoError(tb, err)
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// BenchmarkHop is one proxied request through the Server's handler — route,
// bulkhead, ReverseProxy, the retry→discovery→breaker stack, client
// metrics, net/http's Transport to a loopback upstream and the access
// log — without the net/http server around it. allocs/op is the allocations
// per proxied request of everything but the inbound server.
func BenchmarkHop(b *testing.B) {
	h := hopServer(b, cannedUpstream(b))
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req) // dial outside the timing
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHopBare is BenchmarkHop's request through a bare
// httputil.ReverseProxy with a tuned http.Transport and pooled copy
// buffers (benchmarks/proxy's rproxy): no policies, no telemetry, no access
// log. BenchmarkHop minus
// this is what the ambassador adds to a proxied request beside net/http.
func BenchmarkHopBare(b *testing.B) {
	target := &url.URL{Scheme: "http", Host: cannedUpstream(b)}
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: 90 * time.Second}
	b.Cleanup(tr.CloseIdleConnections)
	h := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) { r.SetURL(target) }, Transport: tr, BufferPool: sharedBufferPool}
	req := httptest.NewRequest(http.MethodGet, "http://127.0.0.1/", nil)
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req) // dial outside the timing
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}

// BenchmarkHopServed is BenchmarkHop with net/http's server around it and
// a client on loopback sending one request at a time, as wrk -c1 does:
// ns/op is the round trip through the hop, so work the handler does after
// the answer could go out (the request metric, the access log) shows in
// it unless the answer is flushed first.
func BenchmarkHopServed(b *testing.B) {
	s := newHopServer(b, cannedUpstream(b))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	select {
	case <-s.Ready():
	case err := <-done:
		b.Fatal(err)
	}
	url := "http://" + s.Addrs()[0].String() + "/"
	tr := &http.Transport{}
	b.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: tr}
	get := func() {
		resp, err := c.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	get() // dial outside the timing
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
}
