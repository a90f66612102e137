package ratelimit_test

import (
	"context"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/internal/testserver"
	"github.com/outbound-go/outbound/ratelimit"
)

// sharedLimiter returns a Limiter of c shared on the Redis at addr, closed
// when the test ends.
func sharedLimiter(t *testing.T, c ratelimit.Config, addr string, opts ...ratelimit.Option) *ratelimit.Limiter {
	t.Helper()
	c.Redis.Address = addr
	if c.Redis.Timeout == 0 {
		// Generous: a first call (dial, EVALSHA, EVAL) under -race on a
		// loaded machine may take longer than the default 50ms, and a test
		// of the shared limit must not fall back to the local bucket.
		c.Redis.Timeout = 2 * time.Second
	}
	lim, err := ratelimit.New(c, opts...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, lim.Close()) })
	return lim
}

// drain calls Acquire until the first refusal (at most limit times) and
// returns how many were admitted.
func drain(t *testing.T, lim *ratelimit.Limiter, key string, limit int) int {
	t.Helper()
	for n := range limit {
		if err := lim.Acquire(context.Background(), key); err != nil {
			require.ErrorIs(t, err, ratelimit.ErrLimited)
			return n
		}
	}
	t.Fatalf("still admitting after %d requests", limit)
	return 0
}

// paced sends one request per every through each limiter (each on its own
// goroutine) for d and returns how many each admitted and how long the
// load ran.
func paced(lims []*ratelimit.Limiter, key string, every, d time.Duration) ([]int, time.Duration) {
	counts := make([]int, len(lims))
	start := time.Now()
	var wg sync.WaitGroup
	for i, lim := range lims {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(every)
			defer tick.Stop()
			for time.Since(start) < d {
				if lim.Acquire(context.Background(), key) == nil {
					counts[i]++
				}
				<-tick.C
			}
		}()
	}
	wg.Wait()
	return counts, time.Since(start)
}

func sum(v []int) int {
	n := 0
	for _, x := range v {
		n += x
	}
	return n
}

// redisCalls returns how many scripts (EVALSHA and EVAL) the server ran.
func redisCalls(t testing.TB, addr string) int {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	info, err := c.Info(context.Background(), "commandstats").Result()
	require.NoError(t, err)
	n := 0
	for line := range strings.Lines(info) {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || (name != "cmdstat_evalsha" && name != "cmdstat_eval") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		v, err := strconv.Atoi(calls)
		require.NoError(t, err, line)
		n += v
	}
	return n
}

func TestRedisSharedBurst(t *testing.T) {
	r := testserver.StartRedis(t)
	c := ratelimit.Config{RPS: 1, Burst: 30, Scope: ratelimit.ScopeGlobal, Redis: ratelimit.RedisConfig{Key: "burst"}}
	lims := []*ratelimit.Limiter{sharedLimiter(t, c, r.Addr), sharedLimiter(t, c, r.Addr), sharedLimiter(t, c, r.Addr)}
	admitted := make([]int, len(lims))
	var wg sync.WaitGroup
	for i, lim := range lims {
		wg.Go(func() { admitted[i] = drain(t, lim, "x", 1000) })
	}
	wg.Wait()
	// Three local buckets would admit 90; the shared one 30, plus what it
	// refills (1/s) while the test runs.
	assert.GreaterOrEqual(t, sum(admitted), 30, "%v", admitted)
	assert.LessOrEqual(t, sum(admitted), 33, "%v", admitted)
}

func TestRedisSharedRate(t *testing.T) {
	r := testserver.StartRedis(t)
	c := ratelimit.Config{RPS: 40, Burst: 10, Scope: ratelimit.ScopeGlobal, Redis: ratelimit.RedisConfig{Key: "rate"}}
	for _, n := range []int{1, 3} {
		t.Run(strconv.Itoa(n)+" limiters", func(t *testing.T) {
			c.Redis.Key = "rate-" + strconv.Itoa(n)
			var lims []*ratelimit.Limiter
			for range n {
				lims = append(lims, sharedLimiter(t, c, r.Addr))
			}
			before := redisCalls(t, r.Addr)
			counts, elapsed := paced(lims, "x", 4*time.Millisecond, 1500*time.Millisecond)
			calls := redisCalls(t, r.Addr) - before - 1 // the INFO itself is not a script; keep the arithmetic honest
			want := c.RPS*elapsed.Seconds() + float64(c.Burst)
			t.Logf("%d limiters admitted %v = %d in %v (want ≈ %.0f); %d Redis calls", n, counts, sum(counts), elapsed, want, calls+1)
			assert.InEpsilon(t, want, float64(sum(counts)), 0.2, "admitted %v", counts)
			if n > 1 {
				for i, k := range counts {
					assert.Positive(t, k, "limiter %d admitted nothing", i)
				}
			}
		})
	}
}

