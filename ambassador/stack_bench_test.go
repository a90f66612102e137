package ambassador_test

import (
	"context"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// noopBase answers every request at once without I/O, so the benchmarks
// measure the stack alone.
var noopBase = rtFunc(func(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
})

var quietLogs = ambassador.WithLogger(slog.New(slog.DiscardHandler))

func benchStack(b *testing.B, c ambassador.ServiceConfig, url string) {
	b.Helper()
	s, err := ambassador.NewStack(c, ambassador.WithBase(noopBase), quietLogs)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		resp, err := s.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
	}
}

func BenchmarkStackRoundTrip(b *testing.B) {
	eps := discovery.Config{Static: []string{"127.0.0.1:8081", "127.0.0.1:8082"}}
	b.Run("bare-base", func(b *testing.B) {
		req, _ := http.NewRequest(http.MethodGet, "http://users/x", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, _ := noopBase.RoundTrip(req)
			_ = resp.Body.Close()
		}
	})
	b.Run("passthrough", func(b *testing.B) {
		benchStack(b, ambassador.ServiceConfig{Name: "users", Discovery: eps}, "http://other/x")
	})
	b.Run("discovery-only", func(b *testing.B) {
		benchStack(b, ambassador.ServiceConfig{Name: "users", Discovery: eps}, "http://users/x")
	})
	b.Run("discovery-only-caller-deadline", func(b *testing.B) {
		s, err := ambassador.NewStack(ambassador.ServiceConfig{Name: "users", Discovery: eps}, ambassador.WithBase(noopBase), quietLogs)
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/x", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := s.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_ = resp.Body.Close()
		}
	})
	b.Run("full", func(b *testing.B) {
		benchStack(b, ambassador.ServiceConfig{
			Name: "users", Discovery: eps,
			Retry: &retry.Config{}, RateLimit: &ratelimit.Config{RPS: 1e9}, Breaker: &breaker.Config{},
		}, "http://users/x")
	})
}
