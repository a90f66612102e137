package retry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/retry"
)

// cancellingClock is a Clock whose Sleep stands for a caller that gives up
// while the policy waits to retry: it cancels the request's context and
// returns its error.
type cancellingClock struct {
	cancel context.CancelFunc
	slept  atomic.Int32
}

func (c *cancellingClock) Now() time.Time { return time.Now() }

func (c *cancellingClock) Sleep(ctx context.Context, _ time.Duration) error {
	c.slept.Add(1)
	c.cancel()
	<-ctx.Done()
	return ctx.Err()
}

// deadURL is the URL of a loopback port nothing listens on: every dial is
// refused.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + l.Addr().String()
	require.NoError(t, l.Close())
	return url
}

// TestHedgedRequestDecidesAsUnhedged runs the same failures through a plain
// policy and a hedging one whose hedges never fire (one attempt in flight
// at a time): the hedged path falls back to the same retry decision, so
// the answer and the outcomes must be the same.
func TestHedgedRequestDecidesAsUnhedged(t *testing.T) {
	always503 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(503)
		_, _ = io.WriteString(w, "down")
	}))
	defer always503.Close()
	farRetryAfter := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(503)
	}))
	defer farRetryAfter.Close()
	dead := deadURL(t)
	noBudget := retry.BudgetConfig{MinPerSecond: 0.001, TTL: time.Second}

	cases := []struct {
		name       string
		url        string
		cfg        retry.Config
		wantStatus int // 0: an error
		wantBudget bool
		want       map[string]int64
	}{
		{"503 until attempts run out", always503.URL, retry.Config{MaxAttempts: 2}, 503, false,
			map[string]int64{"retried": 1, "exhausted": 1}},
		{"503 with the budget spent", always503.URL, retry.Config{Budget: noBudget}, 503, false,
			map[string]int64{"budget_exhausted": 1}},
		{"refused until attempts run out", dead, retry.Config{MaxAttempts: 3}, 0, false,
			map[string]int64{"retried": 2, "exhausted": 1}},
		{"refused with the budget spent", dead, retry.Config{Budget: noBudget}, 0, true,
			map[string]int64{"budget_exhausted": 1}},
		{"Retry-After beyond max_retry_after", farRetryAfter.URL, retry.Config{}, 503, false,
			map[string]int64{"not_retryable": 1}},
	}
	for _, tc := range cases {
		for _, hedged := range []bool{false, true} {
			name := tc.name
			if hedged {
				name += "/hedged"
			}
			t.Run(name, func(t *testing.T) {
				cfg := tc.cfg
				if hedged {
					cfg.Hedge = retry.HedgeConfig{Delay: time.Minute}
				}
				p, _, m := newPolicy(t, cfg)
				tr := &http.Transport{}
				defer tr.CloseIdleConnections()
				req, err := http.NewRequest(http.MethodGet, tc.url, nil)
				require.NoError(t, err)
				resp, err := p.RoundTripper(tr).RoundTrip(req)
				if tc.wantStatus != 0 {
					require.NoError(t, err)
					assert.Equal(t, tc.wantStatus, resp.StatusCode)
					readAll(t, resp)
				} else {
					require.Error(t, err)
					assert.Nil(t, resp)
					var op *net.OpError
					assert.ErrorAs(t, err, &op, "the last attempt's error is kept")
					if tc.wantBudget {
						assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
					} else {
						assert.NotErrorIs(t, err, retry.ErrBudgetExhausted)
					}
				}
				assert.Equal(t, tc.want, m.outcomes(t))
			})
		}
	}
}

