package ratelimit_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/refusal"
	"github.com/outbound-go/outbound/ratelimit"
)

func TestRejectModeLetsBurstThrough(t *testing.T) {
	up := newUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5}, clk.Option())
	require.NoError(t, err)
	c := client(t, lim)

	errs := fanOut(20, func() error { _, err := get(context.Background(), c, up.URL); return err })

	var limited int
	for _, err := range errs {
		if err == nil {
			continue
		}
		require.ErrorIs(t, err, ratelimit.ErrLimited)
		assert.True(t, refusal.Is(err), "retry sees a local refusal and does not retry it")
		var le *ratelimit.LimitedError
		require.ErrorAs(t, err, &le)
		assert.Equal(t, up.host(), le.Key)
		assert.Equal(t, 20*time.Millisecond, le.RetryAfter, "time is frozen with an empty bucket: one token away at 50 rps")
		limited++
	}
	assert.Equal(t, int64(5), up.hits.Load(), "exactly burst requests reach the upstream")
	assert.Equal(t, 15, limited)
	assert.Empty(t, clk.Sleeps(), "reject mode never sleeps")

	clk.Advance(20 * time.Millisecond)
	_, err = get(context.Background(), c, up.URL)
	require.NoError(t, err, "one token refilled after 1/rps")
	_, err = get(context.Background(), c, up.URL)
	require.ErrorIs(t, err, ratelimit.ErrLimited)
	assert.Equal(t, int64(6), up.hits.Load())
}

func TestFractionalRPS(t *testing.T) {
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 0.5}, clk.Option()) // burst ceil(0.5) = 1
	require.NoError(t, err)
	require.NoError(t, lim.Acquire(context.Background(), "a"))
	err = lim.Acquire(context.Background(), "a")
	var le *ratelimit.LimitedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, 2*time.Second, le.RetryAfter, "0.5 rps is one request every 2 s")
	clk.Advance(2 * time.Second)
	assert.NoError(t, lim.Acquire(context.Background(), "a"))
}

func TestWaitModeSpacesRequests(t *testing.T) {
	up := newUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5, MaxWait: time.Second}, clk.Option())
	require.NoError(t, err)
	c := client(t, lim)

	errs := fanOut(20, func() error { _, err := get(context.Background(), c, up.URL); return err })

	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, int64(20), up.hits.Load(), "every request reaches the upstream")
	// Five went at once; the other fifteen waited for their own slot of the
	// bucket, one every 20 ms: the last one waited 15 × 20 ms.
	sleeps := clk.Sleeps()
	require.Len(t, sleeps, 15)
	for i, want := range multiples(20*time.Millisecond, 15) {
		assert.InDelta(t, float64(want), float64(sleeps[i]), float64(time.Microsecond), "wait %d", i)
	}
}

func TestWaitModeGivesUpAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxWait time.Duration
		ctx     func(clk *fakeClock) (context.Context, context.CancelFunc)
		// the refused request would have needed 20 ms
	}{
		{"deadline shorter than the wait", time.Second, func(clk *fakeClock) (context.Context, context.CancelFunc) {
			return context.WithDeadline(context.Background(), clk.Now().Add(10*time.Millisecond))
		}},
		{"max_wait shorter than the wait", 10 * time.Millisecond, func(*fakeClock) (context.Context, context.CancelFunc) {
			return context.WithCancel(context.Background())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newUpstream(t)
			clk := newFakeClock()
			lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5, MaxWait: tc.maxWait}, clk.Option())
			require.NoError(t, err)
			c := client(t, lim)
			for range 5 {
				_, err := get(context.Background(), c, up.URL)
				require.NoError(t, err)
			}

			ctx, cancel := tc.ctx(clk)
			defer cancel()
			start := time.Now()
			_, err = get(ctx, c, up.URL)
			require.ErrorIs(t, err, ratelimit.ErrLimited)
			var le *ratelimit.LimitedError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, 20*time.Millisecond, le.RetryAfter)
			assert.Empty(t, clk.Sleeps(), "a wait that cannot succeed is not started")
			assert.Less(t, time.Since(start), time.Second, "refused at once")
			assert.Equal(t, int64(5), up.hits.Load())

			// The refused reservation gave its token back: the next request
			// waits one slot (20 ms), not two.
			clk.Advance(20 * time.Millisecond)
			_, err = get(context.Background(), c, up.URL)
			require.NoError(t, err)
			assert.Empty(t, clk.Sleeps(), "the token the refused request reserved went back to the bucket")
			assert.Equal(t, int64(6), up.hits.Load())
		})
	}
}

