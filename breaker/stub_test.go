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
	hits atomic.Int64
	url  string

	mu      sync.Mutex
	status  int
	hold    chan struct{}
	arrived chan struct{}
}

func newStub(status int) *stubUpstream {
	return &stubUpstream{status: status, url: "http://stub.test:80/"}
}

func (u *stubUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	u.hits.Add(1)
	u.mu.Lock()
	status, hold, arrived := u.status, u.hold, u.arrived
	u.mu.Unlock()
	if arrived != nil {
		arrived <- struct{}{}
	}
	if hold != nil {
		select {
		case <-hold:
		case <-r.Context().Done():
			return nil, r.Context().Err()
		}
	}
	return &http.Response{StatusCode: status, Body: io.NopCloser(strings.NewReader("body")), Request: r}, nil
}

func (u *stubUpstream) set(status int, hold, arrived chan struct{}) {
	u.mu.Lock()
	u.status, u.hold, u.arrived = status, hold, arrived
	u.mu.Unlock()
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