// TestCallerGivesUpWhileWaitingToRetry: a caller that leaves during the
// backoff wait gets its context error, hedged or not, and no further
// attempt is sent.
func TestCallerGivesUpWhileWaitingToRetry(t *testing.T) {
	for _, hedged := range []bool{false, true} {
		t.Run(map[bool]string{false: "unhedged", true: "hedged"}[hedged], func(t *testing.T) {
			up := &flaky{n: 1, fail: failWith(503)}
			srv := httptest.NewServer(up)
			defer srv.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clk := &cancellingClock{cancel: cancel}
			m := newMetrics(t)
			cfg := retry.Config{}
			if hedged {
				cfg.Hedge = retry.HedgeConfig{Delay: time.Minute}
			}
			p, err := retry.New(cfg, retry.WithClock(clk), retry.WithMeterProvider(m.mp))
			require.NoError(t, err)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
			require.NoError(t, err)
			resp, err := p.RoundTripper(srv.Client().Transport).RoundTrip(req)
			require.Error(t, err)
			assert.Nil(t, resp)
			assert.ErrorIs(t, err, context.Canceled)
			assert.EqualValues(t, 1, clk.slept.Load())
			assert.EqualValues(t, 1, up.hits.Load(), "no attempt after the caller left")
			assert.Equal(t, map[string]int64{"retried": 1}, m.outcomes(t))
		})
	}
}

// TestHedgingCallerGivesUp: a caller that leaves while the original and a
// hedge are both in flight gets its context error at once; both attempts
// are cancelled and counted.
func TestHedgingCallerGivesUp(t *testing.T) {
	arrived := make(chan struct{}, 2)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	p, clk, m := newPolicy(t, retry.Config{Hedge: retry.HedgeConfig{Delay: time.Millisecond}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	var (
		wg   sync.WaitGroup
		resp *http.Response
		rerr error
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		resp, rerr = p.RoundTripper(srv.Client().Transport).RoundTrip(req)
	}()
	<-arrived
	<-arrived // the hedge
	cancel()
	wg.Wait()
	require.Error(t, rerr)
	assert.Nil(t, resp)
	assert.ErrorIs(t, rerr, context.Canceled)
	assert.Empty(t, clk.Sleeps())
	// The hedge is counted hedged. The original is counted not_retryable
	// when the policy sees the caller leave first; when it sees that
	// attempt's failure first, while the hedge is still in flight, the
	// failure counts as retried (another copy is running), as it always
	// has.
	got := m.outcomes(t)
	if got["retried"] == 1 {
		assert.Equal(t, map[string]int64{"retried": 1, "hedged": 1}, got)
	} else {
		assert.Equal(t, map[string]int64{"not_retryable": 1, "hedged": 1}, got)
	}
}

// closeSignal closes done when the body is closed.
type closeSignal struct {
	io.ReadCloser
	once sync.Once
	done chan struct{}
}

func (b *closeSignal) Close() error {
	err := b.ReadCloser.Close()
	b.once.Do(func() { close(b.done) })
	return err
}

// TestHedgingFailedCopyWaitsForTheOther: when one copy fails retriably
// while another is still in flight, the policy discards the failure and
// waits for the other copy instead of retrying (no backoff).
func TestHedgingFailedCopyWaitsForTheOther(t *testing.T) {
	var hits atomic.Int32
	secondArrived := make(chan struct{})
	failureDiscarded := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			select {
			case <-secondArrived:
			case <-r.Context().Done():
				return
			}
			w.WriteHeader(503)
			_, _ = io.WriteString(w, strings.Repeat("x", 64))
			return
		}
		close(secondArrived)
		select {
		case <-failureDiscarded:
		case <-r.Context().Done():
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	// The failed copy's body is closed when the policy discards it.
	base := srv.Client().Transport
	signalling := rtFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := base.RoundTrip(r)
		if err == nil && resp.StatusCode == 503 {
			resp.Body = &closeSignal{ReadCloser: resp.Body, done: failureDiscarded}
		}
		return resp, err
	})
	p, clk, m := newPolicy(t, retry.Config{Hedge: retry.HedgeConfig{Delay: time.Millisecond}})
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := p.RoundTripper(signalling).RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.EqualValues(t, 2, hits.Load())
	assert.Empty(t, clk.Sleeps(), "no retry: the other copy answered")
	// Usually the original fails (retried: another attempt answered) and
	// the hedge wins (hedged); on a loaded machine the hedge can reach the
	// server first, and is then the copy that fails (hedged) while the
	// original wins (success).
	got := m.outcomes(t)
	if got["success"] == 1 {
		assert.Equal(t, map[string]int64{"hedged": 1, "success": 1}, got)
	} else {
		assert.Equal(t, map[string]int64{"retried": 1, "hedged": 1}, got)
	}
}
