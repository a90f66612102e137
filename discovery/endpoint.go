package discovery

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"
)

// Peak-EWMA tuning. The cost of an endpoint is its peak-sensitive,
// exponentially weighted moving average of response latency: a sample above
// the current cost replaces it at once (peak), a sample below pulls it down
// with weight 1-exp(-Δt/ewmaDecay), and the cost read at pick time decays
// toward zero with the same time constant, so an endpoint that has been left
// alone is eventually probed again.
//
// Failures count as slow twice over: a failed attempt is recorded as at least
// failurePenalty of latency, and it adds 1 to the endpoint's recent-failure
// count (halved by every success, decaying with ewmaDecay), which multiplies
// the cost by 1 + failureWeight × count. The multiplier keeps a fast-failing
// endpoint behind a healthy one even while the healthy one has a latency
// spike of its own.
const (
	// ewmaDecay is the time constant of the moving averages.
	ewmaDecay = 500 * time.Millisecond
	// failurePenalty is the latency a failed attempt (transport error, 5xx,
	// 429, or a gRPC server-side failure) is recorded with when it came back
	// faster: a fast failure counts as slow, never as fast.
	failurePenalty = time.Second
	// failureWeight scales the recent-failure multiplier.
	failureWeight = 10
	// newPenalty is the cost of an endpoint that has not answered yet while
	// it already has a request in flight: it gets one request at a time until
	// its first answer gives it a real cost.
	newPenalty = time.Second
)

// monoStart anchors monoNow; only differences of monoNow are used.
var monoStart = time.Now()

// monoNow returns monotonic nanoseconds, never 0.
func monoNow() int64 { return int64(time.Since(monoStart)) + 1 }

// sentAt returns monoNow for an attempt about to be sent under ctx: the
// real-clock reading the layer keeping the attempt record took just before
// sending it (see attempt.Now), when there is one, else a fresh reading. A
// clock read costs up to a few hundred nanoseconds on some virtual machines.
func sentAt(ctx context.Context) int64 {
	if t, ok := attempt.Now(ctx); ok {
		if d := int64(t.Sub(monoStart)); d >= 0 {
			return d + 1
		}
	}
	return monoNow()
}

// endpoint is the live state of one address. It outlives snapshots: an
// address that stays in the set keeps its object, so its load and latency
// history survive endpoint-set updates. Every field is safe for concurrent use.
type endpoint struct {
	addr string
	svc  *Service // nil for an address that came from a foreign resolver

	inflight  atomic.Int64
	unhealthy atomic.Bool // set by a failed active health check

	mu    sync.Mutex    // serialises observe
	cost  atomic.Uint64 // float64 bits: peak-EWMA latency in ns
	fails atomic.Uint64 // float64 bits: recent-failure count, decaying
	stamp atomic.Int64  // monoNow of the last observation; 0 = never observed

	requests atomic.Int64           // attempts observed (observeAt calls)
	failures atomic.Int64           // of which failed
	lastErr  atomic.Pointer[string] // why the last failed attempt failed; nil before one
}

// failedWith records why an attempt failed, for Endpoints' LastError. It is
// called on the failure path only, after observeAt.
func (e *endpoint) failedWith(why string) { e.lastErr.Store(&why) }

func newEndpoint(addr string, s *Service) *endpoint {
	return &endpoint{addr: addr, svc: s}
}

// ready reports whether the endpoint may take traffic: it passes its active
// health check (if any) and the service's Health (if any) says so.
func (e *endpoint) ready() bool {
	if e.unhealthy.Load() {
		return false
	}
	if e.svc != nil && e.svc.health != nil {
		return e.svc.health.Ready(e.addr)
	}
	return true
}

// observeAt records one response latency, rtt, observed at now (monoNow);
// failed responses count as at least failurePenalty and raise the
// recent-failure count.
func (e *endpoint) observeAt(now int64, rtt time.Duration, failed bool) {
	e.requests.Add(1)
	if failed {
		e.failures.Add(1)
	}
	if failed && rtt < failurePenalty {
		rtt = failurePenalty
	}
	if rtt < 0 {
		rtt = 0
	}
	sample := float64(rtt)
	e.mu.Lock()
	cost := math.Float64frombits(e.cost.Load())
	fails := math.Float64frombits(e.fails.Load())
	last := e.stamp.Load()
	w := 0.0
	if last != 0 {
		w = math.Exp(-float64(now-last) / float64(ewmaDecay))
	}
	if last == 0 || sample > cost {
		cost = sample
	} else {
		cost = cost*w + sample*(1-w)
	}
	fails *= w
	if failed {
		fails++
	} else {
		fails /= 2
	}
	e.cost.Store(math.Float64bits(cost))
	e.fails.Store(math.Float64bits(fails))
	e.stamp.Store(now)
	e.mu.Unlock()
}

// latency returns the current (decayed) peak-EWMA latency in ns, the decay
// factor since the last observation, and whether the endpoint has answered
// at all.
func (e *endpoint) latency(now int64) (cost, decay float64, seen bool) {
	last := e.stamp.Load()
	if last == 0 {
		return 0, 1, false
	}
	cost = math.Float64frombits(e.cost.Load())
	decay = 1
	if d := now - last; d > 0 {
		decay = math.Exp(-float64(d) / float64(ewmaDecay))
	}
	return cost * decay, decay, true
}

// ewmaScore is the load the ewma balancer minimises: latency × (in-flight+1)
// × the recent-failure multiplier, or, before the first answer, 0 when idle
// and a large penalty when busy.
func (e *endpoint) ewmaScore(now int64) float64 {
	n := float64(e.inflight.Load())
	cost, decay, seen := e.latency(now)
	if !seen {
		if n == 0 {
			return 0
		}
		return float64(newPenalty) + n
	}
	fails := math.Float64frombits(e.fails.Load()) * decay
	return cost * (n + 1) * (1 + failureWeight*fails)
}
