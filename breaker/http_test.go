package breaker_test

import (
	"context"
	"errors"
	"io"
	"net"
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
	"github.com/outbound-go/outbound/internal/refusal"
	"github.com/outbound-go/outbound/retry"
)

// upstream is a loopback HTTP server that counts the requests it receives
// and answers with a status chosen by the test, optionally holding each
// request until released.
type upstream struct {
	srv *httptest.Server
	answer
}

func newUpstream(t *testing.T, status int) *upstream {
	t.Helper()
	u := &upstream{answer: answer{status: status}}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		status, ok := u.arrive(r.Context())
		if !ok {
			return
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, "body")
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) host() string { return strings.TrimPrefix(u.srv.URL, "http://") }

func newClient(t *testing.T, b *breaker.Breaker) *http.Client {
	t.Helper()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: b.RoundTripper(tr)}
}

func newBreaker(t *testing.T, c breaker.Config, opts ...breaker.Option) *breaker.Breaker {
	t.Helper()
	b, err := breaker.New(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// get sends GET url and returns the status, or 0 and the error.
func get(ctx context.Context, c *http.Client, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

type closeRecorder struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeRecorder) Close() error { c.closed.Store(true); return nil }

func TestTripsAfterConsecutiveFailuresAndRefusesWithoutSending(t *testing.T) {
	up := newUpstream(t, http.StatusInternalServerError)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 3, OpenTimeout: time.Hour})
	c := newClient(t, b)

	for i := range 3 {
		code, err := get(t.Context(), c, up.srv.URL)
		require.NoError(t, err, "request %d", i)
		assert.Equal(t, http.StatusInternalServerError, code, "the upstream's 5xx reaches the caller")
	}
	assert.Equal(t, breaker.StateOpen, b.State(up.host()))
	assert.False(t, b.Ready(up.host()))

	body := &closeRecorder{Reader: strings.NewReader("payload")}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, up.srv.URL, body)
	require.NoError(t, err)
	resp, err := c.Do(req)
	if resp != nil {
		_ = resp.Body.Close()
	}
	require.Error(t, err)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.True(t, refusal.Is(err), "a refusal is a local refusal for the retry layer")
	var oe *breaker.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, up.host(), oe.Key)
	assert.True(t, body.closed.Load(), "the refused request's body is closed")
	assert.Equal(t, int64(3), up.hits.Load(), "the refused request never reached the upstream")
}

// openTimeout is the open_timeout of tests that trip a breaker and then
// wait for it to turn half-open. They run in a testing/synctest bubble
// against a stubUpstream: gobreaker reads time.Now, which the bubble fakes,
// so the wait takes no wall time and no check races the timeout.
const openTimeout = time.Minute

func TestHalfOpenLetsExactlyHalfOpenRequestsProbesThrough(t *testing.T) {
	for _, probes := range []int{1, 3} {
		t.Run(strings.Repeat("probe", probes), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := newStub(http.StatusBadGateway)
				b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: openTimeout, HalfOpenRequests: probes})
				c := up.client(b)
				for range 2 {
					_, err := get(t.Context(), c, up.url)
					require.NoError(t, err)
				}
				require.Equal(t, breaker.StateOpen, b.State(up.host()))
				_, err := get(t.Context(), c, up.url)
				require.ErrorIs(t, err, breaker.ErrOpen)
				require.Equal(t, int64(2), up.hits.Load())

				release := make(chan struct{})
				up.set(http.StatusOK, release, nil)
				elapse(openTimeout + time.Millisecond) // fake time: gobreaker follows it
				require.Equal(t, breaker.StateHalfOpen, b.State(up.host()))

				const n = 20
				var wg sync.WaitGroup
				refused := make(chan error, n)
				passed := make(chan int, n)
				for range n {
					wg.Go(func() {
						code, err := get(t.Context(), c, up.url)
						if err != nil {
							refused <- err
							return
						}
						passed <- code
					})
				}
				// Every request that was not admitted comes back at once while
				// the admitted probes are held by the upstream.
				for range n - probes {
					assert.ErrorIs(t, <-refused, breaker.ErrOpen)
				}
				synctest.Wait() // the admitted probes are held by the upstream
				require.Equal(t, int64(2+probes), up.hits.Load())
				assert.False(t, b.Ready(up.host()), "no probe slot left while the probes are in flight")
				close(release)
				wg.Wait()
				close(passed)
				close(refused)
				for code := range passed {
					assert.Equal(t, http.StatusOK, code)
				}
				assert.Empty(t, refused, "exactly half_open_requests were admitted")
				assert.Equal(t, int64(2+probes), up.hits.Load(), "exactly half_open_requests probes reached the upstream")
				assert.Equal(t, breaker.StateClosed, b.State(up.host()), "successful probes close the breaker")

				code, err := get(t.Context(), c, up.url)
				require.NoError(t, err)
				assert.Equal(t, http.StatusOK, code)
			})
		})
	}
}