func TestCancelledWaitReturnsToken(t *testing.T) {
	up := newUpstream(t)
	clk := newFakeClock()
	clk.block = true
	clk.sleeping = make(chan time.Duration, 1)
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 1, MaxWait: time.Second}, clk.Option())
	require.NoError(t, err)
	c := client(t, lim)
	_, err = get(context.Background(), c, up.URL)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := get(ctx, c, up.URL); done <- err }()
	assert.Equal(t, 20*time.Millisecond, <-clk.sleeping)
	cancel()
	err = <-done
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ratelimit.ErrLimited)
	assert.Equal(t, int64(1), up.hits.Load())

	// The abandoned reservation went back: after 20 ms a token is free again.
	clk.block = false
	clk.sleeping = nil
	clk.Advance(20 * time.Millisecond)
	_, err = get(context.Background(), c, up.URL)
	require.NoError(t, err)
	assert.Equal(t, []time.Duration{20 * time.Millisecond}, clk.Sleeps(), "only the cancelled wait slept")
}

func TestRetryAfterPausesKey(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cfg        ratelimit.Config
		opts       []ratelimit.Option
		status     int
		retryAfter string
		wantPause  time.Duration // 0: no pause
	}{
		{"429 seconds", ratelimit.Config{RPS: 100}, nil, 429, "3", 3 * time.Second},
		{"503 seconds", ratelimit.Config{RPS: 100}, nil, 503, "2", 2 * time.Second},
		{"429 date", ratelimit.Config{RPS: 100}, nil, 429, "date+7s", 7 * time.Second},
		{"500 is not asked to back off", ratelimit.Config{RPS: 100}, nil, 500, "3", 0},
		{"429 without header", ratelimit.Config{RPS: 100}, nil, 429, "", 0},
		{"ignore_retry_after", ratelimit.Config{RPS: 100, IgnoreRetryAfter: true}, nil, 429, "3", 0},
		{"capped by default", ratelimit.Config{RPS: 100}, nil, 429, "86400", ratelimit.DefaultMaxPause},
		{"capped by max_pause", ratelimit.Config{RPS: 100, MaxPause: time.Minute}, nil, 503, "86400", time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paused, other := newUpstream(t), newUpstream(t)
			clk := newFakeClock()
			lim, err := ratelimit.New(tc.cfg, append(tc.opts, clk.Option())...)
			require.NoError(t, err)
			c := client(t, lim)

			ra := tc.retryAfter
			if ra == "date+7s" {
				ra = clk.Now().Add(7 * time.Second).UTC().Format(http.TimeFormat)
			}
			paused.answer(tc.status, ra)
			code, err := get(context.Background(), c, paused.URL)
			require.NoError(t, err, "the upstream's answer is passed through")
			assert.Equal(t, tc.status, code)
			paused.answer(http.StatusOK, "")

			_, err = get(context.Background(), c, paused.URL)
			if tc.wantPause == 0 {
				require.NoError(t, err)
				assert.Equal(t, int64(2), paused.hits.Load())
				return
			}
			require.ErrorIs(t, err, ratelimit.ErrLimited)
			var le *ratelimit.LimitedError
			require.ErrorAs(t, err, &le)
			// An HTTP date has whole seconds: allow for the fraction lost.
			assert.InDelta(t, float64(tc.wantPause), float64(le.RetryAfter), float64(time.Second))
			assert.Equal(t, paused.host(), le.Key)
			assert.Equal(t, int64(1), paused.hits.Load(), "the paused key sends nothing")

			_, err = get(context.Background(), c, other.URL)
			require.NoError(t, err, "another host is not affected")

			snap := lim.Snapshot()
			var found bool
			for _, s := range snap {
				if s.Key == paused.host() {
					found = true
					assert.False(t, s.PausedUntil.IsZero())
				}
			}
			assert.True(t, found, "snapshot shows the paused key: %+v", snap)

			clk.Advance(le.RetryAfter)
			_, err = get(context.Background(), c, paused.URL)
			require.NoError(t, err, "the pause ends")
			assert.Equal(t, int64(2), paused.hits.Load())
		})
	}
}

