package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

func TestClassify(t *testing.T) {
	dialErr := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	readErr := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	for _, tc := range []struct {
		err    error
		code   int
		reason string
		after  time.Duration
	}{
		{fmt.Errorf("x: %w", &ratelimit.LimitedError{Key: "h", RetryAfter: 1500 * time.Millisecond}), 429, ReasonRateLimited, 1500 * time.Millisecond},
		{ratelimit.ErrLimited, 429, ReasonRateLimited, time.Second},
		{fmt.Errorf("ep: %w", breaker.ErrOpen), 503, ReasonCircuitOpen, 0},
		{fmt.Errorf("svc: %w", discovery.ErrNoEndpoints), 503, ReasonNoEndpoints, 0},
		{errors.Join(errors.New("last"), retry.ErrBudgetExhausted), 503, ReasonRetryBudgetExhausted, 0},
		{fmt.Errorf("attempt: %w", context.DeadlineExceeded), 504, ReasonUpstreamTimeout, 0},
		{dialErr, 502, ReasonUpstreamConnectFailure, 0},
		{readErr, 502, ReasonUpstreamReset, 0},
		{io.ErrUnexpectedEOF, 502, ReasonUpstreamReset, 0},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			code, reason, after := classify(tc.err)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.reason, reason)
			assert.Equal(t, tc.after, after)
		})
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 1, time.Millisecond: 1, time.Second: 1, 1001 * time.Millisecond: 2, 30 * time.Second: 30} {
		assert.Equal(t, want, retryAfterSeconds(d), d.String())
	}
}

func TestParseGRPCTimeout(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"100m": 100 * time.Millisecond, "1S": time.Second, "2M": 2 * time.Minute, "1H": time.Hour,
		"5u": 5 * time.Microsecond, "7n": 7, "99999999m": 99999999 * time.Millisecond,
	} {
		got, ok := parseGRPCTimeout(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "m", "10", "10x", "-1m", "123456789m", "1.5S"} {
		_, ok := parseGRPCTimeout(in)
		assert.False(t, ok, in)
	}
}

func FuzzParseGRPCTimeout(f *testing.F) {
	for _, s := range []string{"100m", "1S", "", "x", "99999999H", "-1m"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := parseGRPCTimeout(s)
		if ok && d < 0 {
			t.Fatalf("%q: negative %v", s, d)
		}
	})
}

func TestStripPort(t *testing.T) {
	for in, want := range map[string]string{
		"users": "users", "users:80": "users", "[::1]:80": "::1", "[::1]": "::1", "::1": "::1", "": "", "[bad": "[bad",
	} {
		assert.Equal(t, want, stripPort(in), in)
	}
}

func FuzzRequestHost(f *testing.F) {
	for _, s := range []string{"users.internal", "users:8080", "[::1]:1", "[", ":", "a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		got := stripPort(host)
		if len(got) > len(host) {
			t.Fatalf("%q grew to %q", host, got)
		}
		if strings.Count(host, ":") == 1 && !strings.HasPrefix(host, "[") && strings.Contains(got, ":") {
			t.Fatalf("%q kept its port: %q", host, got)
		}
	})
}

type okTransport struct{}

func (okTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_ = r.Body.Close()
	}
	return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody, ContentLength: 0, Request: r, ProtoMajor: 1, ProtoMinor: 1}, nil
}

// nopWriter is a ResponseWriter that keeps nothing.
type nopWriter struct{ h http.Header }

func (w *nopWriter) Header() http.Header         { return w.h }
func (w *nopWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w *nopWriter) WriteHeader(int)             {}
func (w *nopWriter) Flush()                      {}

// BenchmarkHandler measures the ambassador's own cost per request — route
// match, bulkhead, attempt record, ReverseProxy, access log (disabled but
// in "accesslog", a text line to io.Discard) — over a transport that
// answers at once.
func BenchmarkHandler(b *testing.B) {
	for _, name := range []string{"service", "routes", "bulkhead", "accesslog"} {
		b.Run(name, func(b *testing.B) {
			sc := ambassador.ServiceConfig{Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}}}
			l := ListenerConfig{Address: "127.0.0.1:0", Service: "a"}
			switch name {
			case "routes":
				l = ListenerConfig{Address: "127.0.0.1:0", Routes: []RouteConfig{
					{Host: "other.internal", Service: "a"}, {PathPrefix: "/nope/", Service: "a"}, {Host: "users.internal", PathPrefix: "/api/", Service: "a"},
				}}
			case "bulkhead":
				sc.MaxConcurrentRequests = 1000
			}
			level := slog.LevelError
			if name == "accesslog" {
				level = slog.LevelInfo
			}
			s, err := NewServer(&Config{Listeners: []ListenerConfig{l}, Services: map[string]ambassador.ServiceConfig{"a": sc}},
				WithLogger(slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: level}))),
				WithStackOptions(ambassador.WithBase(okTransport{})))
			require.NoError(b, err)
			defer s.Close()
			h := &listenerHandler{s: s}
			req := httptest.NewRequest(http.MethodGet, "http://users.internal/api/x", nil)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				w := &nopWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					h.ServeHTTP(w, req)
				}
			})
		})
	}
}
