package discovery_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/refusal"
)

var errGateRefused = refusal.New("test gate: refused")

// recordingGate refuses the endpoints in refuse and records every call it
// admits and every end it is told of.
type recordingGate struct {
	refuse map[string]bool
	on     atomic.Bool // refusing

	mu       sync.Mutex
	refused  map[string]int
	admitted map[string]int
	ended    map[string][]error
}

func newRecordingGate(refuse ...string) *recordingGate {
	g := &recordingGate{refuse: map[string]bool{}, refused: map[string]int{}, admitted: map[string]int{}, ended: map[string][]error{}}
	for _, a := range refuse {
		g.refuse[a] = true
	}
	return g
}

func (g *recordingGate) StartCall(_ context.Context, endpoint string) (any, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.on.Load() && g.refuse[endpoint] {
		g.refused[endpoint]++
		return nil, errGateRefused
	}
	g.admitted[endpoint]++
	return endpoint, nil
}

func (g *recordingGate) EndCall(call any, _ context.Context, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	ep := call.(string)
	g.ended[ep] = append(g.ended[ep], err)
}

// TestGRPCGateAtPick: a connection dialed with GatedDialOptions asks the
// gate at every pick and tells it how each call ended; an endpoint the gate
// refuses is replaced by another ready one, so no call fails for it.
func TestGRPCGateAtPick(t *testing.T) {
	a, b := newGRPCUpstream(t, 0), newGRPCUpstream(t, 0)
	s, err := discovery.NewService("users", discovery.Static(a.addr, b.addr), discovery.Config{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	g := newRecordingGate(a.addr)
	conn, err := grpc.NewClient(s.Target(), append(s.GatedDialOptions(g), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c := healthpb.NewHealthClient(conn)

	callUntilBoth(t, c, a, b)
	g.mu.Lock()
	clear(g.admitted)
	clear(g.ended)
	g.mu.Unlock()
	aHits, bHits := a.hits.Load(), b.hits.Load()
	g.on.Store(true)
	const calls = 6
	for range calls {
		require.NoError(t, check(t.Context(), c), "a refused endpoint is replaced by a ready one")
	}
	b.fail.Store(true)
	err = check(t.Context(), c)
	require.Equal(t, codes.Unavailable, status.Code(err))

	g.mu.Lock()
	defer g.mu.Unlock()
	assert.Equal(t, aHits, a.hits.Load(), "a refused endpoint gets no call")
	assert.Positive(t, g.refused[a.addr], "round robin picked a")
	assert.Zero(t, g.admitted[a.addr])
	n := int(b.hits.Load() - bHits)
	require.Equal(t, calls+1, n)
	assert.Equal(t, n, g.admitted[b.addr], "every call admitted")
	require.Len(t, g.ended[b.addr], n, "every admitted call ended once")
	for _, e := range g.ended[b.addr][:n-1] {
		assert.NoError(t, e)
	}
	assert.Equal(t, codes.Unavailable, status.Code(g.ended[b.addr][n-1]), "the failure as grpc reported it")
}