// TestFailedProbeReopens runs in a testing/synctest bubble (see openTimeout).
func TestFailedProbeReopens(t *testing.T) {
	synctest.Test(t, testFailedProbeReopens)
}

func testFailedProbeReopens(t *testing.T) {
	up := newStub(http.StatusServiceUnavailable)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: openTimeout})
	c := up.client(b)
	_, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	require.Equal(t, breaker.StateOpen, b.State(up.host()))
	elapse(openTimeout + time.Millisecond) // fake time: gobreaker follows it
	require.Equal(t, breaker.StateHalfOpen, b.State(up.host()))

	code, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, code)
	assert.Equal(t, breaker.StateOpen, b.State(up.host()), "a failed probe re-opens the breaker")
	_, err = get(t.Context(), c, up.url)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, int64(2), up.hits.Load())
}

func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	return addr
}

func TestDeadEndpointIsEjectedHealthyOneNever(t *testing.T) {
	healthy := newUpstream(t, http.StatusOK)
	dead := deadAddr(t)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 3, OpenTimeout: time.Hour})
	c := newClient(t, b)

	var refusals, connectErrs int
	for range 20 {
		code, err := get(t.Context(), c, healthy.srv.URL)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code)
		require.Equal(t, breaker.StateClosed, b.State(healthy.host()))

		_, err = get(t.Context(), c, "http://"+dead+"/")
		require.Error(t, err)
		if errors.Is(err, breaker.ErrOpen) {
			refusals++
		} else {
			connectErrs++
		}
	}
	assert.Equal(t, 3, connectErrs, "only consecutive_failures attempts reach the dead endpoint")
	assert.Equal(t, 17, refusals)
	assert.Equal(t, int64(20), healthy.hits.Load())
	assert.True(t, b.Ready(healthy.host()))
	assert.False(t, b.Ready(dead))
	assert.Equal(t, breaker.StateOpen, b.State(dead))
}

func TestClientErrorsNeverTrip(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 409, 429, 499, 501} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			up := newUpstream(t, status)
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2})
			c := newClient(t, b)
			for range 10 {
				code, err := get(t.Context(), c, up.srv.URL)
				require.NoError(t, err)
				require.Equal(t, status, code)
			}
			assert.Equal(t, int64(10), up.hits.Load())
			assert.Equal(t, breaker.StateClosed, b.State(up.host()))
		})
	}
}

func TestCallerCancellationNeverTrips(t *testing.T) {
	up := newUpstream(t, http.StatusOK)
	arrived := make(chan struct{})
	up.set(http.StatusOK, make(chan struct{}), arrived) // never released: only the caller ends it
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2})
	c := newClient(t, b)

	for i := range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		go func() { <-arrived; cancel() }()
		_, err := get(ctx, c, up.srv.URL)
		require.ErrorIs(t, err, context.Canceled, "cancel %d", i)
		cancel()
	}
	for i := range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		go func() { <-arrived }()
		_, err := get(ctx, c, up.srv.URL)
		require.ErrorIs(t, err, context.DeadlineExceeded, "deadline %d", i)
		cancel()
	}
	assert.Equal(t, breaker.StateClosed, b.State(up.host()))
	snap := b.Snapshot()
	require.Len(t, snap, 1)
	assert.Equal(t, 0, snap[0].Failures)
	assert.Equal(t, 0, snap[0].InFlight)
}

