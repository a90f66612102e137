package ambassador_test

import (
	"net/http"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// TestRetryCallStateCarriesURLOnlyForRewriters: retry's call state holds
// storage for the attempts' own URL only when a layer below it rewrites
// that URL in place (discovery, seen through ratelimit and breaker). Over
// retry, ratelimit and breaker alone the attempt copies share the caller's
// URL and the one allocation per request is the smaller call state; with
// discovery below, discovery still rewrites the attempt's own copy instead
// of copying the request again (one allocation, not two). The full Stack's
// per-request object fits the size class it was laid out for.
func TestRetryCallStateCarriesURLOnlyForRewriters(t *testing.T) {
	resp := &http.Response{StatusCode: http.StatusOK, Body: staticBody{}}
	var sent *http.Request
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		sent = r
		return resp, nil
	})
	p, err := retry.New(retry.Config{})
	require.NoError(t, err)
	l, err := ratelimit.New(ratelimit.Config{RPS: 1e9})
	require.NoError(t, err)
	b, err := breaker.New(breaker.Config{})
	require.NoError(t, err)
	svc, err := discovery.NewService("users", discovery.Static("10.0.0.1:80"), discovery.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = l.Close(); _ = b.Close(); _ = svc.Close() })

	cases := []struct {
		name     string
		rt       http.RoundTripper
		host     string // the host the base sees
		maxBytes uint64 // per request, size classes included
	}{
		// The call state without URL storage: 448 bytes (with it, 640).
		{"retry, ratelimit, breaker", ambassador.Chain(base, p.RoundTripper, l.RoundTripper, b.RoundTripper), "users", 512},
		{"retry, ratelimit, discovery, breaker", ambassador.Chain(base, p.RoundTripper, l.RoundTripper, svc.RoundTripper, b.RoundTripper), "10.0.0.1:80", 640},
		// The Stack's one object (its context, body wrapper, retry's call
		// state with the URL storage, the re-send guard's state and request
		// copy): 1,272 bytes, with its malloc header the 1,280-byte class
		// (8 bytes more and it is 1,408).
		{"the full Stack", fullStack(t, base), "10.0.0.", 1280},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://users/x", nil)
			require.NoError(t, err)
			call := func() {
				resp.Body = staticBody{}
				r, err := tc.rt.RoundTrip(req)
				if err != nil {
					t.Fatal(err)
				}
				_ = r.Body.Close()
			}
			call()
			assert.Contains(t, sent.URL.Host, tc.host)
			assert.Equal(t, "users", req.URL.Host, "the caller's URL is untouched")
			assert.Equal(t, 1.0, testing.AllocsPerRun(100, call), "allocations per request")

			const n = 200
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for range n {
				call()
			}
			runtime.ReadMemStats(&after)
			perReq := (after.TotalAlloc - before.TotalAlloc) / n
			assert.LessOrEqual(t, perReq, tc.maxBytes, "bytes allocated per request")
		})
	}
}
