package breaker_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
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
)

func dialGRPC(t *testing.T, target string, b *breaker.Breaker) healthpb.HealthClient {
	t.Helper()
	cc, err := grpc.NewClient(target,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(b.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(b.StreamClientInterceptor()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return healthpb.NewHealthClient(cc)
}

func check(ctx context.Context, c healthpb.HealthClient) error {
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

func TestGRPCUnaryTripsAndRefusesWithUnavailable(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.Unavailable)
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 3, OpenTimeout: time.Hour})
	c := dialGRPC(t, addr, b)
	for range 3 {
		err := check(t.Context(), c)
		require.Equal(t, codes.Unavailable, status.Code(err))
		require.NotErrorIs(t, err, breaker.ErrOpen, "the upstream's own answer")
	}
	err := check(t.Context(), c)
	require.Error(t, err)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.ErrorIs(t, err, breaker.ErrOpen)
	var oe *breaker.OpenError
	require.ErrorAs(t, err, &oe)
	assert.Equal(t, addr, oe.Key)
	st, ok := status.FromError(err)
	require.True(t, ok)
	assert.Contains(t, st.Message(), "circuit open")
	assert.Equal(t, int64(3), h.Calls.Load(), "the refused call never reached the server")
	assert.Equal(t, breaker.StateOpen, b.State(addr))
}

func TestGRPCFailureCodes(t *testing.T) {
	tests := []struct {
		code  codes.Code
		trips bool
	}{
		{codes.Unavailable, true},
		{codes.DeadlineExceeded, true}, // the server's, not the caller's deadline
		{codes.Internal, true},
		{codes.Unknown, true},
		{codes.DataLoss, true},
		{codes.OK, false},
		{codes.NotFound, false},
		{codes.InvalidArgument, false},
		{codes.PermissionDenied, false},
		{codes.ResourceExhausted, false},
		{codes.Unimplemented, false},
		{codes.Canceled, false},
	}
	for _, tt := range tests {
		t.Run(tt.code.String(), func(t *testing.T) {
			h := testkit.NewSwitchHealth(tt.code)
			addr := testkit.StartHealth(t, h)
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
			c := dialGRPC(t, addr, b)
			for range 4 {
				_ = check(t.Context(), c)
			}
			if tt.trips {
				assert.Equal(t, breaker.StateOpen, b.State(addr))
				assert.Equal(t, int64(2), h.Calls.Load())
			} else {
				assert.Equal(t, breaker.StateClosed, b.State(addr))
				assert.Equal(t, int64(4), h.Calls.Load())
			}
		})
	}
}

func TestGRPCWithFailureCodes(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.Unavailable)
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour,
		GRPCFailureCodes: []string{"not_found"}})
	c := dialGRPC(t, addr, b)
	for range 3 {
		_ = check(t.Context(), c)
	}
	assert.Equal(t, breaker.StateClosed, b.State(addr), "UNAVAILABLE is no longer a failure")
	h.Set(codes.NotFound, nil)
	for range 3 {
		_ = check(t.Context(), c)
	}
	assert.Equal(t, breaker.StateOpen, b.State(addr))
	assert.Equal(t, int64(5), h.Calls.Load())
}

func TestGRPCCallerDeadlineAndCancelNeverTrip(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	h.Set(codes.OK, make(chan struct{})) // held until the caller gives up
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2})
	c := dialGRPC(t, addr, b)
	for range 3 {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
		err := check(ctx, c)
		cancel()
		require.Equal(t, codes.DeadlineExceeded, status.Code(err))
	}
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(10*time.Millisecond, cancel)
		err := check(ctx, c)
		require.Equal(t, codes.Canceled, status.Code(err))
	}
	assert.Equal(t, breaker.StateClosed, b.State(addr))
	snap := b.Snapshot()
	require.Len(t, snap, 1)
	assert.Equal(t, 0, snap[0].Failures)
}

func TestGRPCDeadUpstreamTripsHealthyNever(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	healthy := testkit.StartHealth(t, h)
	dead := deadAddr(t)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 3, OpenTimeout: time.Hour})
	hc := dialGRPC(t, healthy, b)
	dc := dialGRPC(t, dead, b)
	refused := 0
	for range 10 {
		require.NoError(t, check(t.Context(), hc))
		err := check(t.Context(), dc)
		require.Equal(t, codes.Unavailable, status.Code(err))
		if errors.Is(err, breaker.ErrOpen) {
			refused++
		}
	}
	assert.Equal(t, 7, refused)
	assert.Equal(t, breaker.StateOpen, b.State(dead))
	assert.Equal(t, breaker.StateClosed, b.State(healthy))
	assert.Equal(t, int64(10), h.Calls.Load())
}

