package breaker_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/breaker"
)

// hostTransport answers 500 for hosts starting with "bad" and 200 otherwise,
// counting what it was sent.
type hostTransport struct{ sent atomic.Int64 }

func (h *hostTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h.sent.Add(1)
	code := http.StatusOK
	if strings.HasPrefix(r.URL.Host, "bad") {
		code = http.StatusInternalServerError
	}
	return &http.Response{StatusCode: code, Body: http.NoBody, Request: r}, nil
}

func roundTrip(t *testing.T, rt http.RoundTripper, host string) error {
	t.Helper()
	resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil))
	if err == nil {
		_ = resp.Body.Close()
	}
	return err
}

func TestKeyTableStaysBounded(t *testing.T) {
	next := &hostTransport{}
	b := newBreaker(t, breaker.Config{MaxKeys: 100, ConsecutiveFailures: 1, OpenTimeout: time.Hour, Interval: time.Hour})
	rt := b.RoundTripper(next)
	require.ErrorIs(t, func() error { _ = roundTrip(t, rt, "bad-1:80"); return roundTrip(t, rt, "bad-1:80") }(), breaker.ErrOpen)

	for i := range 1500 {
		require.NoError(t, roundTrip(t, rt, fmt.Sprintf("host-%d:80", i)))
		require.LessOrEqual(t, b.Len(), 100)
	}
	assert.Equal(t, breaker.StateOpen, b.State("bad-1:80"), "an open breaker is not evicted to make room")
	require.ErrorIs(t, roundTrip(t, rt, "bad-1:80"), breaker.ErrOpen)
	assert.Equal(t, breaker.StateClosed, b.State("host-1499:80"), "the newest key is kept")
}

func TestFullTableOfOpenKeysPassesNewKeysThrough(t *testing.T) {
	next := &hostTransport{}
	b := newBreaker(t, breaker.Config{MaxKeys: 2, ConsecutiveFailures: 1, OpenTimeout: time.Hour, Interval: time.Hour})
	rt := b.RoundTripper(next)
	for _, h := range []string{"bad-1:80", "bad-2:80"} {
		require.NoError(t, roundTrip(t, rt, h))
		require.ErrorIs(t, roundTrip(t, rt, h), breaker.ErrOpen)
	}
	for range 3 {
		require.NoError(t, roundTrip(t, rt, "bad-3:80"), "untracked: it never trips")
	}
	assert.Equal(t, 2, b.Len())
	assert.Equal(t, int64(5), next.sent.Load())
	assert.True(t, b.Ready("bad-3:80"))
}

func TestIdleKeysAreSwept(t *testing.T) {
	next := &hostTransport{}
	clk := newManualClock()
	const ttl = 10 * time.Second // max(interval, open_timeout)
	b := newBreaker(t, breaker.Config{MaxKeys: 2000, Interval: ttl, OpenTimeout: ttl}, breaker.WithClock(clk))
	rt := b.RoundTripper(next)
	for i := range 1000 {
		require.NoError(t, roundTrip(t, rt, fmt.Sprintf("host-%d:80", i)))
	}
	require.Equal(t, 1000, b.Len())
	clk.Advance(ttl)
	require.NoError(t, roundTrip(t, rt, "fresh-1:80"))
	assert.Equal(t, 1001, b.Len(), "a sweep keeps keys used since the last one")
	clk.Advance(2 * ttl)
	require.NoError(t, roundTrip(t, rt, "fresh-2:80"))
	assert.Equal(t, 2, b.Len(), "keys idle for longer than max(interval, open_timeout) are dropped when a new key arrives")
}

func TestOpenKeyOutlivesIdleSweepUntilItsTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		next := &hostTransport{}
		b := newBreaker(t, breaker.Config{MaxKeys: 1000, ConsecutiveFailures: 1, Interval: 5 * time.Millisecond, OpenTimeout: time.Second})
		rt := b.RoundTripper(next)
		require.NoError(t, roundTrip(t, rt, "bad-1:80"))
		for i := range 150 {
			elapse(5 * time.Millisecond) // fake time: many idle sweeps before open_timeout
			require.NoError(t, roundTrip(t, rt, fmt.Sprintf("host-%d:80", i)))
			require.Equal(t, breaker.StateOpen, b.State("bad-1:80"), "still refused before open_timeout")
		}
		require.ErrorIs(t, roundTrip(t, rt, "bad-1:80"), breaker.ErrOpen)
		assert.Equal(t, int64(1+150), next.sent.Load())
		elapse(time.Second - 750*time.Millisecond + time.Millisecond)
		assert.Equal(t, breaker.StateHalfOpen, b.State("bad-1:80"), "half-open once open_timeout has passed")
	})
}

func TestConcurrentUseWithEviction(t *testing.T) {
	next := &hostTransport{}
	var changes atomic.Int64
	var b *breaker.Breaker
	b = newBreaker(t, breaker.Config{MaxKeys: 10, ConsecutiveFailures: 2, Interval: time.Millisecond, OpenTimeout: 2 * time.Millisecond},
		breaker.WithOnStateChange(func(key string, _, _ breaker.State) {
			changes.Add(1)
			_ = b.Ready(key) // calling back in must not deadlock
		}))
	rt := b.RoundTripper(next)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 400 {
				host := fmt.Sprintf("host-%d:80", (g*7+i)%40)
				if i%3 == 0 {
					host = fmt.Sprintf("bad-%d:80", i%5)
				}
				err := roundTrip(t, rt, host)
				if err != nil && !errors.Is(err, breaker.ErrOpen) {
					t.Error(err)
					return
				}
				switch i % 10 {
				case 0:
					_ = b.Snapshot()
				case 1:
					_ = b.Ready(host)
				case 2:
					_ = b.State(host)
				}
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, b.Len(), 10)
	assert.Positive(t, changes.Load())
	for _, k := range b.Snapshot() {
		assert.Zero(t, k.InFlight, k.Key)
	}
}
