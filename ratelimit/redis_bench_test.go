package ratelimit_test

import (
	"context"
	"testing"
	"time"

	"github.com/outbound-go/outbound/internal/testserver"
	"github.com/outbound-go/outbound/ratelimit"
)

// benchLimiter returns a Limiter of c, shared on the Redis at addr when
// addr is not "", and closes it when the benchmark ends.
func benchLimiter(b *testing.B, c ratelimit.Config, addr string) *ratelimit.Limiter {
	b.Helper()
	c.Redis.Address = addr
	if addr != "" {
		c.Redis.Timeout = time.Second // a benchmark measures the shared path, not the fallback
	}
	lim, err := ratelimit.New(c)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = lim.Close() })
	return lim
}

// BenchmarkShared measures Acquire back to back, local and shared on a real
// redis-server: "allowed" with a rate no test reaches (the shared limiter
// spends leased tokens), "rejected" with an empty bucket (the shared
// limiter refuses locally until its next lease is due). redis-calls/op is
// the number of scripts the server ran per Acquire.
func BenchmarkShared(b *testing.B) {
	r := testserver.StartRedis(b)
	for _, tc := range []struct {
		name string
		cfg  ratelimit.Config
		ok   bool
	}{
		{"allowed", ratelimit.Config{RPS: 1e9, Burst: 1e9, Scope: ratelimit.ScopeGlobal}, true},
		{"rejected", ratelimit.Config{RPS: 1e-3, Burst: 1, Scope: ratelimit.ScopeGlobal}, false},
	} {
		for _, store := range []string{"local", "redis"} {
			b.Run(tc.name+"/"+store, func(b *testing.B) {
				addr := ""
				if store == "redis" {
					addr = r.Addr
					tc.cfg.Redis.Key = b.Name()
				}
				lim := benchLimiter(b, tc.cfg, addr)
				ctx := context.Background()
				_ = lim.Acquire(ctx, "x")
				before := redisCalls(b, r.Addr)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					if err := lim.Acquire(ctx, "x"); (err == nil) != tc.ok {
						b.Fatalf("Acquire: %v", err)
					}
				}
				b.StopTimer()
				b.ReportMetric(float64(redisCalls(b, r.Addr)-before)/float64(b.N), "redis-calls/op")
			})
		}
	}
}

// BenchmarkShared1000rps offers 1,000 requests a second (one every
// millisecond, paced by the wall clock) to a Limiter of rps 1000, local and
// shared on a real redis-server. ns/op is the pacing (about 1 ms);
// acquire-ns/op is the time spent in Acquire, redis-calls/op the scripts
// the server ran per request and admitted/op the share admitted. Run it
// with a fixed count: -benchtime 3000x.
func BenchmarkShared1000rps(b *testing.B) {
	r := testserver.StartRedis(b)
	for _, store := range []string{"local", "redis"} {
		b.Run(store, func(b *testing.B) {
			addr := ""
			cfg := ratelimit.Config{RPS: 1000, Scope: ratelimit.ScopeGlobal}
			if store == "redis" {
				addr = r.Addr
				cfg.Redis.Key = b.Name()
			}
			lim := benchLimiter(b, cfg, addr)
			ctx := context.Background()
			before := redisCalls(b, r.Addr)
			var spent time.Duration
			admitted := 0
			b.ReportAllocs()
			start := time.Now()
			for i := 0; b.Loop(); i++ {
				if d := time.Until(start.Add(time.Duration(i) * time.Millisecond)); d > 0 {
					time.Sleep(d) // pacing the offered load, not waiting for state
				}
				t0 := time.Now()
				err := lim.Acquire(ctx, "x")
				spent += time.Since(t0)
				if err == nil {
					admitted++
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N), "acquire-ns/op")
			b.ReportMetric(float64(redisCalls(b, r.Addr)-before)/float64(b.N), "redis-calls/op")
			b.ReportMetric(float64(admitted)/float64(b.N), "admitted/op")
		})
	}
}