func TestPauseInWaitMode(t *testing.T) {
	up := newUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 100, MaxWait: 5 * time.Second}, clk.Option())
	require.NoError(t, err)
	c := client(t, lim)

	up.answer(http.StatusTooManyRequests, "2")
	_, err = get(context.Background(), c, up.URL)
	require.NoError(t, err)
	up.answer(http.StatusOK, "")
	_, err = get(context.Background(), c, up.URL)
	require.NoError(t, err, "a pause within max_wait is waited out")
	assert.Equal(t, []time.Duration{2 * time.Second}, clk.Sleeps())
	assert.Equal(t, int64(2), up.hits.Load())
	clk.Advance(2 * time.Second) // what a real sleep would have taken

	up.answer(http.StatusServiceUnavailable, "10")
	_, err = get(context.Background(), c, up.URL)
	require.NoError(t, err)
	_, err = get(context.Background(), c, up.URL)
	var le *ratelimit.LimitedError
	require.ErrorAs(t, err, &le, "a pause beyond max_wait is refused at once")
	assert.Equal(t, 10*time.Second, le.RetryAfter)
	assert.Len(t, clk.Sleeps(), 1)
	assert.Equal(t, int64(3), up.hits.Load())
}

func TestGlobalScopeSharesOneBucket(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 2, Scope: ratelimit.ScopeGlobal}, clk.Option())
	require.NoError(t, err)
	c := client(t, lim)

	_, err = get(context.Background(), c, a.URL)
	require.NoError(t, err)
	_, err = get(context.Background(), c, b.URL)
	require.NoError(t, err)
	for _, u := range []*upstream{a, b} {
		_, err = get(context.Background(), c, u.URL)
		var le *ratelimit.LimitedError
		require.ErrorAs(t, err, &le, "both hosts draw from the one bucket")
		assert.Equal(t, "*", le.Key)
	}
	assert.Equal(t, int64(1), a.hits.Load())
	assert.Equal(t, int64(1), b.hits.Load())
	snap := lim.Snapshot()
	require.Len(t, snap, 1)
	assert.Equal(t, "*", snap[0].Key)
	assert.Equal(t, 0.0, snap[0].Tokens)
	assert.Equal(t, 1, lim.Len())
	assert.NoError(t, lim.Close())
}

func TestHostScopeKeepsHostsApart(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1}, clk.Option())
	require.NoError(t, err)
	c := client(t, lim)
	for _, u := range []*upstream{a, b} {
		_, err = get(context.Background(), c, u.URL)
		require.NoError(t, err)
		_, err = get(context.Background(), c, u.URL)
		require.ErrorIs(t, err, ratelimit.ErrLimited)
	}
	snap := lim.Snapshot()
	require.Len(t, snap, 2)
	assert.ElementsMatch(t, []string{a.host(), b.host()}, []string{snap[0].Key, snap[1].Key})
}

func TestKeyFunc(t *testing.T) {
	up := newUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1},
		clk.Option(), ratelimit.WithKeyFunc(func(r *http.Request) string { return r.URL.Path }))
	require.NoError(t, err)
	c := client(t, lim)
	_, err = get(context.Background(), c, up.URL+"/a")
	require.NoError(t, err)
	_, err = get(context.Background(), c, up.URL+"/b")
	require.NoError(t, err, "another key, another bucket")
	_, err = get(context.Background(), c, up.URL+"/a")
	var le *ratelimit.LimitedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, "/a", le.Key)
}

