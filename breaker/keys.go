package breaker

import (
	"slices"
	"strings"
	"sync/atomic"

	"github.com/sony/gobreaker/v2"
)

// mkey is the map key: a, plus b for gRPC method keys, so that building a
// key never concatenates strings on the request path.
type mkey struct{ a, b string }

type entry struct {
	key      string
	cb       *gobreaker.CircuitBreaker[struct{}]
	last     int64       // ns since Breaker.epoch: creation or the last sweep that saw it used; under b.mu
	used     atomic.Bool // used since the last sweep
	inflight atomic.Int32
	rej      atomic.Pointer[rejection]
	// notClosed mirrors gobreaker's state (set by OnStateChange, under its
	// mutex): false means closed, which only a request's outcome can change
	// (a state change that is reported), so Ready answers a closed breaker
	// without asking gobreaker, whose State reads the clock for the
	// open → half-open timeout.
	notClosed atomic.Bool
}

func (b *Breaker) now() int64 { return int64(b.clock.Now().Sub(b.epoch)) }

// use marks e as used since the last sweep. The request path reads no
// clock of its own (a clock read costs more than the rest of it on some
// machines); sweeps turn the mark into a time stamp.
func (e *entry) use() {
	if !e.used.Load() {
		e.used.Store(true)
	}
}

// acquire returns k's entry, creating it if needed, with one more request
// in flight; nil when the key table is full of keys that may not be
// evicted (the request then goes through untracked).
func (b *Breaker) acquire(k mkey) *entry {
	b.mu.RLock()
	e := b.keys[k]
	if e != nil {
		e.inflight.Add(1) // under the read lock, so a sweep cannot drop e now
	}
	b.mu.RUnlock()
	if e != nil {
		e.use()
		return e
	}
	return b.create(k)
}

func (b *Breaker) release(e *entry) {
	e.use()
	e.inflight.Add(-1)
}

func (b *Breaker) create(k mkey) *entry {
	now := b.now()
	b.mu.Lock()
	e := b.keys[k]
	if e == nil {
		if len(b.keys) >= b.cfg.MaxKeys || now-b.lastSweep > b.idleTTL/2 {
			b.sweepLocked(now)
		}
		if len(b.keys) >= b.cfg.MaxKeys {
			b.evictLRULocked()
		}
		if len(b.keys) < b.cfg.MaxKeys {
			st := b.settings
			st.Name = k.a + k.b
			e = &entry{key: st.Name}
			ee := e
			st.OnStateChange = func(name string, from, to gobreaker.State) {
				ee.notClosed.Store(to != gobreaker.StateClosed)
				b.record(name, from, to)
			}
			e.cb = gobreaker.NewCircuitBreaker[struct{}](st)
			e.last = now
			b.keys[k] = e
		}
	}
	if e != nil {
		e.inflight.Add(1)
		e.use()
	}
	b.mu.Unlock()
	b.flush() // evictLRULocked may have moved an open breaker to half-open
	return e
}

// sweepLocked stamps the keys used since the last sweep with now, and
// drops every key with nothing in flight whose stamp is older than
// max(interval, open_timeout). A stamp is never earlier than the key's last
// use, so no key goes before it was idle that long. b.mu must be held for
// writing (the used marks are atomics; requests set them under the read
// lock or none).
func (b *Breaker) sweepLocked(now int64) {
	b.lastSweep = now
	for k, e := range b.keys {
		if e.used.Load() {
			e.used.Store(false)
			e.last = now
			continue
		}
		if e.inflight.Load() == 0 && now-e.last > b.idleTTL {
			delete(b.keys, k)
		}
	}
}

// evictLRULocked makes room when the table is full of recently used keys:
// it drops the least recently used keys that are not open and have nothing
// in flight, down to 15/16 of MaxKeys. b.mu must be held for writing.
func (b *Breaker) evictLRULocked() {
	type cand struct {
		k    mkey
		last int64
	}
	var cands []cand
	for k, e := range b.keys {
		if e.inflight.Load() == 0 && e.cb.State() != gobreaker.StateOpen {
			cands = append(cands, cand{k, e.last}) // sweepLocked just stamped the used ones
		}
	}
	slices.SortFunc(cands, func(x, y cand) int {
		switch {
		case x.last < y.last:
			return -1
		case x.last > y.last:
			return 1
		}
		return 0
	})
	target := b.cfg.MaxKeys - max(1, b.cfg.MaxKeys/16)
	for _, c := range cands {
		if len(b.keys) <= target {
			break
		}
		delete(b.keys, c.k)
	}
}

// lookup finds key's entry without creating it or counting a request.
func (b *Breaker) lookup(key string) *entry {
	b.mu.RLock()
	e := b.keys[mkey{a: key}]
	if e == nil && b.opts.grpcMethodKey {
		// "TARGET/pkg.Service/Method": the method is the last two segments.
		if i := strings.LastIndexByte(key, '/'); i > 0 {
			if j := strings.LastIndexByte(key[:i], '/'); j >= 0 {
				e = b.keys[mkey{a: key[:j], b: key[j:]}]
			}
		}
	}
	b.mu.RUnlock()
	return e
}
