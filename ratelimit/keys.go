package ratelimit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// bucket is the per-key state: the token bucket and the end of an upstream
// pause (Unix nanoseconds; 0 when never paused).
type bucket struct {
	lim         *rate.Limiter
	pausedUntil atomic.Int64
	key         string // the key it is held under in its table ("" for the global bucket)
	lease       *lease // tokens leased from Redis; nil when the Limiter is local
}

func newBucket(limit rate.Limit, burst int, shared bool) *bucket {
	b := &bucket{lim: rate.NewLimiter(limit, burst)}
	if shared {
		b.lease = &lease{}
	}
	return b
}

// paused returns how long the bucket stays paused after now, or 0.
func (b *bucket) paused(now time.Time) time.Duration {
	until := b.pausedUntil.Load()
	if until == 0 {
		return 0
	}
	if d := time.Duration(until - now.UnixNano()); d > 0 {
		return d
	}
	return 0
}

// pauseUntil extends the pause to t; a shorter pause never cuts a longer one.
func (b *bucket) pauseUntil(t time.Time) {
	n := t.UnixNano()
	for {
		old := b.pausedUntil.Load()
		if old >= n || b.pausedUntil.CompareAndSwap(old, n) {
			return
		}
	}
}

// idle reports whether dropping b loses nothing: its bucket has refilled and
// it is not paused, so a fresh bucket would behave the same (and, shared on
// Redis, it holds no leased token).
func (b *bucket) idle(now time.Time, burst int) bool {
	return b.paused(now) == 0 && b.lim.TokensAt(now) >= float64(burst) &&
		(b.lease == nil || b.lease.held() == 0)
}

// table holds the per-key buckets of the host scope, bounded to maxKeys in
// total. It is split into shards, each behind its own RWMutex, so that the
// common case — the key exists — takes only a shared read lock. The bound
// is on the total (an atomic count), not per shard: keys never spread
// evenly over shards, and a per-shard bound would evict while the table
// holds fewer than maxKeys keys.
//
// Eviction is lazy: when the table is full and a new key arrives, the new
// key's shard first drops its idle buckets (full and unpaused, so nothing
// is lost); if that frees less than a quarter of a shard's share, it drops
// further unpaused buckets in map order (their state is forgotten: a host
// that comes back starts with a full bucket). A shard with nothing to drop
// makes room in another. Freeing a quarter at a time keeps the sweep
// amortised O(1) per new key. There is no background goroutine.
type table struct {
	seed   maphash.Seed
	shards []shard
	max    int64        // bound on the total
	count  atomic.Int64 // buckets held (or reserved under a shard lock)
	sweep  int          // buckets a sweep tries to free
	limit  rate.Limit
	burst  int

	// last is the bucket the latest lookup found, so that a run of
	// requests to one host (a Stack's limiter only ever sees the
	// service's logical host) skips both hashes and the shard lock.
	//
	// Invariant: last is nil or a bucket held in the table. It is set
	// only under the read lock of the bucket's shard and cleared by
	// eviction under that shard's write lock, so it never outlives the
	// bucket's place in the table.
	last   atomic.Pointer[bucket]
	shared bool // new buckets get a lease
}

type shard struct {
	mu sync.RWMutex
	m  map[string]*bucket
	_  [40]byte // keep shards on separate cache lines
}

func newTable(maxKeys int, limit rate.Limit, burst int) *table {
	n := 16
	if maxKeys < 64 {
		n = 1
	}
	t := &table{seed: maphash.MakeSeed(), shards: make([]shard, n), max: int64(maxKeys),
		sweep: max(maxKeys/n/4, 1), limit: limit, burst: burst}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*bucket)
	}
	return t
}

func (t *table) shardIndex(key string) int {
	if len(t.shards) == 1 {
		return 0
	}
	return int(maphash.String(t.seed, key) % uint64(len(t.shards)))
}

// get returns the bucket of key, creating it (and evicting if the table is
// full) when it does not exist.
func (t *table) get(key string, now time.Time) *bucket {
	if b := t.last.Load(); b != nil && b.key == key {
		return b
	}
	i := t.shardIndex(key)
	s := &t.shards[i]
	s.mu.RLock()
	b := s.m[key]
	if b != nil {
		t.last.Store(b)
	}
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.m[key]; b != nil {
		return b
	}
	for !t.reserve() {
		if t.evict(s, now, false) > 0 {
			continue
		}
		// Nothing unpaused to drop in this shard: make room in another,
		// without holding two shard locks at once.
		s.mu.Unlock()
		t.evictElsewhere(i, now)
		s.mu.Lock()
		if b = s.m[key]; b != nil {
			return b
		}
	}
	b = newBucket(t.limit, t.burst, t.shared)
	b.key = key
	s.m[key] = b
	return b
}

// reserve counts one more bucket if the bound allows it.
func (t *table) reserve() bool {
	for {
		n := t.count.Load()
		if n >= t.max {
			return false
		}
		if t.count.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// evictElsewhere frees room in the first shard after shard i that has an
// unpaused bucket to drop; when every bucket of every shard is paused, it
// drops paused ones (shard i included): the bound still holds.
func (t *table) evictElsewhere(i int, now time.Time) {
	for _, paused := range []bool{false, true} {
		for k := 1; k <= len(t.shards); k++ {
			o := &t.shards[(i+k)%len(t.shards)]
			o.mu.Lock()
			freed := t.evict(o, now, paused)
			o.mu.Unlock()
			if freed > 0 {
				return
			}
		}
	}
}

// evict frees room in s and returns how many buckets it dropped; s.mu is
// held. Paused buckets are dropped only with paused, and only when s has
// nothing else to drop.
func (t *table) evict(s *shard, now time.Time, paused bool) int {
	want := t.sweep
	freed := 0
	drop := func(k string) {
		if b := s.m[k]; b != nil {
			t.last.CompareAndSwap(b, nil)
		}
		delete(s.m, k)
		t.count.Add(-1)
		freed++
	}
	for k, b := range s.m {
		if b.idle(now, t.burst) {
			drop(k)
		}
	}
	for k, b := range s.m {
		if freed >= want {
			return freed
		}
		if b.paused(now) == 0 {
			drop(k)
		}
	}
	if !paused || freed > 0 {
		return freed
	}
	for k := range s.m { // every bucket is paused: the bound still holds
		if freed >= want {
			return freed
		}
		drop(k)
	}
	return freed
}

// each calls f for every key and bucket, one shard at a time under its read
// lock.
func (t *table) each(f func(key string, b *bucket)) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		for k, b := range s.m {
			f(k, b)
		}
		s.mu.RUnlock()
	}
}

// len returns the number of buckets held.
func (t *table) len() int {
	n := 0
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
