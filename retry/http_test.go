package retry_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/refusal"
	"github.com/outbound-go/outbound/retry"
)

// flaky answers fail for the first n requests, then 200 "ok". It records
// every request body it saw.
type flaky struct {
	n      int32
	fail   func(w http.ResponseWriter, r *http.Request)
	hits   atomic.Int32
	mu     sync.Mutex
	bodies []string
}

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.bodies = append(f.bodies, string(b))
	f.mu.Unlock()
	if f.hits.Add(1) <= f.n {
		f.fail(w, r)
		return
	}
	_, _ = io.WriteString(w, "ok")
}

func (f *flaky) Bodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.bodies...)
}

func failWith(code int) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		_, _ = io.WriteString(w, strings.Repeat("x", 1024))
	}
}

func serve(t *testing.T, h http.Handler) (*httptest.Server, *http.Client, func(retry.Config, ...retry.Option) (*http.Client, *fakeClock, *metrics)) {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	mk := func(c retry.Config, opts ...retry.Option) (*http.Client, *fakeClock, *metrics) {
		p, clk, m := newPolicy(t, c, opts...)
		return &http.Client{Transport: p.RoundTripper(srv.Client().Transport)}, clk, m
	}
	return srv, srv.Client(), mk
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

func TestRetriesGatewayErrors(t *testing.T) {
	for _, code := range []int{502, 503, 504} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			up := &flaky{n: 2, fail: failWith(code)}
			srv, _, mk := serve(t, up)
			client, clk, m := mk(retry.Config{})
			resp, err := client.Get(srv.URL)
			require.NoError(t, err)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, "ok", readAll(t, resp))
			assert.EqualValues(t, 3, up.hits.Load())
			assert.Len(t, clk.Sleeps(), 2)
			for _, d := range clk.Sleeps() {
				assert.LessOrEqual(t, d, retry.DefaultMaxDelay)
				assert.Greater(t, d, time.Duration(0))
			}
			assert.Equal(t, map[string]int64{"retried": 2, "success": 1}, m.outcomes(t))
		})
	}
}

func TestExhaustedReturnsLastResponseUnread(t *testing.T) {
	up := &flaky{n: 100, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	client, _, m := mk(retry.Config{MaxAttempts: 4})
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, 503, resp.StatusCode)
	assert.Len(t, readAll(t, resp), 1024, "the final body reaches the caller unread")
	assert.EqualValues(t, 4, up.hits.Load())
	assert.Equal(t, map[string]int64{"retried": 3, "exhausted": 1}, m.outcomes(t))
}

func TestStatusConditions(t *testing.T) {
	cases := []struct {
		name  string
		cfg   retry.Config
		code  int
		hits  int32
		final int
	}{
		{"500 not a gateway error", retry.Config{}, 500, 1, 500},
		{"500 under 5xx", retry.Config{RetryOn: []string{"5xx"}}, 500, 2, 200},
		{"429 listed", retry.Config{RetriableStatusCodes: []int{429}}, 429, 2, 200},
		{"404 never", retry.Config{RetryOn: []string{"5xx"}}, 404, 1, 404},
		{"503 when only connect-failure", retry.Config{RetryOn: []string{"connect-failure"}}, 503, 1, 503},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &flaky{n: 1, fail: failWith(tc.code)}
			srv, _, mk := serve(t, up)
			client, _, _ := mk(tc.cfg)
			resp, err := client.Get(srv.URL)
			require.NoError(t, err)
			readAll(t, resp)
			assert.Equal(t, tc.final, resp.StatusCode)
			assert.Equal(t, tc.hits, up.hits.Load())
		})
	}
}

func TestPOSTNotResentAfter503(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	client, _, m := mk(retry.Config{})
	resp, err := client.Post(srv.URL, "text/plain", strings.NewReader("pay 10€"))
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, 503, resp.StatusCode)
	assert.EqualValues(t, 1, up.hits.Load(), "a POST that reached the upstream is sent once")
	assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
}

// onlyReader hides every method but Read, so http.NewRequest sets no GetBody.
type onlyReader struct{ r io.Reader }

func (o onlyReader) Read(p []byte) (int, error) { return o.r.Read(p) }

func TestIdempotencyKeyReplaysIdenticalBodies(t *testing.T) {
	body := strings.Repeat("payload-", 1000)
	for _, tc := range []struct {
		name string
		body func() io.Reader
	}{
		{"GetBody", func() io.Reader { return strings.NewReader(body) }},
		{"buffered", func() io.Reader { return onlyReader{strings.NewReader(body)} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := &flaky{n: 2, fail: failWith(503)}
			srv, _, mk := serve(t, up)
			client, _, _ := mk(retry.Config{})
			req, err := http.NewRequest(http.MethodPost, srv.URL, tc.body())
			require.NoError(t, err)
			req.Header.Set("Idempotency-Key", "k-1")
			resp, err := client.Do(req)
			require.NoError(t, err)
			readAll(t, resp)
			assert.Equal(t, 200, resp.StatusCode)
			assert.Equal(t, []string{body, body, body}, up.Bodies())
		})
	}
}

