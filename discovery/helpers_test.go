package discovery_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/attempt"
)

// setSource is a Source the test drives: Set applies a set and returns once
// the Service has taken it.
type setSource struct {
	ch chan report
}

type report struct {
	eps  []discovery.Endpoint
	err  error
	done chan struct{}
}

func newSetSource() *setSource { return &setSource{ch: make(chan report)} }

func (s *setSource) Watch(ctx context.Context, update func([]discovery.Endpoint, error)) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-s.ch:
			update(r.eps, r.err)
			close(r.done)
		}
	}
}

func (s *setSource) send(t testing.TB, eps []discovery.Endpoint, err error) {
	t.Helper()
	r := report{eps: eps, err: err, done: make(chan struct{})}
	select {
	case s.ch <- r:
	case <-time.After(5 * time.Second):
		t.Fatal("source not watched")
	}
	<-r.done
}

func (s *setSource) Set(t testing.TB, addrs ...string) {
	t.Helper()
	eps := make([]discovery.Endpoint, len(addrs))
	for i, a := range addrs {
		eps[i] = discovery.Endpoint{Address: a}
	}
	s.send(t, eps, nil)
}

// upstream is a loopback HTTP server that counts the requests it serves.
type upstream struct {
	*httptest.Server
	hits atomic.Int64
}

func newUpstream(t testing.TB, h http.HandlerFunc) *upstream {
	t.Helper()
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		if h != nil {
			h(w, r)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) addr() string { return u.Listener.Addr().String() }

// deadAddr returns a loopback address nothing listens on.
func deadAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	a := l.Addr().String()
	require.NoError(t, l.Close())
	return a
}

func newService(t testing.TB, src discovery.Source, c discovery.Config, opts ...discovery.Option) *discovery.Service {
	t.Helper()
	opts = append([]discovery.Option{discovery.WithLogger(slog.New(slog.DiscardHandler))}, opts...)
	s, err := discovery.NewService("users", src, c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

// client returns an http.Client through s with its own base transport.
func client(t testing.TB, s *discovery.Service) *http.Client {
	t.Helper()
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: s.RoundTripper(base)}
}

func get(t testing.TB, c *http.Client, url string) int {
	t.Helper()
	resp, err := c.Get(url)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// countingRT sits under discovery (where a breaker would) and counts
// attempts and consecutive transport failures per endpoint; its Ready makes
// it a breaker-like discovery.Health that trips after trip failures in a row.
type countingRT struct {
	next     http.RoundTripper
	trip     int
	mu       sync.Mutex
	attempts map[string]int
	failures map[string]int
}

func newCountingRT(next http.RoundTripper, trip int) *countingRT {
	return &countingRT{next: next, trip: trip, attempts: map[string]int{}, failures: map[string]int{}}
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.attempts[r.URL.Host]++
	if err != nil {
		c.failures[r.URL.Host]++
	} else {
		c.failures[r.URL.Host] = 0
	}
	return resp, err
}

func (c *countingRT) Ready(ep string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failures[ep] < c.trip
}

func (c *countingRT) Attempts(ep string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.attempts[ep]
}

// retryRT is a minimal retry layer: one attempt record per logical request,
// up to max attempts on transport errors.
type retryRT struct {
	next http.RoundTripper
	max  int
}

func (r retryRT) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := attempt.NewRecord()
	var err error
	for i := 0; i < r.max; i++ {
		ctx := attempt.WithAttempt(req.Context(), rec, rec.Start())
		var resp *http.Response
		resp, err = r.next.RoundTrip(req.WithContext(ctx))
		if err == nil {
			return resp, nil
		}
	}
	return nil, fmt.Errorf("after %d attempts: %w", r.max, err)
}

// withAttempt returns a context carrying rec as attempt n.
func withAttempt(rec *attempt.Record) context.Context {
	return attempt.WithAttempt(context.Background(), rec, rec.Start())
}

// latency is a simulated upstream's service time: it returns after d, or
// as soon as ctx (the request's context) is done, so a slow upstream never
// outlives the request it serves.
func latency(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
