package ratelimit_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/ratelimit"
)

type probeRT func(*http.Request) (*http.Response, error)

func (f probeRT) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// The attempt's clock reading is the moment the attempt leaves the last
// layer that may wait: a limiter on the real clock that waited for a token
// refreshes it, so the layers below do not take the time before the wait
// for the time of sending (the invariant on attempt's now field).
func TestWaitRefreshesTheAttemptsClockReading(t *testing.T) {
	const wait = 200 * time.Millisecond
	l, err := ratelimit.New(ratelimit.Config{RPS: float64(time.Second / wait), Burst: 1, MaxWait: time.Second})
	require.NoError(t, err)
	defer l.Close()

	var seen time.Time
	rt := l.RoundTripper(probeRT(func(r *http.Request) (*http.Response, error) {
		var ok bool
		seen, ok = attempt.Now(r.Context())
		require.True(t, ok, "the reading reaches the layer below")
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	}))
	send := func() time.Time {
		call := attempt.NewHTTPCall(context.Background(), nil)
		r := call.Request(httptest.NewRequest(http.MethodGet, "http://users/", nil), 1)
		sent := time.Now()
		call.SetNow(sent)
		resp, err := rt.RoundTrip(r)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return sent
	}

	sent := send() // takes the only token: no wait
	assert.True(t, seen.Equal(sent), "no wait: the sender's reading is passed on")

	sent = send() // waits about 200ms for the next token
	assert.GreaterOrEqual(t, seen.Sub(sent), wait/2, "after the wait the reading is refreshed")
}