// closeCounter records that the caller's body was closed.
type closeCounter struct {
	io.Reader
	closed atomic.Int32
}

func (c *closeCounter) Close() error { c.closed.Add(1); return nil }

func TestBodyLargerThanBufferIsSentOnce(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	client, _, m := mk(retry.Config{MaxBodyBuffer: 100})
	body := &closeCounter{Reader: strings.NewReader(strings.Repeat("b", 4096))}
	req, err := http.NewRequest(http.MethodPut, srv.URL, body)
	require.NoError(t, err)
	resp, err := client.Do(req)
	require.NoError(t, err, "a body too large to replay is no error by itself")
	readAll(t, resp)
	assert.Equal(t, 503, resp.StatusCode)
	assert.EqualValues(t, 1, up.hits.Load())
	assert.Equal(t, []string{strings.Repeat("b", 4096)}, up.Bodies())
	assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
	require.Eventually(t, func() bool { return body.closed.Load() == 1 }, time.Second, time.Millisecond)
}

func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name  string
		value func(now time.Time) string
		want  time.Duration
		hits  int32
	}{
		{"delta seconds", func(time.Time) string { return "1" }, time.Second, 2},
		{"HTTP-date", func(now time.Time) string { return now.Add(3 * time.Second).UTC().Format(http.TimeFormat) }, 3 * time.Second, 2},
		{"beyond max_retry_after", func(time.Time) string { return "3600" }, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var clk *fakeClock
			up := &flaky{n: 1, fail: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", tc.value(clk.Now().Truncate(time.Second)))
				w.WriteHeader(503)
			}}
			srv, _, mk := serve(t, up)
			var client *http.Client
			client, clk, _ = mk(retry.Config{})
			clk.now = clk.now.Truncate(time.Second)
			resp, err := client.Get(srv.URL)
			require.NoError(t, err)
			readAll(t, resp)
			assert.Equal(t, tc.hits, up.hits.Load())
			if tc.want > 0 {
				assert.Equal(t, []time.Duration{tc.want}, clk.Sleeps())
				assert.Equal(t, 200, resp.StatusCode)
			} else {
				assert.Empty(t, clk.Sleeps())
				assert.Equal(t, 503, resp.StatusCode)
			}
		})
	}
}

func TestNeverSleepsPastDeadline(t *testing.T) {
	up := &flaky{n: 1, fail: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "2")
		w.WriteHeader(503)
	}}
	srv, _, mk := serve(t, up)
	client, clk, m := mk(retry.Config{})
	resp := getWithin(t, client, srv.URL, time.Second)
	assert.Equal(t, 503, resp.StatusCode, "the wait would end after the deadline: the last answer now")
	assert.Empty(t, clk.Sleeps())
	assert.EqualValues(t, 1, up.hits.Load())
	assert.Equal(t, map[string]int64{"exhausted": 1}, m.outcomes(t))
}

// The upstream's delay is the wait, not the backoff schedule's next step:
// a Retry-After that fits before the deadline is honoured even when the
// schedule's step (here 5–15 s from a 10 s base_delay) would not fit.
func TestRetryAfterInsideDeadlineIsHonouredWhateverTheSchedule(t *testing.T) {
	for _, after := range []string{"0", "1"} {
		t.Run("Retry-After "+after, func(t *testing.T) {
			up := &flaky{n: 1, fail: func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Retry-After", after)
				w.WriteHeader(503)
			}}
			srv, _, mk := serve(t, up)
			client, clk, m := mk(retry.Config{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second})
			resp := getWithin(t, client, srv.URL, 3*time.Second)
			assert.Equal(t, 200, resp.StatusCode)
			assert.EqualValues(t, 2, up.hits.Load())
			d, _ := strconv.Atoi(after)
			assert.Equal(t, []time.Duration{time.Duration(d) * time.Second}, clk.Sleeps())
			assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
		})
	}
}

// getWithin GETs url through client under a deadline d from now and reads
// the whole body.
func getWithin(t *testing.T, client *http.Client, url string, d time.Duration) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := client.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	return resp
}

