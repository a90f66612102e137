package breaker

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestReadyShortcutNeverHidesABreaker: Ready answers true without the
// table while notClosedN is zero, so the count must never run under the
// number of breakers in the table that are not closed. Requests to eight
// endpoints trip, probe and close their breakers (each endpoint fails in
// turns, open_timeout 1ms) while a checker, with the workers paused
// between requests (no state change in progress), compares the entries
// that read as not closed with the count; the workers check Ready against
// each entry's own state (each worker has endpoints of its own: with
// another worker's request between the reads, an open breaker could close
// and open again, and the check would fail with nothing wrong). Bounded: 4 workers x 5,000 requests, 3 s.
func TestReadyShortcutNeverHidesABreaker(t *testing.T) {
	b, err := New(Config{ConsecutiveFailures: 1, OpenTimeout: time.Millisecond, HalfOpenRequests: 1})
	require.NoError(t, err)
	var failing [8]atomic.Bool
	rt := b.RoundTripper(rtFunc(func(r *http.Request) (*http.Response, error) {
		code := http.StatusOK
		var i int
		_, _ = fmt.Sscanf(r.URL.Host, "10.0.0.%d:80", &i)
		if failing[i].Load() {
			code = http.StatusServiceUnavailable
		}
		return &http.Response{StatusCode: code, Body: http.NoBody, Request: r}, nil
	}))
	var (
		wg              sync.WaitGroup
		pause           sync.RWMutex // workers hold it for reading around each request
		under, wrong    atomic.Int64
		opened          atomic.Int64
		stop, checkDone = make(chan struct{}), make(chan struct{})
	)
	go func() {
		defer close(checkDone)
		for {
			select {
			case <-stop:
				return
			default:
			}
			pause.Lock()
			b.mu.RLock()
			n := int64(0)
			for _, e := range b.keys {
				if e.notClosed.Load() {
					n++
				}
			}
			if n > b.notClosedN.Load() {
				under.Add(1)
			}
			b.mu.RUnlock()
			pause.Unlock()
			if n > 0 {
				opened.Add(1)
			}
		}
	}()
	deadline := time.Now().Add(3 * time.Second)
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				if i%256 == 0 && time.Now().After(deadline) {
					return
				}
				pause.RLock()
				// Each worker owns two endpoints, so between its own reads of
				// an entry only time (open -> half-open) changes its state.
				ep := w*2 + i%2
				if i%50 == 0 {
					failing[ep].Store(!failing[ep].Load())
				}
				req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://10.0.0.%d:80/", ep), nil)
				if resp, err := rt.RoundTrip(req); err == nil {
					_ = resp.Body.Close()
				}
				// An endpoint whose breaker reads open is never Ready.
				if e := b.lookup(req.URL.Host); e != nil && e.notClosed.Load() && b.Ready(req.URL.Host) &&
					e.cb.State().String() == "open" {
					wrong.Add(1)
				}
				pause.RUnlock()
			}
		}()
	}
	wg.Wait()
	close(stop)
	<-checkDone
	t.Logf("checks that saw a breaker not closed: %d; count now %d", opened.Load(), b.notClosedN.Load())
	assert.Positive(t, opened.Load(), "no breaker ever opened: the test proves nothing")
	assert.Zero(t, under.Load(), "the not-closed count ran under the table")
	assert.Zero(t, wrong.Load(), "Ready answered true for an open breaker")
	require.NoError(t, b.Close())
	assert.Zero(t, b.notClosedN.Load(), "Close leaves nothing counted")
}
