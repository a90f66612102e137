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

type trackFunc func(b *breaker.Breaker, ctx context.Context, key string, cs grpc.ClientStream, serverStreams bool) (grpc.ClientStream, error)

// trackers are the two ways to put an opened stream through a key's
// breaker; TrackStreamAtEnd must count what TrackStream counts.
var trackers = []struct {
	name  string
	track trackFunc
}{
	{"TrackStream", (*breaker.Breaker).TrackStream},
	{"TrackStreamAtEnd", (*breaker.Breaker).TrackStreamAtEnd},
}

// trackedClient is a health client whose streams go through track under
// key "ep-1"; refused receives the breaker's refusals.
func trackedClient(t *testing.T, addr string, b *breaker.Breaker, track trackFunc, refused *error) healthpb.HealthClient {
	t.Helper()
	icpt := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		cs, err := streamer(ctx, desc, cc, method, opts...)
		if err != nil {
			return nil, err
		}
		ts, err := track(b, ctx, "ep-1", cs, desc.ServerStreams)
		if err != nil && refused != nil {
			*refused = err
		}
		return ts, err
	}
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithStreamInterceptor(icpt))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}

// Both trackers count a stream once when it ends (success, failure, or
// ignored when its context ends first), trip on failures and refuse
// without sending once open.
func TestTrackStreamAtEndCountsAsTrackStream(t *testing.T) {
	for _, tc := range trackers {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewSwitchHealth(codes.OK)
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
			var refused error
			c := trackedClient(t, testkit.StartHealth(t, h), b, tc.track, &refused)

			require.NoError(t, watch(t.Context(), c))
			assert.Equal(t, []breaker.KeyState{{Key: "ep-1", State: breaker.StateClosed, Requests: 1, Successes: 1}}, b.Snapshot())

			// A stream given up on (its context cancelled, its status never
			// read) is counted as a request, neither success nor failure.
			hold := make(chan struct{})
			defer close(hold)
			h.Set(codes.OK, hold)
			ctx, cancel := context.WithCancel(t.Context())
			s, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			_, err = s.Recv()
			require.NoError(t, err)
			cancel()
			require.Eventually(t, func() bool { return b.Snapshot()[0].InFlight == 0 }, 5*time.Second, time.Millisecond)
			assert.Equal(t, []breaker.KeyState{{Key: "ep-1", State: breaker.StateClosed, Requests: 2, Successes: 1}}, b.Snapshot())

			h.Set(codes.Unavailable, nil)
			for range 2 {
				assert.Equal(t, codes.Unavailable, status.Code(watch(t.Context(), c)))
			}
			assert.Equal(t, breaker.StateOpen, b.State("ep-1"), "two failed streams, each counted once, tripped it")
			_, err = c.Watch(t.Context(), &healthpb.HealthCheckRequest{})
			assert.Equal(t, codes.Unavailable, status.Code(err))
			assert.ErrorIs(t, refused, breaker.ErrOpen)
			assert.Equal(t, int64(4), h.Calls.Load(), "the refused stream carried no request to the upstream")
		})
	}
}

// A stream opened while the breaker was closed, that ends after the
// breaker tripped and turned half-open, is not that half-open breaker's
// probe: its success does not close it.
func TestTrackStreamAtEndDropsAStreamThatStraddledATrip(t *testing.T) {
	for _, tc := range trackers {
		t.Run(tc.name, func(t *testing.T) {
			h := testkit.NewSwitchHealth(codes.OK)
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: 20 * time.Millisecond})
			c := trackedClient(t, testkit.StartHealth(t, h), b, tc.track, nil)

			hold := make(chan struct{})
			h.Set(codes.OK, hold)
			s, err := c.Watch(t.Context(), &healthpb.HealthCheckRequest{})
			require.NoError(t, err)
			_, err = s.Recv() // the upstream holds the stream open now
			require.NoError(t, err)

			h.Set(codes.Unavailable, nil)
			for range 2 {
				assert.Equal(t, codes.Unavailable, status.Code(watch(t.Context(), c)))
			}
			require.Eventually(t, func() bool { return b.State("ep-1") == breaker.StateHalfOpen }, 5*time.Second, time.Millisecond)

			close(hold) // the held stream ends with OK
			_, err = s.Recv()
			require.Error(t, err) // io.EOF
			assert.Equal(t, []breaker.KeyState{{Key: "ep-1", State: breaker.StateHalfOpen}}, b.Snapshot(),
				"the stream that straddled the trip counted neither as a probe nor at all")
		})
	}
}