func TestFailureRatioTripsOnceMinRequestsSeen(t *testing.T) {
	up := newUpstream(t, http.StatusOK)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 100, FailureRatio: 0.5, MinRequests: 10, Interval: time.Hour})
	c := newClient(t, b)
	send := func(status int) {
		t.Helper()
		up.set(status, nil, nil)
		code, err := get(t.Context(), c, up.srv.URL)
		require.NoError(t, err)
		require.Equal(t, status, code)
	}
	for range 4 {
		send(http.StatusOK)
		send(http.StatusInternalServerError)
	}
	assert.Equal(t, breaker.StateClosed, b.State(up.host()), "4/8 failed, but fewer than min_requests")
	send(http.StatusOK)
	assert.Equal(t, breaker.StateClosed, b.State(up.host()), "4/9 failed")
	send(http.StatusInternalServerError)
	assert.Equal(t, breaker.StateOpen, b.State(up.host()), "5/10 failed: ratio reached with min_requests seen")
	_, err := get(t.Context(), c, up.srv.URL)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, int64(10), up.hits.Load())
}

// TestReadyTakesNoProbeSlot runs in a testing/synctest bubble (see openTimeout).
func TestReadyTakesNoProbeSlot(t *testing.T) {
	synctest.Test(t, testReadyTakesNoProbeSlot)
}

func testReadyTakesNoProbeSlot(t *testing.T) {
	up := newStub(http.StatusInternalServerError)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: openTimeout})
	c := up.client(b)
	assert.True(t, b.Ready(up.host()), "no breaker yet")
	_, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	assert.False(t, b.Ready(up.host()))
	elapse(openTimeout + time.Millisecond) // fake time: gobreaker follows it
	require.True(t, b.Ready(up.host()))
	for range 100 {
		require.True(t, b.Ready(up.host()))
	}
	assert.Equal(t, breaker.StateHalfOpen, b.State(up.host()))

	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up.set(http.StatusOK, release, arrived)
	done := make(chan error, 1)
	go func() { _, err := get(context.Background(), c, up.url); done <- err }()
	<-arrived
	assert.False(t, b.Ready(up.host()), "the single probe slot is taken")
	close(release)
	require.NoError(t, <-done)
	assert.True(t, b.Ready(up.host()))
	assert.Equal(t, breaker.StateClosed, b.State(up.host()))
	assert.Equal(t, int64(2), up.hits.Load())
}

// TestOnStateChangeRunsOutsideLocksInOrder runs in a testing/synctest bubble (see openTimeout).
func TestOnStateChangeRunsOutsideLocksInOrder(t *testing.T) {
	synctest.Test(t, testOnStateChangeRunsOutsideLocksInOrder)
}

