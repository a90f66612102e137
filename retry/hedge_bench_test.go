package retry_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/outbound-go/outbound/retry"
)

// BenchmarkRoundTripperHedged measures a hedged GET whose first attempt
// answers before the hedge delay: the cost of the hedging machinery (the
// attempt's goroutine, context and timer) when no hedge is sent.
func BenchmarkRoundTripperHedged(b *testing.B) {
	next := rtFunc(func(*http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: 200, Header: http.Header{}, Body: http.NoBody}, nil
	})
	p, err := retry.New(retry.Config{Hedge: retry.HedgeConfig{Delay: time.Second}})
	if err != nil {
		b.Fatal(err)
	}
	rt := p.RoundTripper(next)
	req, _ := http.NewRequest(http.MethodGet, "http://users/items", nil)
	b.ReportAllocs()
	for b.Loop() {
		resp, err := rt.RoundTrip(req)
		if err != nil || resp.StatusCode != 200 {
			b.Fatal(err)
		}
		_ = resp.Body.Close()
	}
}
