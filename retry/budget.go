package retry

import (
	"sync"
	"sync/atomic"
	"time"
)

// budgetSlots is the number of slots the TTL window is divided into.
const budgetSlots = 10

// budget is a Linkerd-style retry budget: over a sliding window of ttl it
// allows retries while retries+1 ≤ ratio × requests + minPerSecond × ttl.
// Requests are counted with atomics on the hot path; a retry's check and
// withdrawal take a mutex (retries are the slow path). The window slides
// in ttl/budgetSlots steps.
type budget struct {
	ratio    float64
	floor    float64 // minPerSecond × ttl in seconds
	slotNano int64
	nanos    func() int64 // the current time in ns, on any fixed origin

	mu    sync.Mutex // serialises slot rotation and withdrawals
	slots [budgetSlots]budgetSlot
}

type budgetSlot struct {
	epoch    atomic.Int64 // slot index (time / slotNano) the counts belong to
	requests atomic.Int64
	retries  atomic.Int64
}

// newBudget returns the budget of c, nil when disabled. nanos reads the
// clock; with the real clock it is a monotonic reading (time.Since of a
// fixed start: one clock read, not time.Now's two), as only the slot index
// matters.
func newBudget(c BudgetConfig, nanos func() int64) *budget {
	if c.Disabled {
		return nil
	}
	slot := int64(c.TTL) / budgetSlots
	if slot <= 0 {
		slot = 1
	}
	return &budget{
		ratio:    c.Ratio,
		floor:    c.MinPerSecond * c.TTL.Seconds(),
		slotNano: slot,
		nanos:    nanos,
	}
}

// slot returns the current slot, reset if it belonged to an older epoch.
func (b *budget) slot() (*budgetSlot, int64) { return b.slotAt(b.nanos()) }

// slotAt is slot at time ns.
func (b *budget) slotAt(ns int64) (*budgetSlot, int64) {
	// Floored division and a non-negative slot: ns is below zero when the
	// clock reads earlier than monoStart, as inside a testing/synctest
	// bubble (whose clock starts in 2000) or for a caller's time without a
	// monotonic reading.
	idx := ns / b.slotNano
	if ns%b.slotNano < 0 {
		idx--
	}
	i := idx % budgetSlots
	if i < 0 {
		i += budgetSlots
	}
	s := &b.slots[i]
	if s.epoch.Load() != idx {
		b.mu.Lock()
		if s.epoch.Load() != idx {
			s.requests.Store(0)
			s.retries.Store(0)
			s.epoch.Store(idx)
		}
		b.mu.Unlock()
	}
	return s, idx
}

// deposit counts one logical request.
func (b *budget) deposit() {
	if b == nil {
		return
	}
	s, _ := b.slot()
	s.requests.Add(1)
}

// depositAt counts one logical request at ns (as nanos would read it).
func (b *budget) depositAt(ns int64) {
	if b == nil {
		return
	}
	s, _ := b.slotAt(ns)
	s.requests.Add(1)
}

// withdraw reports whether one more retry (or hedge) fits the budget and,
// if so, counts it.
func (b *budget) withdraw() bool {
	if b == nil {
		return true
	}
	s, idx := b.slot()
	b.mu.Lock()
	defer b.mu.Unlock()
	var reqs, retries int64
	for i := range b.slots {
		o := &b.slots[i]
		if e := o.epoch.Load(); e > idx-budgetSlots && e <= idx {
			reqs += o.requests.Load()
			retries += o.retries.Load()
		}
	}
	if float64(retries+1) > b.ratio*float64(reqs)+b.floor {
		return false
	}
	s.retries.Add(1)
	return true
}

// monoStart is the origin of monoNanos.
var monoStart = time.Now()

// monoNanos is the real clock for the budget: nanoseconds since monoStart,
// from the monotonic clock.
func monoNanos() int64 { return int64(time.Since(monoStart)) }

// deposit counts one logical request in the budget. On the real clock it
// returns the reading it used, now itself when the caller passed one (not
// zero), so the attempt can share it with the layers below; on an injected
// clock it returns the zero Time.
func (p *Policy) deposit(now time.Time) time.Time {
	if !p.real {
		p.budget.deposit()
		return time.Time{}
	}
	if now.IsZero() {
		now = time.Now()
	}
	p.budget.depositAt(int64(now.Sub(monoStart)))
	return now
}
