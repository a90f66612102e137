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
	// dropped is set when e leaves the key table (tryDropLocked, Close):
	// acquire's shortcut through Breaker.last then no longer takes it.
	// tryDropLocked may set it and take it back; gone is set once e has
	// left the table for good, and never cleared.
	dropped atomic.Bool
	gone    atomic.Bool
	// counted says e is counted in Breaker.notClosedN (see countNotClosed).
	counted atomic.Bool
}

// countNotClosed keeps Breaker.notClosedN, the number of entries in the
// table that are not closed, as e changes state (notClosed: to open or
// half-open) or leaves the table (notClosed false). Each entry counts at
// most once (counted). The count may run over, never under: an entry in
// the table is never gone, so its change to open or half-open is always
// counted, while a change racing the entry's removal may leave it counted
// for good, which costs Ready its shortcut, never its answer.
func (b *Breaker) countNotClosed(e *entry, notClosed bool) {
	if notClosed {
		if !e.gone.Load() && e.counted.CompareAndSwap(false, true) {
			b.notClosedN.Add(1)
		}
		return
	}
	if e.counted.CompareAndSwap(true, false) {
		b.notClosedN.Add(-1)
	}
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
//
// A run of requests to one key (every request of a Breaker that sees one
// host) takes the key's entry from b.last without the lock, the hash or
// the map. That shortcut and tryDropLocked are a Dekker pair on two
// sequentially consistent atomics: acquire counts the request in flight,
// then checks dropped; a drop sets dropped, then checks the in-flight
// count and undoes itself when it is not zero. So either the drop sees the
// request and keeps the entry, or the request sees the drop and takes the
// locked path, and no request is ever counted on an entry the table lost.
//
// b.last is only set when empty: a Breaker over several keys in turn (one
// per endpoint of a balanced service) then pays a load and a compare on a
// miss, not a store on every request.
func (b *Breaker) acquire(k mkey) *entry {
	last := b.last.Load()
	if last != nil && k.b == "" && last.key == k.a {
		last.inflight.Add(1)
		if !last.dropped.Load() {
			last.use()
			return last
		}
		last.inflight.Add(-1)
	}
	b.mu.RLock()
	e := b.keys[k]
	if e != nil {
		e.inflight.Add(1) // under the read lock, so a sweep cannot drop e now
		if last == nil && k.b == "" {
			b.last.CompareAndSwap(nil, e)
		}
	}
	b.mu.RUnlock()
	if e != nil {
		e.use()
		return e
	}
	return b.create(k)
}

// tryDropLocked removes k's entry e from the table unless a request is in
// flight on it, and reports whether it did (see acquire for the protocol).
// b.mu must be held for writing.
func (b *Breaker) tryDropLocked(k mkey, e *entry) bool {
	e.dropped.Store(true)
	if e.inflight.Load() != 0 {
		e.dropped.Store(false)
		return false
	}
	delete(b.keys, k)
	e.gone.Store(true)
	b.countNotClosed(e, false)
	b.last.CompareAndSwap(e, nil)
	return true
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
				// Counted before it reads as not closed, and uncounted
				// after it reads as closed: the count never runs under.
				if to != gobreaker.StateClosed {
					b.countNotClosed(ee, true)
					ee.notClosed.Store(true)
				} else {
					ee.notClosed.Store(false)
					b.countNotClosed(ee, false)
				}
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
			b.tryDropLocked(k, e)
		}
	}
}

// evictLRULocked makes room when the table is full of recently used keys:
// it drops the least recently used keys that are not open and have nothing
// in flight, down to 15/16 of MaxKeys. b.mu must be held for writing.
func (b *Breaker) evictLRULocked() {
	type cand struct {
		k    mkey
		e    *entry
		last int64
	}
	var cands []cand
	for k, e := range b.keys {
		if e.inflight.Load() == 0 && e.cb.State() != gobreaker.StateOpen {
			cands = append(cands, cand{k, e, e.last}) // sweepLocked just stamped the used ones
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
		b.tryDropLocked(c.k, c.e)
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
