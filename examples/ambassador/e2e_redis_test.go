package main

import (
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/testserver"
)

// loadResult is what one process answered during a paced load.
type loadResult struct {
	ok, limited, other int
}

// loadWorkers is how many clients send to each listener at once, each
// paced: on a loaded machine one slow answer must not starve the load.
const loadWorkers = 4

// pacedLoad sends GETs to each of lis for d, one per every on average
// (loadWorkers goroutines per listener, each paced at loadWorkers × every),
// and returns each listener's answers and how long the load ran.
func pacedLoad(c *http.Client, lis []string, every, d time.Duration) ([]loadResult, time.Duration) {
	res := make([]loadResult, len(lis))
	var mu sync.Mutex
	start := time.Now()
	var wg sync.WaitGroup
	for i, addr := range lis {
		for range loadWorkers {
			wg.Go(func() {
				tick := time.NewTicker(loadWorkers * every)
				defer tick.Stop()
				for time.Since(start) < d {
					r := getOnce(c, "http://"+addr+"/")
					mu.Lock()
					res[i].ok += r.ok
					res[i].limited += r.limited
					res[i].other += r.other
					mu.Unlock()
					<-tick.C
				}
			})
		}
	}
	wg.Wait()
	return res, time.Since(start)
}

// getOnce sends one GET and sorts its answer.
func getOnce(c *http.Client, u string) loadResult {
	resp, err := c.Get(u)
	if err != nil {
		return loadResult{other: 1}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	switch {
	case resp.StatusCode == http.StatusOK:
		return loadResult{ok: 1}
	case resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("X-Outbound-Error") == "rate_limited":
		return loadResult{limited: 1}
	}
	return loadResult{other: 1}
}

func admittedOf(res []loadResult) (sum int, each []int) {
	for _, r := range res {
		sum += r.ok
		each = append(each, r.ok)
	}
	return sum, each
}

var storeErrorsRe = regexp.MustCompile(`(?m)^outbound_ratelimit_store_errors_total\{[^}]*service="api"[^}]*\} (\d+)`)

// storeErrors reads outbound.ratelimit.store_errors of service api from p's /metrics.
func storeErrors(t *testing.T, c *http.Client, p *proc) int {
	t.Helper()
	_, body := get(t, c, p.admin+"/metrics")
	m := storeErrorsRe.FindStringSubmatch(body)
	if m == nil {
		return 0
	}
	n, err := strconv.Atoi(m[1])
	require.NoError(t, err)
	return n
}

// TestRedisSharedRateLimit runs three ambassadors with one service config
// (rps 50, the default burst 50) sharing one redis-server: together they
// admit the one rate; each alone admits it too; with Redis killed each
// falls back to its own local bucket, and when Redis is back the limit is
// shared again.
func TestRedisSharedRateLimit(t *testing.T) {
	r := testserver.StartRedis(t)
	up := textUpstream(t, "ok")
	const rps, burst = 50.0, 50.0
	// timeout 1s, not the default 50ms: on a loaded 2-core machine a call
	// (the first dials and sends EVALSHA, then EVAL) may take hundreds of
	// ms, and a fallback to the local bucket would spoil the count.
	svc := fmt.Sprintf("ratelimit: {rps: %v, scope: global, redis: {address: %s, timeout: 1s}}", rps, r.Addr)
	var procs []*proc
	var lis []string
	for range 3 {
		p, l := serveOne(t, "api", hostOf(up.URL), svc, "")
		procs, lis = append(procs, p), append(lis, l)
	}
	c := newClient(t)
	const every = 5 * time.Millisecond // 200 requests/s to each process, 600/s in all

	// Together, on a fresh Redis: 50/s + the burst between the three.
	res, elapsed := pacedLoad(c, lis, every, 5*time.Second)
	total, each := admittedOf(res)
	want := rps*elapsed.Seconds() + burst
	t.Logf("shared: admitted %d %v in %v, want %.0f (%.1f%% off); answers %+v", total, each, elapsed, want, 100*(float64(total)-want)/want, res)
	assert.InEpsilon(t, want, float64(total), 0.05, "three processes admit one rate between them")
	for i, r := range res {
		assert.Zero(t, r.other, "process %d: answers other than 200 and 429", i)
		assert.Positive(t, r.ok, "process %d admitted nothing", i)
	}

	// Each alone: 50/s (the shared bucket is drained now: no burst).
	for i := range procs {
		res, elapsed := pacedLoad(c, lis[i:i+1], every, 1500*time.Millisecond)
		want := rps * elapsed.Seconds()
		t.Logf("alone %d: admitted %d in %v, want %.0f; answers %+v", i, res[0].ok, elapsed, want, res[0])
		assert.GreaterOrEqual(t, float64(res[0].ok), 0.75*want, "process %d alone admits its rate", i)
		assert.LessOrEqual(t, float64(res[0].ok), 1.1*want+5, "process %d alone: no more than the rate (and a lease left over)", i)
	}

	// Redis killed: requests keep flowing, each process at most at its local rate.
	r.Stop()
	res, elapsed = pacedLoad(c, lis, every, 2*time.Second)
	local := rps*elapsed.Seconds() + burst
	_, each = admittedOf(res)
	t.Logf("Redis down: admitted %v in %v, local bound %.0f each", each, elapsed, local)
	for i, r := range res {
		assert.Zero(t, r.other, "process %d", i)
		assert.Greater(t, float64(r.ok), 0.5*rps*elapsed.Seconds(), "process %d: requests keep flowing", i)
		assert.LessOrEqual(t, float64(r.ok), local+5, "process %d: no more than its local rate", i)
		assert.Positive(t, storeErrors(t, c, procs[i]), "process %d counts store_errors", i)
		assert.Equal(t, 1, strings.Count(procs[i].out.String(), "Redis unreachable"), "process %d logs the outage once", i)
	}

	// Redis back: every process returns to the shared limit.
	r.Restart()
	require.Eventually(t, func() bool {
		_, _ = pacedLoad(c, lis, every, 100*time.Millisecond)
		for _, p := range procs {
			if !strings.Contains(p.out.String(), "Redis answers again") {
				return false
			}
		}
		return true
	}, 10*time.Second, time.Millisecond)
	res, elapsed = pacedLoad(c, lis, every, 2*time.Second)
	total, each = admittedOf(res)
	bound := rps*elapsed.Seconds() + burst
	t.Logf("Redis back: admitted %d %v in %v; shared bound %.0f, three local buckets would admit %.0f", total, each, elapsed, bound, 3*rps*elapsed.Seconds())
	assert.LessOrEqual(t, float64(total), bound+10, "shared again")
	assert.GreaterOrEqual(t, float64(total), 0.6*rps*elapsed.Seconds())
}
