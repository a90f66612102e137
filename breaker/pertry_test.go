package breaker_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

// TestGRPCPerTryTimeoutCountsAsFailure: behind the retry interceptor, a
// unary call to an endpoint that never answers is cut by retry's per-try
// timeout while the caller's own context is still live. That is the
// endpoint's failure (DESIGN: a failure is anything but the caller's
// cancellation), as it already is over HTTP, so the breaker must trip;
// otherwise a hanging endpoint is never ejected.
func TestGRPCPerTryTimeoutCountsAsFailure(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	h.Set(codes.OK, make(chan struct{})) // held until the attempt's context ends
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
	p, err := retry.New(retry.Config{MaxAttempts: 1, PerTryTimeout: 20 * time.Millisecond})
	require.NoError(t, err)
	cc, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithChainUnaryInterceptor(p.UnaryClientInterceptor(), b.UnaryClientInterceptor()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	c := healthpb.NewHealthClient(cc)

	for i := range 2 {
		err := check(t.Context(), c)
		require.Equal(t, codes.DeadlineExceeded, status.Code(err), "call %d", i)
		require.NoError(t, t.Context().Err())
	}
	assert.Equal(t, breaker.StateOpen, b.State(addr), "two per-try timeouts in a row")
	err = check(t.Context(), c)
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, int64(2), h.Calls.Load())
}

// TestHedgeLoserNeverCountsAsFailure: with hedging, the copy that loses is
// cancelled by the retry layer because another copy answered. That is
// nobody's failure, least of all the endpoint's: the breaker below retry
// must not count it, or a slow but healthy endpoint is ejected by the
// hedges that beat it.
func TestHedgeLoserNeverCountsAsFailure(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			<-r.Context().Done() // the first copy hangs until it is abandoned
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour})
	p, err := retry.New(retry.Config{Hedge: retry.HedgeConfig{Delay: 10 * time.Millisecond}})
	require.NoError(t, err)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	c := &http.Client{Transport: p.RoundTripper(b.RoundTripper(tr))}

	code, err := get(t.Context(), c, srv.URL)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code)
	require.Eventually(t, func() bool {
		s := b.Snapshot()
		return len(s) == 1 && s[0].InFlight == 0
	}, 5*time.Second, time.Millisecond, "the loser is reaped")
	s := b.Snapshot()
	assert.Equal(t, 0, s[0].Failures, "the abandoned hedge loser")
	assert.Equal(t, breaker.StateClosed, b.State(host))
}
