package breaker_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/breaker"
)

// stubUpstream is an in-memory upstream for tests that run in a
// testing/synctest bubble, where a loopback socket would keep the fake
// clock from advancing (goroutines blocked on the network are not durably
// blocked). It answers like upstream: a status chosen by the test, each
// request optionally held until released.
type stubUpstream struct {
	url string
	answer
}

func newStub(status int) *stubUpstream {
	return &stubUpstream{answer: answer{status: status}, url: "http://stub.test:80/"}
}

func (u *stubUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	status, ok := u.arrive(r.Context())
	if !ok {
		return nil, r.Context().Err()
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("body")), Request: r}, nil
}

// answer is what upstream and stubUpstream share: the requests counted,
// the status chosen by the test, each request optionally held until
// released.
type answer struct {
	hits atomic.Int64

	mu      sync.Mutex
	status  int
	hold    chan struct{} // non-nil: requests wait for it to close
	arrived chan struct{} // non-nil: requests signal here on arrival
}

func (a *answer) set(status int, hold, arrived chan struct{}) {
	a.mu.Lock()
	a.status, a.hold, a.arrived = status, hold, arrived
	a.mu.Unlock()
}

// arrive counts a request, signals its arrival and holds it as the test
// asked; it returns the status to answer, or false when ctx ended first.
func (a *answer) arrive(ctx context.Context) (status int, ok bool) {
	a.hits.Add(1)
	a.mu.Lock()
	status, hold, arrived := a.status, a.hold, a.arrived
	a.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return 0, false
		}
	}
	return status, true
}

func (u *stubUpstream) host() string { return "stub.test:80" }

// client returns a client whose requests go through b to u.
func (u *stubUpstream) client(b *breaker.Breaker) *http.Client {
	return &http.Client{Transport: b.RoundTripper(u)}
}

// manualClock is a breaker.Clock that moves only when the test says.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *manualClock) Sleep(ctx context.Context, d time.Duration) error {
	c.Advance(d)
	return ctx.Err()
}

var _ breaker.Clock = (*manualClock)(nil)