// grpcOpenTimeout is the open_timeout of TestGRPCHalfOpenProbes, which
// stays on the wall clock: grpc over loopback cannot run in a synctest
// bubble, and gobreaker reads time.Now itself. The refusal checks must run
// before it goes half-open: with 50ms, two loopback calls in a row under
// -race on a loaded 2-core machine sometimes took longer.
const grpcOpenTimeout = 500 * time.Millisecond

func TestGRPCHalfOpenProbes(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.Internal)
	addr := testkit.StartHealth(t, h)
	const probes = 2
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1, OpenTimeout: grpcOpenTimeout, HalfOpenRequests: probes})
	c := dialGRPC(t, addr, b)
	require.Equal(t, codes.Internal, status.Code(check(t.Context(), c)))
	require.Equal(t, breaker.StateOpen, b.State(addr))

	release := make(chan struct{})
	h.Set(codes.OK, release)
	require.Eventually(t, func() bool { return b.State(addr) == breaker.StateHalfOpen }, 2*time.Second, 5*time.Millisecond)
	const n = 20
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { errs <- check(t.Context(), c) })
	}
	for range n - probes {
		err := <-errs
		assert.ErrorIs(t, err, breaker.ErrOpen)
		assert.Equal(t, codes.Unavailable, status.Code(err))
	}
	require.Eventually(t, func() bool { return h.Calls.Load() == 1+probes }, 2*time.Second, 5*time.Millisecond)
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		assert.NoError(t, err)
	}
	assert.Equal(t, int64(1+probes), h.Calls.Load())
	assert.Equal(t, breaker.StateClosed, b.State(addr))
}

func TestGRPCMethodKey(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.Unavailable)
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour}, breaker.WithGRPCMethodKey())
	c := dialGRPC(t, addr, b)
	for range 3 {
		_ = check(t.Context(), c)
	}
	checkKey := addr + "/grpc.health.v1.Health/Check"
	assert.Equal(t, breaker.StateOpen, b.State(checkKey))
	assert.False(t, b.Ready(checkKey))
	assert.True(t, b.Ready(addr), "no breaker for the bare target")

	h.Set(codes.OK, nil)
	s, err := c.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err, "another method has its own breaker")
	_, err = s.Recv()
	require.NoError(t, err)
	_, err = s.Recv()
	require.ErrorIs(t, err, io.EOF)
	assert.Equal(t, breaker.StateClosed, b.State(addr+"/grpc.health.v1.Health/Watch"))
	var keys []string
	for _, k := range b.Snapshot() {
		keys = append(keys, k.Key)
	}
	assert.Equal(t, []string{checkKey, addr + "/grpc.health.v1.Health/Watch"}, keys)
}

// watch opens a Watch stream and reads it to its end, returning the final error.
func watch(ctx context.Context, c healthpb.HealthClient) error {
	s, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	for {
		if _, err := s.Recv(); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
	}
}

func TestGRPCStreams(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
	c := dialGRPC(t, addr, b)

	require.NoError(t, watch(t.Context(), c))
	snap := b.Snapshot()
	require.Len(t, snap, 1)
	assert.Equal(t, breaker.KeyState{Key: addr, State: breaker.StateClosed, Requests: 1, Successes: 1}, snap[0])

	h.Set(codes.DataLoss, nil)
	for range 2 {
		assert.Equal(t, codes.DataLoss, status.Code(watch(t.Context(), c)), "the stream ends with the failure code")
	}
	assert.Equal(t, breaker.StateOpen, b.State(addr))
	_, err := c.Watch(t.Context(), &healthpb.HealthCheckRequest{})
	require.Error(t, err, "NewStream is refused")
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.ErrorIs(t, err, breaker.ErrOpen)
	assert.Equal(t, int64(3), h.Calls.Load())
	require.ErrorIs(t, check(t.Context(), c), breaker.ErrOpen, "unary calls share the target's breaker")
}

func TestGRPCStreamCallerCancelIsIgnored(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	h.Set(codes.OK, make(chan struct{}))
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1})
	c := dialGRPC(t, addr, b)
	for range 3 {
		ctx, cancel := context.WithCancel(t.Context())
		s, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
		require.NoError(t, err)
		_, err = s.Recv()
		require.NoError(t, err)
		cancel() // abandon the stream without reading its end
	}
	require.Eventually(t, func() bool {
		snap := b.Snapshot()
		return len(snap) == 1 && snap[0].InFlight == 0
	}, 2*time.Second, 5*time.Millisecond, "a cancelled stream releases its place")
	assert.Equal(t, breaker.StateClosed, b.State(addr))
	assert.Equal(t, 0, b.Snapshot()[0].Failures)
}

