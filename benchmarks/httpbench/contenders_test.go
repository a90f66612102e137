package httpbench_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/failsafe-go/failsafe-go/failsafehttp"
	"github.com/failsafe-go/failsafe-go/ratelimiter"
	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"
	"golang.org/x/time/rate"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// serviceName is the logical host the discovery-based contenders are called
// with; discovery rewrites it to one of env.addrs.
const serviceName = "bench-svc"

// env is what a contender is built over.
type env struct {
	base  http.RoundTripper // the transport under the stack
	addrs []string          // 3 endpoint addresses of the same upstream; addrs[0] for host-addressed stacks
}

// stack is one built contender: the transport to call and the URL to call it with.
type stack struct {
	rt  http.RoundTripper
	url string
}

// contender describes one way of making a resilient call.
type contender struct {
	name string
	// retries tells whether the stack retries a 503: TestEachStackRetries503
	// requires it of these and requires the others to pass the 503 through.
	retries bool
	build   func(tb testing.TB, e env) stack
}

// The same retry shape for every contender that retries: at most 3 attempts,
// short backoff so the retry test is quick. The benchmarks never retry.
const (
	maxAttempts = 3
	baseDelay   = time.Millisecond
	maxDelay    = 10 * time.Millisecond
)

func retryConfig() retry.Config {
	return retry.Config{MaxAttempts: maxAttempts, BaseDelay: baseDelay, MaxDelay: maxDelay}
}

func hostURL(e env) string { return "http://" + e.addrs[0] + "/" }

const serviceURL = "http://" + serviceName + "/"

func fatalIf(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatalf("building contender: %v", err)
	}
}

func contenders() []contender {
	return []contender{
		{name: "bare", build: func(tb testing.TB, e env) stack {
			return stack{rt: e.base, url: hostURL(e)}
		}},
		{name: "outbound-retry", retries: true, build: func(tb testing.TB, e env) stack {
			p, err := retry.New(retryConfig())
			fatalIf(tb, err)
			return stack{rt: p.RoundTripper(e.base), url: hostURL(e)}
		}},
		{name: "outbound-ratelimit", build: func(tb testing.TB, e env) stack {
			l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
			fatalIf(tb, err)
			tb.Cleanup(func() { _ = l.Close() })
			return stack{rt: l.RoundTripper(e.base), url: hostURL(e)}
		}},
		{name: "outbound-discovery", build: func(tb testing.TB, e env) stack {
			s, err := discovery.NewService(serviceName, discovery.Static(e.addrs...), discovery.Config{})
			fatalIf(tb, err)
			tb.Cleanup(func() { _ = s.Close() })
			return stack{rt: s.RoundTripper(e.base), url: serviceURL}
		}},
		{name: "outbound-breaker", build: func(tb testing.TB, e env) stack {
			br, err := breaker.New(breaker.Config{})
			fatalIf(tb, err)
			tb.Cleanup(func() { _ = br.Close() })
			return stack{rt: br.RoundTripper(e.base), url: hostURL(e)}
		}},
		// The same three policies as failsafe-go and naive below (retry,
		// rate limiter, breaker; no discovery, no service timeout), composed
		// with ambassador.Chain: the like-for-like comparison with them.
		{name: "outbound-rrb", retries: true, build: func(tb testing.TB, e env) stack {
			p, err := retry.New(retryConfig())
			fatalIf(tb, err)
			l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
			fatalIf(tb, err)
			tb.Cleanup(func() { _ = l.Close() })
			br, err := breaker.New(breaker.Config{})
			fatalIf(tb, err)
			tb.Cleanup(func() { _ = br.Close() })
			rt := ambassador.Chain(e.base, p.RoundTripper, l.RoundTripper, br.RoundTripper)
			return stack{rt: rt, url: hostURL(e)}
		}},
		{name: "outbound-full", retries: true, build: func(tb testing.TB, e env) stack {
			return stack{rt: outboundFull(tb, e), url: serviceURL}
		}},
		{name: "failsafe-go", retries: true, build: buildFailsafe},
		{name: "go-retryablehttp", retries: true, build: buildRetryablehttp},
		{name: "naive", retries: true, build: buildNaive},
		{name: "naive-observed", retries: true, build: buildNaiveObserved},
	}
}