func testOnStateChangeRunsOutsideLocksInOrder(t *testing.T) {
	up := newStub(http.StatusInternalServerError)
	var (
		mu  sync.Mutex
		got []string
		b   *breaker.Breaker
	)
	b = newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: openTimeout},
		breaker.WithOnStateChange(func(key string, from, to breaker.State) {
			// Calling back into the Breaker would deadlock under a lock.
			_ = b.State(key)
			_ = b.Ready(key)
			_ = b.Snapshot()
			mu.Lock()
			got = append(got, key+" "+from.String()+">"+to.String())
			mu.Unlock()
		}))
	c := up.client(b)
	for range 2 {
		_, err := get(t.Context(), c, up.url)
		require.NoError(t, err)
	}
	up.set(http.StatusOK, nil, nil)
	elapse(openTimeout + time.Millisecond) // fake time: gobreaker follows it
	code, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	mu.Lock()
	defer mu.Unlock()
	h := up.host()
	assert.Equal(t, []string{h + " closed>open", h + " open>half_open", h + " half_open>closed"}, got)
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestDefaultClassifier(t *testing.T) {
	live := httptest.NewRequest(http.MethodGet, "http://a:1/", nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	cancelled := live.WithContext(ctx)
	resp := func(code int) *http.Response { return &http.Response{StatusCode: code} }
	tests := []struct {
		name string
		req  *http.Request
		resp *http.Response
		err  error
		want breaker.Outcome
	}{
		{"200", live, resp(200), nil, breaker.Success},
		{"404", live, resp(404), nil, breaker.Success},
		{"429", live, resp(429), nil, breaker.Success},
		{"500", live, resp(500), nil, breaker.Failure},
		{"501", live, resp(501), nil, breaker.Success},
		{"502", live, resp(502), nil, breaker.Failure},
		{"503", live, resp(503), nil, breaker.Failure},
		{"599", live, resp(599), nil, breaker.Failure},
		{"connection refused", live, nil, errors.New("dial tcp: connection refused"), breaker.Failure},
		{"caller cancelled", cancelled, nil, context.Canceled, breaker.Ignore},
		{"caller deadline", cancelled, nil, &net.OpError{Op: "read", Err: context.DeadlineExceeded}, breaker.Ignore},
		{"deadline not the caller's", live, nil, context.DeadlineExceeded, breaker.Failure},
		{"cancelled ctx, other error", cancelled, nil, io.ErrUnexpectedEOF, breaker.Failure},
		{"local refusal below", live, nil, &breaker.OpenError{Key: "x"}, breaker.Ignore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, breaker.DefaultClassifier(tt.req, tt.resp, tt.err))
		})
	}
}

func TestClassifierAndKeyFuncOptions(t *testing.T) {
	var sent atomic.Int64
	next := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		sent.Add(1)
		return &http.Response{StatusCode: http.StatusTooManyRequests, Body: http.NoBody, Request: r}, nil
	})
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour},
		breaker.WithKeyFunc(func(r *http.Request) string { return r.Header.Get("X-Tenant") }),
		breaker.WithClassifier(func(_ *http.Request, resp *http.Response, err error) breaker.Outcome {
			if err == nil && resp.StatusCode == http.StatusTooManyRequests {
				return breaker.Failure
			}
			return breaker.DefaultClassifier(nil, resp, err)
		}))
	rt := b.RoundTripper(next)
	do := func(tenant string) error {
		req := httptest.NewRequest(http.MethodGet, "http://shared:80/", nil)
		req.Header.Set("X-Tenant", tenant)
		resp, err := rt.RoundTrip(req)
		if err == nil {
			_ = resp.Body.Close()
		}
		return err
	}
	require.NoError(t, do("a"))
	require.NoError(t, do("a"))
	assert.ErrorIs(t, do("a"), breaker.ErrOpen, "429 counted as failure by the custom classifier")
	assert.NoError(t, do("b"), "another key is unaffected")
	assert.Equal(t, breaker.StateOpen, b.State("a"))
	assert.Equal(t, breaker.StateClosed, b.State("b"))
	assert.Equal(t, breaker.StateClosed, b.State("shared:80"), "the host is not the key")
	assert.Equal(t, int64(3), sent.Load())
}

