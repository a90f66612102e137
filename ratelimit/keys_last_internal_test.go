package ratelimit

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

// The table's last-bucket shortcut finds a run of one key without the map,
// and never hands out a bucket that eviction dropped: a key that comes
// back after its bucket was evicted gets a fresh one, held in the table
// and counted against the bound.
func TestLastBucketNeverOutlivesEviction(t *testing.T) {
	tb := newTable(1, rate.Limit(1), 1)
	now := time.Now()
	a := tb.get("a", now)
	require.Same(t, a, tb.get("a", now))
	require.Same(t, a, tb.last.Load(), "the second lookup went through the shortcut's slot")

	b := tb.get("b", now) // the bound is 1: a is evicted
	assert.NotSame(t, a, b)
	assert.NotSame(t, a, tb.last.Load(), "eviction cleared the shortcut")
	a2 := tb.get("a", now)
	assert.NotSame(t, a, a2, "an evicted bucket is never handed out again")
	assert.Same(t, a2, tb.shards[0].m["a"], "the bucket handed out is the one the table holds")
	assert.LessOrEqual(t, tb.count.Load(), int64(1))
	assert.Same(t, a2, tb.get("a", now))
}

// keysInShard returns n keys of tb that land in shard i.
func keysInShard(tb *table, i, n int) []string {
	var keys []string
	for k := 0; len(keys) < n; k++ {
		if key := "host-" + strconv.Itoa(k); tb.shardIndex(key) == i {
			keys = append(keys, key)
		}
	}
	return keys
}

// A full table whose new key's shard holds nothing it may drop frees room
// in another shard: unpaused buckets first, and paused ones only when every
// bucket is paused. The bound holds throughout, and the new key gets a
// bucket the table keeps.
func TestEvictionInAnotherShard(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name        string
		pauseShard1 bool // shard 1's buckets are paused
		pauseAll    bool // every bucket is paused
		wantDropped int  // the shard that lost a bucket
	}{
		{"empty shard: the next shard gives", false, false, 1},
		{"paused buckets are kept while an unpaused one is left", true, false, 2},
		{"every bucket paused: the bound still holds", true, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := newTable(64, rate.Limit(1), 1)
			require.Len(t, tb.shards, 16)
			// 32 keys in shard 1 and 32 in shard 2, each bucket used (not
			// idle, so dropping it loses state); shard 0 is empty.
			full := map[int][]string{1: keysInShard(tb, 1, 32), 2: keysInShard(tb, 2, 32)}
			for i, keys := range full {
				for _, k := range keys {
					b := tb.get(k, now)
					require.True(t, b.lim.AllowN(now, 1))
					if (i == 1 && tc.pauseShard1) || tc.pauseAll {
						b.pauseUntil(now.Add(time.Minute))
					}
				}
			}
			require.EqualValues(t, 64, tb.count.Load())

			key := keysInShard(tb, 0, 1)[0]
			b := tb.get(key, now)
			require.NotNil(t, b)
			assert.Same(t, b, tb.shards[0].m[key], "the new key's bucket is held")
			assert.LessOrEqual(t, tb.count.Load(), int64(64))
			for i := 1; i <= 2; i++ {
				want := 32
				if i == tc.wantDropped {
					want = 32 - tb.sweep
				}
				assert.Len(t, tb.shards[i].m, want, "shard %d", i)
			}
		})
	}
}
