package retry_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/attempt"
	"github.com/outbound-go/outbound/retry"
)

// TestHedgingLoserCancelDoesNotTouchWinner sends a request whose first copy
// hangs; the hedge answers with a large body, written in two halves with
// the second only after the loser has seen its cancellation. The winner's
// body must arrive whole, over HTTP/1.1 and HTTP/2.
func TestHedgingLoserCancelDoesNotTouchWinner(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "HTTP/2.0"} {
		t.Run(proto, func(t *testing.T) {
			const half = 256 << 10
			var hits atomic.Int32
			var firstAttempt atomic.Value // the attempt number of the first arrival
			loserCancelled := make(chan struct{})
			up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if hits.Add(1) == 1 {
					firstAttempt.Store(r.Header.Get("X-Test-Attempt"))
					select {
					case <-r.Context().Done():
						close(loserCancelled)
					case <-time.After(5 * time.Second):
					}
					return
				}
				w.WriteHeader(200)
				_, _ = w.Write(bytes.Repeat([]byte("a"), half))
				http.NewResponseController(w).Flush()
				select {
				case <-loserCancelled:
				case <-time.After(5 * time.Second):
					return
				}
				_, _ = w.Write(bytes.Repeat([]byte("b"), half))
			})
			srv := httptest.NewUnstartedServer(up)
			if proto == "HTTP/2.0" {
				srv.EnableHTTP2 = true
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()

			p, _, m := newPolicy(t, retry.Config{Hedge: retry.HedgeConfig{Delay: 30 * time.Millisecond}})
			// Tag each copy with its attempt number: which copy reaches the
			// upstream first (and so hangs) is up to the scheduler.
			base := srv.Client().Transport
			tag := rtFunc(func(r *http.Request) (*http.Response, error) {
				_, n := attempt.FromContext(r.Context())
				r = r.Clone(r.Context())
				r.Header.Set("X-Test-Attempt", strconv.Itoa(n))
				return base.RoundTrip(r)
			})
			client := &http.Client{Transport: p.RoundTripper(tag)}
			start := time.Now()
			resp, err := client.Get(srv.URL)
			require.NoError(t, err)
			assert.Equal(t, proto, resp.Proto)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err, "the winner's body is not cancelled with the loser")
			require.NoError(t, resp.Body.Close())
			assert.Len(t, body, 2*half)
			assert.Equal(t, byte('b'), body[len(body)-1])
			assert.Less(t, time.Since(start), 4*time.Second)
			assert.EqualValues(t, 2, hits.Load())
			select {
			case <-loserCancelled:
			default:
				t.Fatal("the slow copy was not cancelled")
			}
			// The copy that arrived first hung and lost. Usually that is the
			// original (it lost to another attempt: retried; the hedge won:
			// hedged); on a loaded machine the hedge can overtake it (the
			// original won: success; the hedge lost: hedged).
			want := map[string]int64{"hedged": 1, "retried": 1}
			if firstAttempt.Load() == "2" {
				want = map[string]int64{"hedged": 1, "success": 1}
			}
			require.Eventually(t, func() bool {
				return assert.ObjectsAreEqual(want, m.outcomes(t))
			}, time.Second, 5*time.Millisecond, "first arrival: attempt %v; want %v, outcomes: %v", firstAttempt.Load(), want, m.outcomes(t))
		})
	}
}

func TestHedgingFastFirstSendsNoHedge(t *testing.T) {
	up := &flaky{}
	srv, _, mk := serve(t, up)
	client, _, m := mk(retry.Config{Hedge: retry.HedgeConfig{Delay: time.Second}})
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.EqualValues(t, 1, up.hits.Load())
	assert.Equal(t, map[string]int64{"success": 1}, m.outcomes(t))
}

func TestHedgingNotForPOST(t *testing.T) {
	var hits atomic.Int32
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		latency(r.Context(), 60*time.Millisecond) // slower than the hedge delay
	})
	srv, _, mk := serve(t, up)
	client, _, _ := mk(retry.Config{Hedge: retry.HedgeConfig{Delay: 10 * time.Millisecond}})
	resp, err := client.Post(srv.URL, "text/plain", bytes.NewReader([]byte("x")))
	require.NoError(t, err)
	readAll(t, resp)
	assert.EqualValues(t, 1, hits.Load())
}

func TestHedgingFallsBackToRetry(t *testing.T) {
	up := &flaky{n: 1, fail: failWith(503)}
	srv, _, mk := serve(t, up)
	client, clk, m := mk(retry.Config{Hedge: retry.HedgeConfig{Delay: time.Second}})
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.EqualValues(t, 2, up.hits.Load())
	assert.Len(t, clk.Sleeps(), 1)
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
}

func TestHedgingStopsWhenBudgetIsSpent(t *testing.T) {
	var hits atomic.Int32
	up := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		latency(r.Context(), 80*time.Millisecond) // slower than the hedge delay
		_, _ = w.Write([]byte("slow but fine"))
	})
	srv, _, mk := serve(t, up)
	client, _, m := mk(retry.Config{
		Hedge:  retry.HedgeConfig{Delay: 10 * time.Millisecond, MaxExtra: 3},
		Budget: retry.BudgetConfig{MinPerSecond: 0.001, TTL: time.Second},
	})
	resp, err := client.Get(srv.URL)
	require.NoError(t, err)
	assert.Equal(t, "slow but fine", readAll(t, resp), "the attempt in flight is never killed")
	assert.EqualValues(t, 1, hits.Load(), "no budget, no hedge")
	assert.Equal(t, map[string]int64{"success": 1}, m.outcomes(t))
}