func TestGRPCDeadUpstreamStreams(t *testing.T) {
	dead := deadAddr(t)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
	c := dialGRPC(t, dead, b)
	for range 2 {
		err := watch(t.Context(), c)
		require.Equal(t, codes.Unavailable, status.Code(err))
		require.NotErrorIs(t, err, breaker.ErrOpen)
	}
	assert.Equal(t, breaker.StateOpen, b.State(dead))
	assert.ErrorIs(t, watch(t.Context(), c), breaker.ErrOpen)
}

// startUpload serves a client-streaming method by hand (no protoc):
// the client sends requests, the server answers once with upload's code.
func startUpload(t *testing.T, code *atomic.Int32, calls *atomic.Int64) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s := grpc.NewServer()
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Upload",
		HandlerType: (*any)(nil),
		Streams: []grpc.StreamDesc{{
			StreamName:    "Up",
			ClientStreams: true,
			Handler: func(_ any, ss grpc.ServerStream) error {
				calls.Add(1)
				for {
					if err := ss.RecvMsg(&healthpb.HealthCheckRequest{}); err == io.EOF {
						break
					} else if err != nil {
						return err
					}
				}
				if c := codes.Code(code.Load()); c != codes.OK {
					return status.Error(c, "upload failed")
				}
				return ss.SendMsg(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
			},
		}},
	}, nil)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Stop(); <-done })
	return lis.Addr().String()
}

func TestGRPCClientStreamingOutcome(t *testing.T) {
	var code atomic.Int32
	var calls atomic.Int64
	addr := startUpload(t, &code, &calls)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(b.StreamClientInterceptor()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	upload := func() error {
		s, err := cc.NewStream(t.Context(), &grpc.StreamDesc{ClientStreams: true}, "/test.Upload/Up")
		if err != nil {
			return err
		}
		for range 3 {
			if err := s.SendMsg(&healthpb.HealthCheckRequest{Service: "x"}); err != nil {
				break // the status comes with RecvMsg
			}
		}
		if err := s.CloseSend(); err != nil {
			return err
		}
		return s.RecvMsg(&healthpb.HealthCheckResponse{})
	}

	require.NoError(t, upload())
	snap := b.Snapshot()
	require.Len(t, snap, 1)
	assert.Equal(t, breaker.KeyState{Key: addr, State: breaker.StateClosed, Requests: 1, Successes: 1}, snap[0],
		"the single reply ends the stream as a success, counted before RecvMsg returns")

	code.Store(int32(codes.Internal))
	for range 2 {
		assert.Equal(t, codes.Internal, status.Code(upload()))
	}
	assert.Equal(t, breaker.StateOpen, b.State(addr))
	assert.ErrorIs(t, upload(), breaker.ErrOpen)
	assert.Equal(t, int64(3), calls.Load())
}

// The breaker keys a call by the endpoint part of its ClientConn's target,
// whatever the target's form, and keeps the keys of a breaker shared by
// ClientConns of different targets apart (the first target's key is
// remembered, the others' are parsed each time).
func TestGRPCTargetFormsKeyTheEndpoint(t *testing.T) {
	addr := testkit.StartHealth(t, testkit.NewSwitchHealth(codes.Unavailable))
	forms := []string{addr, "passthrough:///" + addr, "dns:///" + addr}
	for _, target := range forms {
		t.Run(target, func(t *testing.T) {
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
			c := dialGRPC(t, target, b)
			for range 2 {
				require.NotErrorIs(t, check(t.Context(), c), breaker.ErrOpen)
			}
			var oe *breaker.OpenError
			require.ErrorAs(t, check(t.Context(), c), &oe)
			assert.Equal(t, addr, oe.Key)
			assert.Equal(t, breaker.StateOpen, b.State(addr))
		})
	}
	t.Run("shared", func(t *testing.T) {
		other := testkit.StartHealth(t, testkit.NewSwitchHealth(codes.OK))
		b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Hour})
		first := dialGRPC(t, "passthrough:///"+other, b) // its target is the remembered one
		failing := dialGRPC(t, "dns:///"+addr, b)
		for range 3 {
			require.NoError(t, check(t.Context(), first))
			_ = check(t.Context(), failing)
		}
		assert.Equal(t, breaker.StateClosed, b.State(other))
		assert.Equal(t, breaker.StateOpen, b.State(addr))
		assert.ErrorIs(t, check(t.Context(), failing), breaker.ErrOpen)
		require.NoError(t, check(t.Context(), first))
	})
}