// buildFailsafe configures failsafe-go as its documentation shows for HTTP:
// failsafehttp's retry policy builder (retries 429 and most 5xx, honours
// Retry-After), a circuit breaker that counts 5xx responses and errors as
// failures, and a rate limiter, composed outermost-first with
// failsafehttp.NewRoundTripper.
func buildFailsafe(tb testing.TB, e env) stack {
	rp := failsafehttp.NewRetryPolicyBuilder().
		WithMaxAttempts(maxAttempts).
		WithBackoff(baseDelay, maxDelay).
		Build()
	cb := circuitbreaker.NewBuilder[*http.Response]().
		HandleIf(func(r *http.Response, err error) bool {
			return err != nil || (r != nil && r.StatusCode >= 500)
		}).
		WithFailureThreshold(5).
		WithDelay(30 * time.Second).
		Build()
	rl := ratelimiter.NewBursty[*http.Response](1_000_000_000, time.Second)
	return stack{rt: failsafehttp.NewRoundTripper(e.base, rp, cb, rl), url: hostURL(e)}
}

// buildRetryablehttp configures go-retryablehttp as its README shows:
// NewClient with RetryMax, used as an http.RoundTripper; the logger is off
// (its default logs every request to stderr).
func buildRetryablehttp(tb testing.TB, e env) stack {
	c := retryablehttp.NewClient()
	c.HTTPClient = &http.Client{Transport: e.base}
	c.RetryMax = maxAttempts - 1
	c.RetryWaitMin = baseDelay
	c.RetryWaitMax = maxDelay
	c.Logger = nil
	return stack{rt: &retryablehttp.RoundTripper{Client: c}, url: hostURL(e)}
}

// errNaiveLimited is what the naive stack returns when its limiter says no.
var errNaiveLimited = errors.New("naive: rate limited")

// naiveTransport is the stack users write by hand: a RoundTripper whose
// RoundTrip runs backoff.Retry over an operation that asks an x/time/rate
// limiter, then runs the call through a gobreaker circuit breaker that
// treats 5xx as failure.
type naiveTransport struct {
	next    http.RoundTripper
	limiter *rate.Limiter
	cb      *gobreaker.CircuitBreaker[*http.Response]
}

func buildNaive(tb testing.TB, e env) stack {
	return stack{rt: &naiveTransport{
		next:    e.base,
		limiter: rate.NewLimiter(rate.Limit(1e9), 1_000_000_000),
		cb: gobreaker.NewCircuitBreaker[*http.Response](gobreaker.Settings{
			Name:    "upstream",
			Timeout: 30 * time.Second,
		}),
	}, url: hostURL(e)}
}

func (t *naiveTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = baseDelay
	b.MaxInterval = maxDelay
	var resp *http.Response
	op := func() error {
		if !t.limiter.Allow() {
			return backoff.Permanent(errNaiveLimited)
		}
		r, err := t.cb.Execute(func() (*http.Response, error) {
			r, err := t.next.RoundTrip(req)
			if err != nil {
				return nil, err
			}
			if r.StatusCode >= 500 {
				_, _ = io.Copy(io.Discard, r.Body)
				_ = r.Body.Close()
				return nil, fmt.Errorf("upstream status %d", r.StatusCode)
			}
			return r, nil
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			return backoff.Permanent(err)
		}
		resp = r
		return err
	}
	if err := backoff.Retry(op, backoff.WithContext(backoff.WithMaxRetries(b, maxAttempts-1), req.Context())); err != nil {
		return nil, err
	}
	return resp, nil
}

// noopTransport answers every request at once with a fresh canned 200.
type noopTransport struct{}

func (noopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body != nil {
		_ = req.Body.Close()
	}
	return &http.Response{
		Status:     "200 OK",
		StatusCode: http.StatusOK,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Body:       http.NoBody,
		Request:    req,
	}, nil
}

// noopEnv is the env over noopTransport; the addresses are never dialed.
func noopEnv() env {
	return env{base: noopTransport{}, addrs: []string{"127.0.0.1:18081", "127.0.0.1:18082", "127.0.0.1:18083"}}
}

// loopbackTransport is a keep-alive transport sized for the parallel benchmarks.
func loopbackTransport(tb testing.TB) *http.Transport {
	tr := &http.Transport{
		Proxy:               nil,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
	}
	tb.Cleanup(tr.CloseIdleConnections)
	return tr
}

// startUpstream serves h on three loopback listeners of one http.Server, so
// discovery has three distinct endpoints that are all the same upstream.
func startUpstream(tb testing.TB, h http.Handler) []string {
	tb.Helper()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	addrs := make([]string, 3)
	done := make(chan struct{}, 3)
	for i := range addrs {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("listen: %v", err)
		}
		addrs[i] = ln.Addr().String()
		go func() {
			_ = srv.Serve(ln)
			done <- struct{}{}
		}()
	}
	tb.Cleanup(func() {
		_ = srv.Close()
		for range addrs {
			<-done
		}
	})
	return addrs
}

// okBody is what the loopback upstream answers: 100 bytes.
var okBody = []byte("0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789")

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write(okBody)
	})
}

// call sends one GET through rt and drains and closes the response; it
// returns the status code.
func call(rt http.RoundTripper, req *http.Request) (int, error) {
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}
