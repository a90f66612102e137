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
// it is not paused, so a fresh bucket would behave the same.
func (b *bucket) idle(now time.Time, burst int) bool {
	return b.paused(now) == 0 && b.lim.TokensAt(now) >= float64(burst)
}

// table holds the per-key buckets of the host scope, bounded to maxKeys in
// total. It is split into shards, each behind its own RWMutex, so that the
// common case — the key exists — takes only a shared read lock.
//
// Eviction is lazy: a shard that is full when a new key arrives first drops
// its idle buckets (full and unpaused, so nothing is lost); if that frees
// less than a quarter of the shard, it drops further unpaused buckets in map
// order (their state is forgotten: a host that comes back starts with a full
// bucket). Freeing a quarter at a time keeps the sweep amortised O(1) per new
// key. There is no background goroutine.
type table struct {
	seed   maphash.Seed
	shards []shard
	cap    int // per shard
	limit  rate.Limit
	burst  int
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
	t := &table{seed: maphash.MakeSeed(), shards: make([]shard, n), cap: maxKeys / n, limit: limit, burst: burst}
	for i := range t.shards {
		t.shards[i].m = make(map[string]*bucket)
	}
	return t
}

func (t *table) shard(key string) *shard {
	if len(t.shards) == 1 {
		return &t.shards[0]
	}
	return &t.shards[maphash.String(t.seed, key)%uint64(len(t.shards))]
}

// get returns the bucket of key, creating it (and evicting if the shard is
// full) when it does not exist.
func (t *table) get(key string, now time.Time) *bucket {
	s := t.shard(key)
	s.mu.RLock()
	b := s.m[key]
	s.mu.RUnlock()
	if b != nil {
		return b
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b = s.m[key]; b != nil {
		return b
	}
	if len(s.m) >= t.cap {
		t.evict(s, now)
	}
	b = &bucket{lim: rate.NewLimiter(t.limit, t.burst)}
	s.m[key] = b
	return b
}

// evict frees room in s; s.mu is held.
func (t *table) evict(s *shard, now time.Time) {
	want := t.cap / 4
	if want < 1 {
		want = 1
	}
	freed := 0
	for k, b := range s.m {
		if b.idle(now, t.burst) {
			delete(s.m, k)
			freed++
		}
	}
	for k, b := range s.m {
		if freed >= want {
			return
		}
		if b.paused(now) == 0 {
			delete(s.m, k)
			freed++
		}
	}
	for k := range s.m { // every bucket is paused: the bound still holds
		if freed >= want {
			return
		}
		delete(s.m, k)
		freed++
	}
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