func TestRedisServerClock(t *testing.T) {
	r := testserver.StartRedis(t)
	c := ratelimit.Config{RPS: 1, Burst: 5, Redis: ratelimit.RedisConfig{Key: "clock"}}
	now := newFakeClock()
	ahead := newFakeClock()
	ahead.Advance(time.Hour) // a process whose clock is an hour ahead
	a := sharedLimiter(t, c, r.Addr, now.Option())
	b := sharedLimiter(t, c, r.Addr, ahead.Option())
	got := drain(t, a, "api", 100)
	// With the processes' clocks in the bucket, b's hour would refill it.
	got += drain(t, b, "api", 100)
	got += drain(t, a, "api", 100)
	assert.GreaterOrEqual(t, got, 5)
	assert.LessOrEqual(t, got, 6, "the bucket refills by the Redis server's clock, 1/s")
}

func TestRedisScopeHost(t *testing.T) {
	r := testserver.StartRedis(t)
	c := ratelimit.Config{RPS: 0.01, Burst: 3, MaxKeys: 2, Redis: ratelimit.RedisConfig{Key: "hosts"}}
	a := sharedLimiter(t, c, r.Addr)
	b := sharedLimiter(t, c, r.Addr)
	assert.Equal(t, 3, drain(t, a, "users:80", 10))
	assert.Equal(t, 0, drain(t, b, "users:80", 10), "users:80 is drained for both")
	assert.Equal(t, 3, drain(t, b, "pay:80", 10), "pay:80 has a bucket of its own")
	for _, k := range []string{"hosts:users:80", "hosts:pay:80"} {
		v, err := r.Do("EXISTS", k)
		require.NoError(t, err)
		assert.Equal(t, "1", v, "key %s", k)
	}
	_ = drain(t, a, "third:80", 10)
	assert.LessOrEqual(t, a.Len(), 2, "bounded by max_keys like local buckets")
}

func TestRedisWaiting(t *testing.T) {
	r := testserver.StartRedis(t)
	c := ratelimit.Config{RPS: 10, Burst: 1, MaxWait: 500 * time.Millisecond, Scope: ratelimit.ScopeGlobal,
		Redis: ratelimit.RedisConfig{Key: "wait"}}
	clk := newFakeClock()
	a := sharedLimiter(t, c, r.Addr)
	b := sharedLimiter(t, c, r.Addr, clk.Option())
	require.NoError(t, a.Acquire(context.Background(), "x"))
	require.NoError(t, b.Acquire(context.Background(), "x"), "b waits for the next shared token")
	sleeps := clk.Sleeps()
	require.Len(t, sleeps, 1)
	assert.Greater(t, sleeps[0], time.Duration(0))
	assert.LessOrEqual(t, sleeps[0], 100*time.Millisecond, "one token every 100 ms")

	// The bucket now owes b's token: the next one is ~100 ms and more away,
	// which a deadline of 20 ms cannot wait for.
	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(20*time.Millisecond))
	defer cancel()
	err := b.Acquire(ctx, "x")
	var le *ratelimit.LimitedError
	require.ErrorAs(t, err, &le)
	assert.Greater(t, le.RetryAfter, 20*time.Millisecond)
	assert.Len(t, clk.Sleeps(), 1, "refused without sleeping")
}

// storeErrors returns outbound.ratelimit.store_errors for service.
func storeErrors(t *testing.T, reader *sdkmetric.ManualReader, service string) int64 {
	m, ok := collect(t, reader)["outbound.ratelimit.store_errors"]
	if !ok {
		return 0
	}
	sum, ok := m.Data.(metricdata.Sum[int64])
	require.True(t, ok, "store_errors is an int64 counter")
	var n int64
	for _, dp := range sum.DataPoints {
		v, _ := dp.Attributes.Value("service")
		assert.Equal(t, service, v.AsString())
		n += dp.Value
	}
	return n
}

func TestRedisOutageFailsOpenAndRecovers(t *testing.T) {
	r := testserver.StartRedis(t)
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logs testkit.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	c := ratelimit.Config{RPS: 20, Burst: 5, Scope: ratelimit.ScopeGlobal}
	a := sharedLimiter(t, c, r.Addr, ratelimit.WithService("users"), ratelimit.WithLogger(logger), ratelimit.WithMeterProvider(mp))
	b := sharedLimiter(t, c, r.Addr, ratelimit.WithService("users"))
	_, _ = paced([]*ratelimit.Limiter{a}, "x", 2*time.Millisecond, 200*time.Millisecond)
	assert.Zero(t, storeErrors(t, reader, "users"))

	r.Stop()
	counts, elapsed := paced([]*ratelimit.Limiter{a}, "x", 2*time.Millisecond, 1500*time.Millisecond)
	local := c.RPS*elapsed.Seconds() + float64(c.Burst)
	t.Logf("Redis down: admitted %d in %v (local bound %.0f)", counts[0], elapsed, local)
	assert.Greater(t, float64(counts[0]), 0.6*c.RPS*elapsed.Seconds(), "requests keep flowing")
	assert.LessOrEqual(t, float64(counts[0]), local+2, "at no more than the local rate")
	errs := storeErrors(t, reader, "users")
	assert.GreaterOrEqual(t, errs, int64(2), "a probe each second fails too")
	assert.LessOrEqual(t, errs, int64(4), "probed about once a second, not per request")
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "one log line per outage:\n%s", logs.String())

	r.Restart()
	require.Eventually(t, func() bool {
		_ = a.Acquire(context.Background(), "x")
		return strings.Contains(logs.String(), "answers again")
	}, 5*time.Second, 10*time.Millisecond)
	// Shared again: once a has drained the shared bucket (the restarted
	// Redis had lost it), b finds it empty too.
	drain(t, a, "x", 1000)
	err := b.Acquire(context.Background(), "x")
	assert.ErrorIs(t, err, ratelimit.ErrLimited, "b shares a's bucket again")
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"), "no new outage")
}

func TestRedisTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var accepted atomic.Int64
	var conns sync.WaitGroup
	done := make(chan struct{})
	go func() { // accepts, reads, never answers
		for {
			conn, err := ln.Accept()
			if err != nil {
				close(done)
				return
			}
			accepted.Add(1)
			conns.Go(func() {
				buf := make([]byte, 512)
				for {
					if _, err := conn.Read(buf); err != nil {
						_ = conn.Close()
						return
					}
				}
			})
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		conns.Wait()
	})
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() { _ = mp.Shutdown(context.Background()) })
	var logs testkit.SyncBuffer
	lim := sharedLimiter(t, ratelimit.Config{RPS: 100, Redis: ratelimit.RedisConfig{Timeout: 30 * time.Millisecond}}, ln.Addr().String(),
		ratelimit.WithService("users"), ratelimit.WithMeterProvider(mp), ratelimit.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, lim.Acquire(ctx, "users"), "a silent Redis fails open once the timeout passes")
	require.NoError(t, ctx.Err(), "bounded by redis.timeout, not by the request's deadline")
	for range 20 {
		require.NoError(t, lim.Acquire(ctx, "users"))
	}
	assert.Equal(t, int64(1), storeErrors(t, reader, "users"), "later requests do not ask the silent Redis again")
	assert.Equal(t, int64(1), accepted.Load())
	assert.Contains(t, logs.String(), "timeout=30ms")
	assert.Equal(t, 1, strings.Count(logs.String(), "level=WARN"))
}

func TestRedisCloseClosesClient(t *testing.T) {
	r := testserver.StartRedis(t)
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1, Redis: ratelimit.RedisConfig{Address: r.Addr}})
	require.NoError(t, err)
	require.NoError(t, lim.Acquire(context.Background(), "a"))
	watcher := redis.NewClient(&redis.Options{Addr: r.Addr, Protocol: 2, DisableIdentity: true})
	defer watcher.Close()
	clients := func() int {
		list, err := watcher.ClientList(context.Background()).Result()
		require.NoError(t, err)
		return strings.Count(list, "\n")
	}
	require.Equal(t, 2, clients(), "the limiter's connection and the watcher's")
	require.NoError(t, lim.Close())
	require.NoError(t, lim.Close(), "twice is fine")
	require.Eventually(t, func() bool { return clients() == 1 }, 5*time.Second, 10*time.Millisecond)
	err = lim.Acquire(context.Background(), "b")
	assert.NoError(t, err, "usable after Close, on its local buckets")
	assert.Equal(t, 1, clients(), "without reconnecting")
}

// Snapshot of a limiter shared on Redis shows, while Redis answers, the
// tokens this process holds on lease (a lease is a quarter of the burst,
// at most a tenth of a second of the rate); once Redis is down it shows
// the local bucket the limiter falls back to.
func TestRedisSnapshotShowsLeasedTokens(t *testing.T) {
	r := testserver.StartRedis(t)
	lim := sharedLimiter(t, ratelimit.Config{RPS: 100, Burst: 40, Scope: ratelimit.ScopeGlobal}, r.Addr)
	require.NoError(t, lim.Acquire(context.Background(), "x"))
	snap := lim.Snapshot()
	require.Len(t, snap, 1)
	assert.Equal(t, 9.0, snap[0].Tokens, "a lease of 10, one spent")

	r.Stop()
	require.NoError(t, lim.Acquire(context.Background(), "x"), "9 leased tokens left: Redis is not asked")
	assert.Equal(t, 8.0, lim.Snapshot()[0].Tokens)
	drain(t, lim, "x", 100) // spends the lease, then asks Redis, fails and falls back to the local bucket
	snap = lim.Snapshot()
	// Drained and refilling since: a fraction of a token, which no count
	// of leased tokens is.
	assert.Greater(t, snap[0].Tokens, 0.0, "the local bucket")
	assert.Less(t, snap[0].Tokens, 1.0, "the local bucket, drained")
}