func TestCallerCancellationStops(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	srv, _, mk := serve(t, up)
	defer close(release)
	client, clk, _ := mk(retry.Config{PerTryTimeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	go func() { <-arrived; cancel() }()
	_, err := client.Do(req)
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, clk.Sleeps())
}

func TestResetIsRetriedForGETOnly(t *testing.T) {
	hangUp := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	}
	t.Run("GET", func(t *testing.T) {
		up := &flaky{n: 1, fail: hangUp}
		srv, _, mk := serve(t, up)
		client, _, m := mk(retry.Config{})
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		assert.Equal(t, "ok", readAll(t, resp))
		assert.EqualValues(t, 2, up.hits.Load())
		assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
	})
	t.Run("POST", func(t *testing.T) {
		up := &flaky{n: 1, fail: hangUp}
		srv, _, mk := serve(t, up)
		client, _, m := mk(retry.Config{})
		_, err := client.Post(srv.URL, "text/plain", strings.NewReader("x"))
		require.Error(t, err)
		assert.EqualValues(t, 1, up.hits.Load())
		assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
	})
}

func TestConnectFailureResendsPOST(t *testing.T) {
	up := &flaky{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	deadAddr := dead.Addr().String()
	require.NoError(t, dead.Close())

	var dials atomic.Int32
	base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		if dials.Add(1) == 1 {
			return d.DialContext(ctx, network, deadAddr) // refused: the request never left
		}
		return d.DialContext(ctx, network, addr)
	}}
	defer base.CloseIdleConnections()
	p, _, _ := newPolicy(t, retry.Config{})
	client := &http.Client{Transport: p.RoundTripper(base)}
	resp, err := client.Post(srv.URL, "text/plain", onlyReader{strings.NewReader("order-1")})
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.Equal(t, []string{"order-1"}, up.Bodies())
}

func TestLocalRefusalIsNotRetried(t *testing.T) {
	errRefused := refusal.New("test: refused locally")
	var calls atomic.Int32
	next := rtFunc(func(*http.Request) (*http.Response, error) {
		calls.Add(1)
		return nil, errRefused
	})
	p, clk, m := newPolicy(t, retry.Config{})
	req, _ := http.NewRequest(http.MethodGet, "http://users/", nil)
	_, err := p.RoundTripper(next).RoundTrip(req)
	assert.ErrorIs(t, err, errRefused)
	assert.EqualValues(t, 1, calls.Load())
	assert.Empty(t, clk.Sleeps())
	assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
}

// perTryTimeout is the per-try timeout of the tests where one attempt hangs
// until it fires and another must answer within it. Its margin is for the
// answering attempt: with 50ms a healthy loopback call under -race on a
// loaded 2-core machine sometimes took longer, timed out too and made a
// third attempt.
const perTryTimeout = 300 * time.Millisecond

func TestPerTryTimeout(t *testing.T) {
	t.Run("slow first attempt, fast second", func(t *testing.T) {
		var hits atomic.Int32
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hits.Add(1) == 1 {
				<-r.Context().Done() // hangs until the per-try timeout cancels it
				return
			}
			_, _ = io.WriteString(w, "fast")
		})
		srv, _, mk := serve(t, up)
		client, _, m := mk(retry.Config{PerTryTimeout: perTryTimeout})
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		assert.Equal(t, "fast", readAll(t, resp))
		assert.EqualValues(t, 2, hits.Load())
		assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
	})
	t.Run("body read outlives the timeout", func(t *testing.T) {
		const chunk, chunks = 64 << 10, 16
		up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(200)
			http.NewResponseController(w).Flush()
			latency(r.Context(), 2*perTryTimeout) // slow upstream: past the per-try timeout
			for range chunks {
				_, _ = w.Write(bytes.Repeat([]byte("z"), chunk))
			}
		})
		srv, _, mk := serve(t, up)
		client, _, _ := mk(retry.Config{PerTryTimeout: perTryTimeout})
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		assert.Len(t, readAll(t, resp), chunk*chunks)
	})
}

func TestBudgetUnderTotalOutage(t *testing.T) {
	up := &flaky{n: 1 << 30, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	cfg := retry.Config{Budget: retry.BudgetConfig{Ratio: 0.2, MinPerSecond: 1, TTL: 10 * time.Second}}
	client, _, m := mk(cfg)
	const requests = 300
	for range requests {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		readAll(t, resp)
		assert.Equal(t, 503, resp.StatusCode)
	}
	floor := 1 * 10
	assert.LessOrEqual(t, int(up.hits.Load()), int(1.2*requests)+floor)
	assert.Greater(t, int(up.hits.Load()), requests, "the budget allows some retries")
	assert.Positive(t, m.outcomes(t)["budget_exhausted"])
}

func TestBudgetExhaustedWithoutResponse(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	url := "http://" + dead.Addr().String()
	require.NoError(t, dead.Close())
	p, _, m := newPolicy(t, retry.Config{Budget: retry.BudgetConfig{MinPerSecond: 0.001, TTL: time.Second}})
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: p.RoundTripper(tr)}
	_, err = client.Get(url)
	require.Error(t, err)
	assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
	assert.Equal(t, map[string]int64{"budget_exhausted": 1}, m.outcomes(t))
}

