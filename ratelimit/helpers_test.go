package ratelimit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/ratelimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeClock is the time seam of the tests: time stands still unless a test
// advances it, and Sleep records the waits the Limiter asks for instead of
// sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
	// block makes Sleep wait for its context to end; sleeping (if set)
	// receives every requested wait first.
	block    bool
	sleeping chan time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	c.sleeps = append(c.sleeps, d)
	block, ch := c.block, c.sleeping
	c.mu.Unlock()
	if ch != nil {
		ch <- d
	}
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// Sleeps returns the recorded waits, sorted.
func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := append([]time.Duration(nil), c.sleeps...)
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (c *fakeClock) Option() ratelimit.Option { return ratelimit.WithClock(c) }

// upstream is a loopback HTTP server that counts the requests it receives and
// answers with the status and Retry-After its test sets.
type upstream struct {
	*httptest.Server
	hits       atomic.Int64
	mu         sync.Mutex
	status     int
	retryAfter string
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{status: http.StatusOK}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.hits.Add(1)
		u.mu.Lock()
		status, ra := u.status, u.retryAfter
		u.mu.Unlock()
		if ra != "" {
			w.Header().Set("Retry-After", ra)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) answer(status int, retryAfter string) {
	u.mu.Lock()
	u.status, u.retryAfter = status, retryAfter
	u.mu.Unlock()
}

func (u *upstream) host() string {
	p, err := url.Parse(u.URL)
	if err != nil {
		panic(err)
	}
	return p.Host
}

// client returns an http.Client through lim over a transport of its own,
// whose idle connections are closed when the test ends.
func client(t *testing.T, lim *ratelimit.Limiter) *http.Client {
	base := &http.Transport{}
	t.Cleanup(base.CloseIdleConnections)
	return &http.Client{Transport: lim.RoundTripper(base)}
}

// get sends a GET and returns the status code (0 on error) and the error.
func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// fanOut runs n calls of f at once and returns their errors.
func fanOut(n int, f func() error) []error {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = f()
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

// multiples returns k×step for k = 1..n.
func multiples(step time.Duration, n int) []time.Duration {
	out := make([]time.Duration, n)
	for k := range n {
		out[k] = time.Duration(k+1) * step
	}
	return out
}
