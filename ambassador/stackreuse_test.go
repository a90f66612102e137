package ambassador_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// TestStackRequestsNeverShareState: a Stack keeps a request's call state,
// its first attempt's request copy and the re-send guard's state and
// request copy in one allocation per request. Concurrent requests, each
// with its own header, path, body and caller's trace, half of them retried
// once, must each get their own back: the upstream echoes the right body
// and header, resp.Request is the request's own, and the caller's GotConn
// hook of each request fires once per attempt of that request and never
// for another's.
func TestStackRequestsNeverShareState(t *testing.T) {
	up := testkit.NewFirstAttemptFails()
	srv := httptest.NewServer(up)
	t.Cleanup(srv.Close)
	s := newTransport(t, ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{hostOf(t, srv.URL)}},
		Retry: &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond,
			Budget: retry.BudgetConfig{Disabled: true}},
		RateLimit: &ratelimit.Config{RPS: 1e6},
		Breaker:   &breaker.Config{ConsecutiveFailures: 1_000_000}}, quietLogs)

	const workers, perWorker = 8, 25
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				id := fmt.Sprintf("%d-%d", w, i)
				path := "/" + id
				if i%2 == 0 {
					path += "/retry"
				}
				if !assert.NoError(t, sendThroughStack(s, up, path, id)) {
					return
				}
			}
		}()
	}
	wg.Wait()
}

// sendThroughStack sends one PUT with header X-Id id, body "body-"+id and a
// trace of its own counting GotConn, and checks what came back.
func sendThroughStack(s http.RoundTripper, up *testkit.FirstAttemptFails, path, id string) error {
	var conns atomic.Int64
	ctx := withGotConnCounter(context.Background(), &conns)
	body := "body-" + id
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://users"+path, strings.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("X-Id", id)
	resp, err := s.RoundTrip(req)
	if err != nil {
		return err
	}
	got, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	switch {
	case err != nil:
		return err
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("%s: status %d", id, resp.StatusCode)
	case string(got) != body || resp.Header.Get("X-Echo-Id") != id:
		return fmt.Errorf("%s: upstream saw body %q, X-Id %q", id, got, resp.Header.Get("X-Echo-Id"))
	case resp.Request == req || resp.Request.Header.Get("X-Id") != id || resp.Request.URL.Path != path:
		return fmt.Errorf("%s: resp.Request is not this request's attempt", id)
	case req.URL.Host != "users" || req.Header.Get("X-Id") != id:
		return fmt.Errorf("%s: the caller's request was changed", id)
	}
	if n, want := conns.Load(), int64(up.Attempts(id)); n != want {
		return fmt.Errorf("%s: the caller's GotConn fired %d times for %d attempts", id, n, want)
	}
	return nil
}

// The first RoundTrip through the re-send guard of a Stack request takes
// its state from the Stack's allocation: with retry, rate limit, discovery
// and breaker, a request costs the Stack one allocation over its base.
func TestStackFullAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under -race")
	}
	s, err := ambassador.NewStack(ambassador.ServiceConfig{Name: "users",
		Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}},
		Retry:     &retry.Config{},
		RateLimit: &ratelimit.Config{RPS: 1e9},
		Breaker:   &breaker.Config{}}, ambassador.WithBase(noopBase), quietLogs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	req, err := http.NewRequest(http.MethodGet, "http://users/x", nil)
	require.NoError(t, err)
	call := func() {
		resp, err := s.RoundTrip(req)
		if err == nil {
			_ = resp.Body.Close()
		}
	}
	call()
	base := testing.AllocsPerRun(200, func() {
		resp, _ := noopBase.RoundTrip(req)
		_ = resp.Body.Close()
	})
	n := testing.AllocsPerRun(200, call)
	assert.Equal(t, base+1, n, "allocations per request: base %v, stack %v", base, n)
}
