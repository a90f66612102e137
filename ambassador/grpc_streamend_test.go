package ambassador_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
)

// sendUntilEnded sends on s until a send fails with io.EOF: the stream has
// ended at the endpoint and its end has reached the sender.
func sendUntilEnded(t *testing.T, s grpc.ClientStream) {
	t.Helper()
	for sends := 0; ; sends++ {
		err := s.SendMsg(&emptypb.Empty{})
		if errors.Is(err, io.EOF) {
			return
		}
		require.NoError(t, err)
		require.Less(t, sends, 1_000_000, "the stream's end never reached SendMsg")
	}
}

var clientStreaming = &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}

// TestDialOptionsCountsAStreamRefusedWhileSending: a client-streaming call
// that the endpoint answers UNAVAILABLE before the caller has finished
// sending is a failure of that endpoint, also when the caller's SendMsg is
// what first sees the stream end (io.EOF) and its RecvMsg then reads the
// status. grpc-go reports such an attempt to the balancer as a success
// (its retry path ends the attempt with the io.EOF SendMsg got, read as
// OK), so a breaker counting at the pick saw successes only and never
// opened; the outcome must be the status the caller receives. Two such
// calls open the endpoint's breaker and the third is refused unsent.
func TestDialOptionsCountsAStreamRefusedWhileSending(t *testing.T) {
	needsRealDiscovery(t)
	addr, calls := testkit.UnavailableGRPC(t)
	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{addr}},
		Breaker:   &breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour},
	})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for i := range 2 {
		s, err := conn.NewStream(ctx, clientStreaming, "/t.T/Upload")
		require.NoError(t, err)
		sendUntilEnded(t, s)
		err = s.RecvMsg(&emptypb.Empty{})
		assert.Equal(t, codes.Unavailable, status.Code(err), "call %d: the endpoint's own answer", i)
		assert.False(t, errors.Is(err, breaker.ErrOpen), "call %d was sent", i)
	}
	require.Equal(t, int64(2), calls.Load())

	s, err := conn.NewStream(ctx, clientStreaming, "/t.T/Upload")
	if err == nil {
		err = s.RecvMsg(&emptypb.Empty{})
	}
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.True(t, errors.Is(err, discovery.ErrNoEndpoints) || errors.Is(err, breaker.ErrOpen),
		"refused by the open breaker, not sent: %v", err)
	assert.Equal(t, int64(2), calls.Load(), "the third call never reached the endpoint")
}

// TestDialOptionsAbandonedStreamEnds: a client-streaming call whose end
// reached only SendMsg, abandoned by cancelling its context without a
// RecvMsg, still ends for the balancer: the endpoint's in-flight count
// returns to zero (a breaker's half-open probe slot is freed the same way).
func TestDialOptionsAbandonedStreamEnds(t *testing.T) {
	needsRealDiscovery(t)
	addr, _ := testkit.UnavailableGRPC(t)
	stack, err := ambassador.NewStack(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{addr}},
		Breaker:   &breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = stack.Close() })
	opts, err := stack.DialOptions()
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	inFlight := func() int { return stack.Discovery().Endpoints()[0].InFlight }

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	s, err := conn.NewStream(ctx, clientStreaming, "/t.T/Upload")
	require.NoError(t, err)
	sendUntilEnded(t, s)
	assert.Equal(t, 1, inFlight(), "held until the caller sees the end")
	cancel()
	require.Eventually(t, func() bool { return inFlight() == 0 }, 10*time.Second, time.Millisecond,
		"the abandoned call ended for the balancer")
}
