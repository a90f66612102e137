package discovery

import (
	"cmp"
	"math"
	"math/rand/v2"
	"slices"
	"sync/atomic"

	"github.com/outbound-go/outbound/internal/attempt"
)

type balancerKind uint8

const (
	kindRoundRobin balancerKind = iota
	kindLeastRequest
	kindEWMA
)

func kindOf(name string) balancerKind {
	switch name {
	case LeastRequest:
		return kindLeastRequest
	case EWMA:
		return kindEWMA
	default:
		return kindRoundRobin
	}
}

// member is one endpoint of a snapshot with the weight the source gave it.
type member struct {
	ep     *endpoint
	weight int
	meta   map[string]string
}

// maxPickWeight caps endpoint weights, so weight sums cannot overflow.
const maxPickWeight = 1_000_000

func newMember(ep *endpoint, weight int, meta map[string]string) member {
	weight = min(max(weight, 1), maxPickWeight)
	return member{ep: ep, weight: weight, meta: meta}
}

// snapshot is an immutable endpoint set. Updates build a new one and swap the
// pointer, so picks never wait for an update.
type snapshot struct {
	members  []member
	schedule []int32 // smooth weighted round-robin order of member indices
	err      error   // why there are no members: the source never had a set
}

// Tuning of the sampling picks.
const (
	p2cTries = 3 // random pairs drawn before the fallback scan
	rrTries  = 4 // schedule slots probed before the fallback scan
	// maxSchedule bounds the round-robin schedule; larger weight sums are
	// scaled down (every endpoint keeps at least one slot).
	maxSchedule = 1 << 16
)