func TestNoConnectionLeakAcross1000RetriedRequests(t *testing.T) {
	var hits atomic.Int32
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1)%2 == 1 {
			w.WriteHeader(503)
			_, _ = w.Write(bytes.Repeat([]byte("e"), 8<<10))
			return
		}
		_, _ = io.WriteString(w, "ok")
	})
	srv := httptest.NewUnstartedServer(up)
	var conns atomic.Int32
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	p, _, m := newPolicy(t, retry.Config{Budget: retry.BudgetConfig{Disabled: true}})
	client := &http.Client{Transport: p.RoundTripper(srv.Client().Transport)}
	for range 1000 {
		resp, err := client.Get(srv.URL)
		require.NoError(t, err)
		require.Equal(t, "ok", readAll(t, resp))
	}
	assert.EqualValues(t, 2000, hits.Load())
	assert.LessOrEqual(t, conns.Load(), int32(2), "discarded responses are drained so the connection is reused")
	assert.Equal(t, map[string]int64{"retried": 1000, "success": 1000}, m.outcomes(t))
}

func TestGRPCTrailersOnlyResponse(t *testing.T) {
	trailersOnly := func(code string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Grpc-Status", code)
			w.Header().Set("Grpc-Retry-Pushback-Ms", "40")
		}
	}
	streamBegun := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Trailer", "Grpc-Status")
		w.WriteHeader(200)
		_, _ = w.Write([]byte{0, 0, 0, 0, 0})
		w.Header().Set("Grpc-Status", "14")
	}
	cases := []struct {
		name   string
		fail   func(http.ResponseWriter, *http.Request)
		hits   int32
		sleeps []time.Duration
	}{
		{"UNAVAILABLE in headers", trailersOnly("14"), 2, []time.Duration{40 * time.Millisecond}},
		{"INTERNAL in headers", trailersOnly("13"), 1, nil},
		{"stream begun", streamBegun, 1, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &flaky{n: 1, fail: tc.fail}
			srv, _, mk := serve(t, up)
			client, clk, _ := mk(retry.Config{})
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/grpc.testing.TestService/UnaryCall", strings.NewReader("\x00\x00\x00\x00\x00"))
			req.Header.Set("Content-Type", "application/grpc")
			resp, err := client.Do(req)
			require.NoError(t, err)
			readAll(t, resp)
			assert.Equal(t, tc.hits, up.hits.Load())
			assert.Equal(t, tc.sleeps, clk.Sleeps())
		})
	}
}

func TestValidateErrorsFromNew(t *testing.T) {
	_, err := retry.New(retry.Config{MaxAttempts: -1})
	var fe *retry.FieldError
	require.True(t, errors.As(err, &fe))
	assert.Equal(t, "max_attempts", fe.Field)
}

// A trailers-only gRPC answer that arrives while the client is still
// streaming its request is not retried: reading the rest of the body ahead
// would wait on a sender that waits for this response.
func TestGRPCTrailersOnlyWhileClientStillSending(t *testing.T) {
	up := &flaky{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.hits.Add(1)
		w.Header().Set("Content-Type", "application/grpc")
		w.Header().Set("Grpc-Status", "14")
		w.WriteHeader(200)
	}))
	srv.EnableHTTP2 = true // gRPC's transport; an HTTP/1 server would wait for the body
	srv.StartTLS()
	defer srv.Close()
	p, _, m := newPolicy(t, retry.Config{})
	client := &http.Client{Transport: p.RoundTripper(srv.Client().Transport)}
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("\x00\x00\x00\x00\x01x")) }()
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/grpc.testing.TestService/FullDuplexCall", pr)
	req.Header.Set("Content-Type", "application/grpc")
	resp, err := client.Do(req)
	require.NoError(t, err)
	readAll(t, resp)
	assert.Equal(t, "14", resp.Header.Get("Grpc-Status"))
	assert.Equal(t, 2, resp.ProtoMajor)
	assert.EqualValues(t, 1, up.hits.Load())
	assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
}

func TestRetryNonIdempotentResendsPOST(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	client, _, _ := mk(retry.Config{RetryNonIdempotent: true})
	resp, err := client.Post(srv.URL, "text/plain", onlyReader{strings.NewReader("again")})
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.Equal(t, []string{"again", "again"}, up.Bodies())
}

func TestBackoffNeverEndsPastDeadline(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	client, clk, m := mk(retry.Config{BaseDelay: time.Second, MaxDelay: 2 * time.Second})
	resp := getWithin(t, client, srv.URL, 200*time.Millisecond)
	assert.Equal(t, 503, resp.StatusCode, "a ≥500ms backoff cannot fit in 200ms: the last answer now")
	assert.Empty(t, clk.Sleeps())
	assert.Equal(t, map[string]int64{"exhausted": 1}, m.outcomes(t))
}
