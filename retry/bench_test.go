package retry_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/retry"
)

// BenchmarkRoundTripper measures the success path: a GET without a body
// through the policy to a no-op transport answering a canned 200.
func BenchmarkRoundTripper(b *testing.B) {
	canned := &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}
	next := rtFunc(func(*http.Request) (*http.Response, error) { return canned, nil })
	bare := func(b *testing.B, rt http.RoundTripper) {
		req, _ := http.NewRequest(http.MethodGet, "http://users/items", nil)
		b.ReportAllocs()
		b.ResetTimer()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err)
			}
		}
	}
	b.Run("bare", func(b *testing.B) { bare(b, next) })
	b.Run("default", func(b *testing.B) {
		p, err := retry.New(retry.Config{})
		if err != nil {
			b.Fatal(err)
		}
		bare(b, p.RoundTripper(next))
	})
	b.Run("budget-disabled", func(b *testing.B) {
		p, err := retry.New(retry.Config{Budget: retry.BudgetConfig{Disabled: true}})
		if err != nil {
			b.Fatal(err)
		}
		bare(b, p.RoundTripper(next))
	})
	// A caller that brings its own attempt record (the ambassador does, to
	// log attempts) saves the record's allocation.
	b.Run("record-in-context", func(b *testing.B) {
		p, err := retry.New(retry.Config{})
		if err != nil {
			b.Fatal(err)
		}
		rt := p.RoundTripper(next)
		ctx := attempt.WithRecord(context.Background(), attempt.NewRecord())
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/items", nil)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := rt.RoundTrip(req); err != nil {
				b.Fatal(err)
			}
		}
	})
	// With a per-try timeout the attempt gets a cancellable context and a
	// timer, and the body is wrapped so closing it releases the context.
	b.Run("per-try-timeout", func(b *testing.B) {
		p, err := retry.New(retry.Config{PerTryTimeout: 1e9})
		if err != nil {
			b.Fatal(err)
		}
		fresh := rtFunc(func(*http.Request) (*http.Response, error) {
			return &http.Response{StatusCode: 200, Header: canned.Header, Body: http.NoBody}, nil
		})
		rt := p.RoundTripper(fresh)
		req, _ := http.NewRequest(http.MethodGet, "http://users/items", nil)
		b.ReportAllocs()
		for b.Loop() {
			resp, err := rt.RoundTrip(req)
			if err != nil {
				b.Fatal(err)
			}
			_ = resp.Body.Close()
		}
	})
}

// BenchmarkRoundTripperBody measures a PUT whose body has no GetBody, so
// it is recorded while sent.
func BenchmarkRoundTripperBody(b *testing.B) {
	next := rtFunc(func(r *http.Request) (*http.Response, error) {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
		return &http.Response{StatusCode: 200, Body: http.NoBody}, nil
	})
	p, err := retry.New(retry.Config{})
	if err != nil {
		b.Fatal(err)
	}
	rt := p.RoundTripper(next)
	payload := strings.Repeat("x", 1024)
	b.ReportAllocs()
	for b.Loop() {
		req, _ := http.NewRequest(http.MethodPut, "http://users/items", onlyReader{strings.NewReader(payload)})
		if _, err := rt.RoundTrip(req); err != nil {
			b.Fatal(err)
		}
	}
}
