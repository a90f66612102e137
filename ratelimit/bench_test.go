package ratelimit_test

import (
	"context"
	"net/http"
	"runtime"
	"strconv"
	"testing"

	"github.com/outbound-go/outbound/ratelimit"
)

// hostKeys returns n distinct host:port keys.
func hostKeys(n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = "host-" + strconv.Itoa(i) + ".example:443"
	}
	return keys
}

// populate builds a Limiter holding one bucket per key and returns it with
// the heap it grew by, per key (reported after the loop: ResetTimer drops
// metrics reported before it).
func populate(b *testing.B, c ratelimit.Config, keys []string) (*ratelimit.Limiter, float64) {
	b.Helper()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	lim, err := ratelimit.New(c)
	if err != nil {
		b.Fatal(err)
	}
	for _, k := range keys {
		_ = lim.Acquire(context.Background(), k)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if n := lim.Len(); n != len(keys) {
		b.Fatalf("limiter holds %d keys, want %d", n, len(keys))
	}
	return lim, float64(after.HeapAlloc-before.HeapAlloc) / float64(len(keys))
}

var benchKeyCounts = []int{1, 100_000}

// reportPerKey reports the heap per key where it means something: with one
// key the figure is the fixed cost of the shard maps, not a key's.
func reportPerKey(b *testing.B, n int, perKey float64) {
	if n >= 1000 {
		b.ReportMetric(perKey, "B/key")
	}
}

// BenchmarkAllowed measures the path of a request that finds a token in an
// existing bucket.
func BenchmarkAllowed(b *testing.B) {
	for _, n := range benchKeyCounts {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			keys := hostKeys(n)
			lim, perKey := populate(b, ratelimit.Config{RPS: 1e9, Burst: 1e9, MaxKeys: 2 * n}, keys)
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := lim.Acquire(ctx, keys[i%n]); err != nil {
					b.Fatal(err)
				}
			}
			reportPerKey(b, n, perKey)
		})
	}
}

// BenchmarkRejected measures the refusal of a request whose bucket is empty
// (it allocates the *LimitedError it returns).
func BenchmarkRejected(b *testing.B) {
	for _, n := range benchKeyCounts {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			keys := hostKeys(n)
			lim, perKey := populate(b, ratelimit.Config{RPS: 1e-3, Burst: 1, MaxKeys: 2 * n}, keys) // each bucket now empty
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := lim.Acquire(ctx, keys[i%n]); err == nil {
					b.Fatal("allowed")
				}
			}
			reportPerKey(b, n, perKey)
		})
	}
}

// BenchmarkAllowedParallel measures contention on one and many keys.
func BenchmarkAllowedParallel(b *testing.B) {
	for _, n := range benchKeyCounts {
		b.Run("keys="+strconv.Itoa(n), func(b *testing.B) {
			keys := hostKeys(n)
			lim, perKey := populate(b, ratelimit.Config{RPS: 1e9, Burst: 1e9, MaxKeys: 2 * n}, keys)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for i := 0; pb.Next(); i++ {
					_ = lim.Acquire(ctx, keys[i%n])
				}
			})
			reportPerKey(b, n, perKey)
		})
	}
}

// BenchmarkRoundTripper measures the HTTP wrapper over a no-op transport.
func BenchmarkRoundTripper(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
	}{
		{"allowed", ratelimit.Config{RPS: 1e9, Burst: 1e9}},
		{"rejected", ratelimit.Config{RPS: 1e-3, Burst: 1}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			lim, err := ratelimit.New(tc.cfg)
			if err != nil {
				b.Fatal(err)
			}
			resp := &http.Response{StatusCode: http.StatusOK, Body: http.NoBody}
			rt := lim.RoundTripper(roundTripperFunc(func(*http.Request) (*http.Response, error) { return resp, nil }))
			req, err := http.NewRequest(http.MethodGet, "http://users.internal/v1/users/42", nil)
			if err != nil {
				b.Fatal(err)
			}
			_, _ = rt.RoundTrip(req)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_, _ = rt.RoundTrip(req)
			}
		})
	}
}
