package breaker_test

import (
	"context"
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
)

// TrackStream counts a stream opened elsewhere under the key it is given
// (here "ep-1", not the target), once per stream, and refuses with the
// interceptors' error once that key's breaker is open.
func TestTrackStream(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
	var refused error
	track := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		ts, err := b.TrackStream(ctx, "ep-1", cs, desc.ServerStreams)
		if err != nil {
			refused = err
		}
		return ts, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStreamInterceptor(track))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	c := healthpb.NewHealthClient(cc)

	require.NoError(t, watch(t.Context(), c))
	assert.Equal(t, []breaker.KeyState{{Key: "ep-1", State: breaker.StateClosed, Requests: 1, Successes: 1}}, b.Snapshot())

	h.Set(codes.Unavailable, nil)
	for range 2 {
		assert.Equal(t, codes.Unavailable, status.Code(watch(t.Context(), c)))
	}
	assert.Equal(t, breaker.StateOpen, b.State("ep-1"), "two failed streams, each counted once, tripped it")
	_, err = c.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.ErrorIs(t, refused, breaker.ErrOpen)
	assert.Equal(t, int64(3), h.Calls.Load(), "the refused stream carried no request to the upstream")
	assert.Equal(t, 1, b.Len(), "no key for the target")
}