func TestSnapshot(t *testing.T) {
	ok := newUpstream(t, http.StatusOK)
	bad := newUpstream(t, http.StatusInternalServerError)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour})
	c := newClient(t, b)
	for _, u := range []*upstream{ok, ok, bad} {
		_, err := get(t.Context(), c, u.srv.URL)
		require.NoError(t, err)
	}
	snap := b.Snapshot()
	require.Len(t, snap, 2)
	byKey := map[string]breaker.KeyState{}
	for _, s := range snap {
		byKey[s.Key] = s
	}
	assert.Less(t, snap[0].Key, snap[1].Key, "sorted by key")
	assert.Equal(t, breaker.KeyState{Key: ok.host(), State: breaker.StateClosed, Requests: 2, Successes: 2}, byKey[ok.host()])
	assert.Equal(t, breaker.StateOpen, byKey[bad.host()].State)
	assert.Equal(t, 2, b.Len())
	require.NoError(t, b.Close())
	assert.Equal(t, 0, b.Len())
}

func TestStateStrings(t *testing.T) {
	assert.Equal(t, "closed", breaker.StateClosed.String())
	assert.Equal(t, "half_open", breaker.StateHalfOpen.String())
	assert.Equal(t, "open", breaker.StateOpen.String())
	assert.Equal(t, "State(7)", breaker.State(7).String())
}

// TestCancelledProbeFreesItsSlot runs in a testing/synctest bubble (see
// openTimeout). A half-open probe that its caller gives up on is the
// caller's cancellation, which is never the endpoint's failure: the breaker
// stays half-open and the next request is the probe that closes it.
func TestCancelledProbeFreesItsSlot(t *testing.T) {
	synctest.Test(t, testCancelledProbeFreesItsSlot)
}

func testCancelledProbeFreesItsSlot(t *testing.T) {
	up := newStub(http.StatusInternalServerError)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: openTimeout})
	c := up.client(b)
	_, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	arrived := make(chan struct{})
	up.set(http.StatusOK, make(chan struct{}), arrived) // the upstream hangs
	elapse(openTimeout + time.Millisecond)              // fake time: gobreaker follows it
	require.Equal(t, breaker.StateHalfOpen, b.State(up.host()))

	// The caller gives up once the probe has reached the upstream.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() { <-arrived; cancel() }()
	_, err = get(ctx, c, up.url)
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, breaker.StateHalfOpen, b.State(up.host()), "the caller's cancellation counts as nothing")

	up.set(http.StatusOK, nil, nil) // the upstream answers again
	code, err := get(t.Context(), c, up.url)
	require.NoError(t, err, "the freed slot takes the next probe")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, breaker.StateClosed, b.State(up.host()), "the probe succeeded")
	assert.Equal(t, int64(3), up.hits.Load())
}

// TestProbeCutByPerTryTimeoutReopens runs in a testing/synctest bubble (see
// openTimeout). A half-open probe that retry's per-try timeout cuts is
// not the caller's cancellation: the endpoint missed a deadline of this
// module's own, so the breaker opens again and the hanging upstream gets
// one probe per open_timeout, not one per request.
func TestProbeCutByPerTryTimeoutReopens(t *testing.T) {
	synctest.Test(t, testProbeCutByPerTryTimeoutReopens)
}

func testProbeCutByPerTryTimeoutReopens(t *testing.T) {
	up := newStub(http.StatusInternalServerError)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: openTimeout})
	p, err := retry.New(retry.Config{MaxAttempts: 1, PerTryTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	c := &http.Client{Transport: p.RoundTripper(b.RoundTripper(up))}
	code, err := get(t.Context(), c, up.url)
	require.NoError(t, err)
	require.Equal(t, http.StatusInternalServerError, code)
	up.set(http.StatusOK, make(chan struct{}), nil) // the upstream hangs
	elapse(openTimeout + time.Millisecond)
	require.Equal(t, breaker.StateHalfOpen, b.State(up.host()))

	_, err = get(t.Context(), c, up.url)
	require.Error(t, err, "cut by the per-try timeout")
	require.NoError(t, t.Context().Err(), "the caller still waits")
	assert.Equal(t, breaker.StateOpen, b.State(up.host()), "the probe missed the per-try deadline: open again")
	_, err = get(t.Context(), c, up.url)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, int64(2), up.hits.Load(), "one probe per open_timeout")
}
