package breaker_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/internal/inbound/inboundtest"
)

// TestCallerBodyErrorsNeverTrip: requests whose body fails mid-read (the
// caller's failure) leave the breaker closed however many there are, over
// HTTP/1.1 and h2c, while upstream failures still trip it.
func TestCallerBodyErrorsNeverTrip(t *testing.T) {
	for _, up := range inboundtest.Upstreams(t) {
		t.Run(up.Proto, func(t *testing.T) {
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 3})
			rt := b.RoundTripper(up.Transport)
			inboundtest.SendBroken(t, rt, up.URL, 5)
			assert.Equal(t, breaker.StateClosed, b.State(up.Host))
			assert.Zero(t, up.Complete.Load(), "no broken body reached the upstream whole")

			up.Status.Store(http.StatusBadGateway)
			for range 3 {
				code, err := get(context.Background(), &http.Client{Transport: rt}, up.URL)
				require.NoError(t, err)
				require.Equal(t, http.StatusBadGateway, code)
			}
			assert.Equal(t, breaker.StateOpen, b.State(up.Host), "upstream failures still count")
		})
	}
}

// TestCallerBodyErrorDoesNotReopenHalfOpen: a half-open probe whose body
// the caller broke proves nothing either way; it frees its slot instead of
// re-opening the breaker, so a client cannot keep an endpoint ejected.
func TestCallerBodyErrorDoesNotReopenHalfOpen(t *testing.T) {
	up := inboundtest.Upstreams(t)[0]
	// OpenTimeout is 1ns, so an open breaker reads half-open again at the
	// next look: the transitions it made are what tell a re-open apart.
	var mu sync.Mutex
	var reopened int
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: 1},
		breaker.WithOnStateChange(func(_ string, from, to breaker.State) {
			mu.Lock()
			defer mu.Unlock()
			if from == breaker.StateHalfOpen && to == breaker.StateOpen {
				reopened++
			}
		}))
	rt := b.RoundTripper(up.Transport)
	up.Status.Store(http.StatusInternalServerError)
	code, err := get(context.Background(), &http.Client{Transport: rt}, up.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, code)
	// OpenTimeout is 1ns: the breaker is half-open at the next look.
	require.Eventually(t, func() bool { return b.State(up.Host) == breaker.StateHalfOpen }, 5*time.Second, time.Millisecond)

	req, err := http.NewRequest(http.MethodPost, up.URL, inboundtest.BrokenBody("part", errors.New("client went away")))
	require.NoError(t, err)
	_, err = rt.RoundTrip(req)
	require.Error(t, err)
	assert.Equal(t, breaker.StateHalfOpen, b.State(up.Host), "the broken probe did not close it")
	mu.Lock()
	assert.Zero(t, reopened, "the broken probe did not re-open it")
	mu.Unlock()
	assert.True(t, b.Ready(up.Host), "its probe slot is free again")

	up.Status.Store(http.StatusOK)
	code, err = get(context.Background(), &http.Client{Transport: rt}, up.URL)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, breaker.StateClosed, b.State(up.Host))
}

// TestDefaultClassifierIgnoresInboundErrors: a classifier wrapping
// DefaultClassifier sees a caller body failure as Ignore too.
func TestDefaultClassifierIgnoresInboundErrors(t *testing.T) {
	body := inboundtest.BrokenBody("", io.ErrUnexpectedEOF)
	up := inboundtest.Upstreams(t)[0]
	req, err := http.NewRequest(http.MethodPost, up.URL, body)
	require.NoError(t, err)
	var got []breaker.Outcome
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1}, breaker.WithClassifier(func(r *http.Request, resp *http.Response, err error) breaker.Outcome {
		o := breaker.DefaultClassifier(r, resp, err)
		got = append(got, o)
		return o
	}))
	_, err = b.RoundTripper(up.Transport).RoundTrip(req)
	require.Error(t, err)
	assert.Empty(t, got, "the classifier is not asked about the caller's failure")
	assert.Equal(t, breaker.StateClosed, b.State(up.Host))
}