func TestRejectedRequestBodyIsClosed(t *testing.T) {
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1}, clk.Option())
	require.NoError(t, err)
	var sent int
	rt := lim.RoundTripper(roundTripperFunc(func(*http.Request) (*http.Response, error) {
		sent++
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	}))
	for i := range 2 {
		body := &closeRecorder{}
		req, err := http.NewRequest(http.MethodPost, "http://h/", body)
		require.NoError(t, err)
		_, err = rt.RoundTrip(req)
		if i == 1 {
			require.ErrorIs(t, err, ratelimit.ErrLimited)
			assert.True(t, body.closed, "the body of a refused request is closed")
		}
	}
	assert.Equal(t, 1, sent)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

type closeRecorder struct{ closed bool }

func (c *closeRecorder) Read([]byte) (int, error) { return 0, errors.New("not read") }
func (c *closeRecorder) Close() error             { c.closed = true; return nil }

func TestEvictionBoundsKeys(t *testing.T) {
	for _, tc := range []struct {
		name    string
		maxKeys int
		advance time.Duration // clock step per request: 0 keeps every bucket busy
		hosts   int
	}{
		{"busy buckets", 1000, 0, 100_000},
		{"idle buckets", 1000, 10 * time.Millisecond, 20_000},
		{"small bound", 10, 0, 10_000},
		{"default bound", 0, 0, 20_000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			lim, err := ratelimit.New(ratelimit.Config{RPS: 10, MaxKeys: tc.maxKeys}, clk.Option())
			require.NoError(t, err)
			bound := tc.maxKeys
			if bound == 0 {
				bound = ratelimit.DefaultMaxKeys
			}
			rt := lim.RoundTripper(roundTripperFunc(func(*http.Request) (*http.Response, error) {
				return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
			}))
			lim.Pause("keep:80", time.Hour)
			req, err := http.NewRequest(http.MethodGet, "http://x/", nil)
			require.NoError(t, err)
			peak := 0
			for i := range tc.hosts {
				req.URL.Host = "h" + strconv.Itoa(i) + ":80"
				if _, err := rt.RoundTrip(req); err != nil {
					t.Fatal(err)
				}
				clk.Advance(tc.advance)
				if i%97 == 0 {
					peak = max(peak, lim.Len())
				}
			}
			peak = max(peak, lim.Len())
			assert.LessOrEqual(t, peak, bound)
			assert.Greater(t, peak, bound/2, "the bound is used, not just respected")
			if tc.advance == 0 {
				var kept bool
				for _, s := range lim.Snapshot() {
					kept = kept || s.Key == "keep:80"
				}
				assert.True(t, kept, "a paused key outlives busy but unpaused ones")
			}
		})
	}
}

// TestSlowestRateReportsItsRetryAfter: at MinRPS the wait for the next
// token is 1000 s; a slower rate (1e-300 answered Retry-After: 9223372037)
// is refused by Validate.
func TestSlowestRateReportsItsRetryAfter(t *testing.T) {
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: ratelimit.MinRPS}, clk.Option())
	require.NoError(t, err)
	require.NoError(t, lim.Acquire(context.Background(), "k"))
	var le *ratelimit.LimitedError
	require.ErrorAs(t, lim.Acquire(context.Background(), "k"), &le)
	assert.InDelta(t, 1000*time.Second, le.RetryAfter, float64(time.Second))

	_, err = ratelimit.New(ratelimit.Config{RPS: 1e-300}, clk.Option())
	var fe *ratelimit.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, "rps", fe.Field)
}

func TestRealTimer(t *testing.T) {
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1000, Burst: 1, MaxWait: time.Second})
	require.NoError(t, err)
	ctx := context.Background()
	require.NoError(t, lim.Acquire(ctx, "k"))
	start := time.Now()
	require.NoError(t, lim.Acquire(ctx, "k"), "waits about 1 ms on a real timer")
	assert.Less(t, time.Since(start), 500*time.Millisecond)

	slow, err := ratelimit.New(ratelimit.Config{RPS: 0.01, MaxWait: time.Hour})
	require.NoError(t, err)
	require.NoError(t, slow.Acquire(ctx, "k"))
	ctx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(5*time.Millisecond, cancel) // ends the 100 s wait early
	defer timer.Stop()
	err = slow.Acquire(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), `for a token for "k": context canceled`)
}
