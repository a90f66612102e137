package ratelimit

import (
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