// buildSchedule returns the smooth weighted round-robin order of ms: endpoint
// i appears weight_i times per cycle, its slots spread evenly over the cycle
// (earliest virtual deadline first, with deadlines (k+φ_i)/weight_i and
// phases φ_i staggered over the endpoints), so a heavy endpoint never gets
// its share as one burst.
func buildSchedule(ms []member) []int32 {
	n := len(ms)
	if n == 0 {
		return nil
	}
	ws := make([]int, n)
	total, g := 0, 0
	for i, m := range ms {
		ws[i] = m.weight
		total += m.weight
		g = gcd(g, m.weight)
	}
	if g*n == total {
		// equal weights: plain rotation
		s := make([]int32, n)
		for i := range s {
			s[i] = int32(i)
		}
		return s
	}
	if g > 1 {
		total = 0
		for i := range ws {
			ws[i] /= g
			total += ws[i]
		}
	}
	if limit := max(maxSchedule, 4*n); total > limit {
		scaled := 0
		for i := range ws {
			ws[i] = max(1, int(int64(ws[i])*int64(limit)/int64(total)))
			scaled += ws[i]
		}
		total = scaled
	}
	type slot struct {
		at  float64
		idx int32
	}
	slots := make([]slot, 0, total)
	for i, w := range ws {
		phase := (float64(i) + 0.5) / float64(n) // staggered, so equal deadlines do not bunch up
		for k := 0; k < w; k++ {
			slots = append(slots, slot{at: (float64(k) + phase) / float64(w), idx: int32(i)})
		}
	}
	slices.SortFunc(slots, func(a, b slot) int {
		if c := cmp.Compare(a.at, b.at); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	s := make([]int32, len(slots))
	for i, sl := range slots {
		s[i] = sl.idx
	}
	return s
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// Candidate states, best last.
const (
	stUnready = iota
	stTried   // ready, but this logical request already tried it
	stFresh   // ready and untried
)

// state returns m's candidate state and, for a tried one, when rec last
// picked it (attempt.Record.LastTried; 0 otherwise).
func state(m *member, rec *attempt.Record) (st, triedAt int) {
	if !m.ep.ready() {
		return stUnready, 0
	}
	if rec != nil {
		if at := rec.LastTried(m.ep.addr); at > 0 {
			return stTried, at
		}
	}
	return stFresh, 0
}

// fallback is the tried endpoint a pick takes when no ready endpoint is
// untried: the one this logical request tried longest ago, so a third
// attempt over two endpoints goes back to the first, not to the one that
// has just failed it.
type fallback struct{ i, at int }

func noFallback() fallback { return fallback{i: -1} }

func (f *fallback) offer(i, at int) {
	if f.i < 0 || at < f.at {
		f.i, f.at = i, at
	}
}

// choose returns the index in ms of the endpoint for one attempt, or -1 when
// none is ready. It prefers ready endpoints rec has not tried, then ready
// ones it has, the one tried longest ago first. It is O(1) in len(ms) and allocates nothing, except in the
// rare case where every sampled candidate was unready or tried: then it
// scans the whole set once (so a service whose endpoints are nearly all
// ejected pays O(n) per pick until they return).
func choose(kind balancerKind, snap *snapshot, ctr *atomic.Uint64, rec *attempt.Record) int {
	if snap == nil || len(snap.members) == 0 {
		return -1
	}
	if kind == kindRoundRobin {
		return chooseRR(snap, ctr, rec)
	}
	return chooseP2C(kind, snap, rec)
}

func chooseRR(snap *snapshot, ctr *atomic.Uint64, rec *attempt.Record) int {
	ms, sched := snap.members, snap.schedule
	l := uint64(len(sched))
	var start uint64
	fb := noFallback()
	for k := uint64(0); k < rrTries && k < l; k++ {
		// Each probe takes the next slot of the shared rotation (not the
		// next slot after this request's own): a skipped endpoint's slots
		// are then spread over the others in turn instead of all going to
		// its neighbour in the schedule.
		start = ctr.Add(1) - 1
		i := int(sched[start%l])
		switch st, at := state(&ms[i], rec); st {
		case stFresh:
			return i
		case stTried:
			fb.offer(i, at)
		}
	}
	// Rare: scan everything (see choose). The scan draws one of the fresh
	// endpoints by weight (one pass, reservoir sampling) rather than taking
	// the first fresh one after the last probe: that would hand every pick
	// of a run of unready slots to the endpoint after the run.
	pick, total := -1, uint64(0)
	for i := range ms {
		switch st, at := state(&ms[i], rec); st {
		case stFresh:
			w := uint64(ms[i].weight)
			total += w
			if rand.Uint64N(total) < w {
				pick = i
			}
		case stTried:
			fb.offer(i, at)
		}
	}
	if pick >= 0 {
		return pick
	}
	return fb.i
}

// score is the load a P2C balancer minimises. Weights do not scale it: they
// act through the sampling of the two candidates (see chooseP2C).
func score(kind balancerKind, m *member, now int64) float64 {
	if kind == kindEWMA {
		return m.ep.ewmaScore(now)
	}
	return float64(m.ep.inflight.Load() + 1)
}

// chooseP2C draws two candidates with probability proportional to their
// weights — uniform slots of the smooth weighted schedule, where endpoint i
// holds weight_i slots — and keeps the less loaded one; on a tie the first
// draw wins. So at equal load the traffic follows the weights (3:1 weights,
// 3:1 traffic), and under unequal load the lighter endpoint is preferred.
func chooseP2C(kind balancerKind, snap *snapshot, rec *attempt.Record) int {
	ms, sched := snap.members, snap.schedule
	n := len(ms)
	l := uint64(len(sched))
	var now int64
	if kind == kindEWMA {
		now = monoNow()
	}
	fb := noFallback()
	if n > 1 && l > 0 {
		for try := 0; try < p2cTries; try++ {
			r := rand.Uint64()
			i := int(sched[(r&0xffffffff)*l>>32])
			j := int(sched[(r>>32)*l>>32])
			// Two distinct candidates: redraw j by weight a few times, then
			// take a uniform other one (a heavy endpoint can fill most slots).
			for redraw := 0; j == i && redraw < 3; redraw++ {
				j = int(sched[(rand.Uint64()&0xffffffff)*l>>32])
			}
			if j == i {
				j = int((rand.Uint64() & 0xffffffff) * uint64(n-1) >> 32)
				if j >= i {
					j++
				}
			}
			best, bestScore := -1, math.Inf(1)
			for _, k := range [2]int{i, j} {
				st, at := state(&ms[k], rec)
				if st == stUnready {
					continue
				}
				if st == stTried {
					fb.offer(k, at)
					continue
				}
				sc := score(kind, &ms[k], now)
				if best < 0 || sc < bestScore {
					best, bestScore = k, sc
				}
			}
			if best >= 0 {
				return best
			}
		}
	}
	// Rare: scan everything (see choose). Ties for the least load are
	// drawn by weight (reservoir sampling), not won by set order: idle
	// endpoints tie, and the first would get every pick of the scan.
	best, bestScore, tieWeight := -1, math.Inf(1), uint64(0)
	for k := range ms {
		st, at := state(&ms[k], rec)
		if st == stUnready {
			continue
		}
		if st == stTried {
			fb.offer(k, at)
			continue
		}
		sc := score(kind, &ms[k], now)
		w := uint64(ms[k].weight)
		switch {
		case best < 0 || sc < bestScore:
			best, bestScore, tieWeight = k, sc, w
		case sc == bestScore:
			tieWeight += w
			if rand.Uint64N(tieWeight) < w {
				best = k
			}
		}
	}
	if best >= 0 {
		return best
	}
	return fb.i
}
