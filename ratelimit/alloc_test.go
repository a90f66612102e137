package ratelimit_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ratelimit"
)

// A limiter sized for n keys holds n keys: taking a token for any of them
// neither evicts nor allocates, however unevenly the keys hash over the
// table's shards (issue 7: 0 allocs per allow, also at 1,000 keys).
func TestAllowAllocatesNothingAtBound(t *testing.T) {
	for _, n := range []int{1, 1000, 20_000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			lim, err := ratelimit.New(ratelimit.Config{RPS: 1e9, Burst: 1e9, MaxKeys: n})
			require.NoError(t, err)
			keys := make([]string, n)
			for i := range keys {
				keys[i] = "host-" + strconv.Itoa(i) + ":443"
			}
			ctx := context.Background()
			for _, k := range keys {
				require.NoError(t, lim.Acquire(ctx, k))
			}
			require.Equal(t, n, lim.Len(), "every key is held: none was evicted")
			i := 0
			allocs := testing.AllocsPerRun(2*n, func() {
				if err := lim.Acquire(ctx, keys[i%n]); err != nil {
					t.Fatal(err)
				}
				i++
			})
			assert.Zero(t, allocs)
			assert.Equal(t, n, lim.Len())
		})
	}
}
