package breaker

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLastEntryNeverOutlivesDrop: requests to one key take its entry
// through the lock-free shortcut while sweeps try to drop it as often as
// they can. An entry a request holds (in flight) must still be the table's
// entry for its key: the shortcut never hands out an entry a sweep
// dropped, so no outcome is recorded on a breaker the table lost. Bounded:
// it stops after 200 drops, 2,000,000 requests or 3 s.
func TestLastEntryNeverOutlivesDrop(t *testing.T) {
	b, err := New(Config{})
	require.NoError(t, err)
	k := mkey{a: "10.0.0.1:80"}
	var (
		lost, drops atomic.Int64
		stop        = make(chan struct{})
		sweeper     = make(chan struct{})
	)
	go func() {
		defer close(sweeper)
		for now := int64(0); ; now += 4 * b.idleTTL {
			select {
			case <-stop:
				return
			default:
			}
			// A sweep that finds the key idle for long (its used mark
			// cleared just before) drops it unless a request is in
			// flight, while requests keep taking the shortcut (it takes
			// no lock).
			b.mu.Lock()
			e := b.keys[k]
			if e != nil {
				e.used.Store(false)
			}
			b.sweepLocked(now)
			if e != nil && b.keys[k] == nil {
				drops.Add(1)
			}
			b.mu.Unlock()
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for i := 0; i < 2_000_000 && drops.Load() < 200; i++ {
		if i%1024 == 0 && time.Now().After(deadline) {
			break
		}
		e := b.acquire(k)
		b.mu.RLock()
		if b.keys[k] != e {
			lost.Add(1)
		}
		b.mu.RUnlock()
		b.release(e)
	}
	close(stop)
	<-sweeper
	t.Logf("the key's entry was dropped %d times", drops.Load())
	assert.Positive(t, drops.Load(), "the sweeps never dropped the key: the test proves nothing")
	assert.Zero(t, lost.Load(), "requests were handed an entry the table no longer held")
}
