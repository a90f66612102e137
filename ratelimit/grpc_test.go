package ratelimit_test

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
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/internal/refusal"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/ratelimit"
)

// healthServer counts the calls that reach it. With pushback set it fails
// them with code and a grpc-retry-pushback-ms trailer.
type healthServer struct {
	healthpb.UnimplementedHealthServer
	checks, watches atomic.Int64
	mu              sync.Mutex
	code            codes.Code
	pushback        string
}

func (s *healthServer) fail(code codes.Code, pushback string) {
	s.mu.Lock()
	s.code, s.pushback = code, pushback
	s.mu.Unlock()
}

func (s *healthServer) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.code == codes.OK {
		return nil
	}
	return status.Error(s.code, "slow down")
}

func (s *healthServer) trailer() metadata.MD {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pushback == "" {
		return nil
	}
	return metadata.Pairs("grpc-retry-pushback-ms", s.pushback)
}

func (s *healthServer) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	s.checks.Add(1)
	if err := s.failure(); err != nil {
		if md := s.trailer(); md != nil {
			_ = grpc.SetTrailer(ctx, md)
		}
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (s *healthServer) Watch(_ *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	s.watches.Add(1)
	if err := s.failure(); err != nil {
		if md := s.trailer(); md != nil {
			stream.SetTrailer(md)
		}
		return err
	}
	return stream.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING})
}

// grpcUpstream starts a real grpc server on 127.0.0.1:0 and returns it with
// its address.
func grpcUpstream(t *testing.T) (*healthServer, string) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	hs := &healthServer{}
	healthpb.RegisterHealthServer(srv, hs)
	testkit.ServeGRPC(t, srv, lis)
	return hs, lis.Addr().String()
}

// grpcClient dials addr through lim's interceptors.
func grpcClient(t *testing.T, lim *ratelimit.Limiter, addr string) healthpb.HealthClient {
	conn, err := grpc.NewClient(addr,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(lim.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(lim.StreamClientInterceptor()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

func check(ctx context.Context, c healthpb.HealthClient) error {
	_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
	return err
}

// watch opens a stream and reads until it ends; io.EOF is success.
func watch(ctx context.Context, c healthpb.HealthClient) error {
	stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	for {
		if _, err := stream.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
}

// requireLimited checks that err is the interceptors' refusal.
func requireLimited(t *testing.T, err error, key string, retryAfter time.Duration) {
	t.Helper()
	require.Error(t, err)
	assert.Equal(t, codes.ResourceExhausted, status.Code(err))
	require.ErrorIs(t, err, ratelimit.ErrLimited)
	assert.True(t, refusal.Is(err), "retry sees a local refusal and does not retry it")
	var le *ratelimit.LimitedError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, key, le.Key)
	assert.Equal(t, retryAfter, le.RetryAfter)
}

// grpcCallKinds are the two call shapes the gRPC tests run: a unary call
// and a stream, each with the server counter it moves.
var grpcCallKinds = []struct {
	name string
	call func(context.Context, healthpb.HealthClient) error
	hits func(*healthServer) int64
}{
	{"unary", check, func(s *healthServer) int64 { return s.checks.Load() }},
	{"stream", watch, func(s *healthServer) int64 { return s.watches.Load() }},
}

func TestGRPCRejectMode(t *testing.T) {
	for _, tc := range grpcCallKinds {
		t.Run(tc.name, func(t *testing.T) {
			hs, addr := grpcUpstream(t)
			clk := newFakeClock()
			lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5}, clk.Option())
			require.NoError(t, err)
			c := grpcClient(t, lim, addr)

			errs := fanOut(20, func() error { return tc.call(context.Background(), c) })
			var limited int
			for _, err := range errs {
				if err != nil {
					requireLimited(t, err, addr, 20*time.Millisecond)
					limited++
				}
			}
			assert.Equal(t, int64(5), tc.hits(hs), "exactly burst calls reach the server")
			assert.Equal(t, 15, limited)
			assert.Empty(t, clk.Sleeps())
		})
	}
}

func TestGRPCWaitMode(t *testing.T) {
	for _, tc := range grpcCallKinds {
		t.Run(tc.name, func(t *testing.T) {
			hs, addr := grpcUpstream(t)
			clk := newFakeClock()
			lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5, MaxWait: time.Second}, clk.Option())
			require.NoError(t, err)
			c := grpcClient(t, lim, addr)

			for _, err := range fanOut(20, func() error { return tc.call(context.Background(), c) }) {
				require.NoError(t, err)
			}
			assert.Equal(t, int64(20), tc.hits(hs))
			sleeps := clk.Sleeps()
			require.Len(t, sleeps, 15)
			for i, want := range multiples(20*time.Millisecond, 15) {
				assert.InDelta(t, float64(want), float64(sleeps[i]), float64(time.Microsecond), "wait %d", i)
			}
		})
	}
}

func TestGRPCDeadlineShorterThanWait(t *testing.T) {
	hs, addr := grpcUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 5, MaxWait: time.Second}, clk.Option())
	require.NoError(t, err)
	c := grpcClient(t, lim, addr)
	for range 5 {
		require.NoError(t, check(context.Background(), c))
	}

	ctx, cancel := context.WithDeadline(context.Background(), clk.Now().Add(10*time.Millisecond))
	defer cancel()
	start := time.Now()
	requireLimited(t, check(ctx, c), addr, 20*time.Millisecond)
	assert.Less(t, time.Since(start), time.Second)
	assert.Empty(t, clk.Sleeps(), "no sleep for a wait that cannot finish in time")
	assert.Equal(t, int64(5), hs.checks.Load())

	clk.Advance(20 * time.Millisecond)
	require.NoError(t, check(context.Background(), c), "the refused reservation's token went back")
	assert.Empty(t, clk.Sleeps())
}

func TestGRPCCancelledWait(t *testing.T) {
	hs, addr := grpcUpstream(t)
	clk := newFakeClock()
	clk.block = true
	clk.sleeping = make(chan time.Duration, 1)
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 1, MaxWait: time.Second}, clk.Option())
	require.NoError(t, err)
	c := grpcClient(t, lim, addr)
	clk.block = false
	require.NoError(t, check(context.Background(), c))
	clk.block = true

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- check(ctx, c) }()
	<-clk.sleeping
	cancel()
	err = <-done
	assert.Equal(t, codes.Canceled, status.Code(err))
	assert.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, ratelimit.ErrLimited)
	assert.Equal(t, int64(1), hs.checks.Load())
}

func TestGRPCPushbackPausesKey(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cfg       ratelimit.Config
		code      codes.Code
		pushback  string
		call      func(context.Context, healthpb.HealthClient) error
		wantPause time.Duration
	}{
		{"unary resource exhausted", ratelimit.Config{RPS: 100}, codes.ResourceExhausted, "3000", check, 3 * time.Second},
		{"unary unavailable", ratelimit.Config{RPS: 100}, codes.Unavailable, "1500", check, 1500 * time.Millisecond},
		{"stream", ratelimit.Config{RPS: 100}, codes.ResourceExhausted, "2000", watch, 2 * time.Second},
		{"capped", ratelimit.Config{RPS: 100}, codes.ResourceExhausted, "999999999999", check, ratelimit.DefaultMaxPause},
		{"other code", ratelimit.Config{RPS: 100}, codes.Internal, "3000", check, 0},
		{"negative pushback", ratelimit.Config{RPS: 100}, codes.ResourceExhausted, "-1", check, 0},
		{"no trailer", ratelimit.Config{RPS: 100}, codes.ResourceExhausted, "", check, 0},
		{"ignore_retry_after", ratelimit.Config{RPS: 100, IgnoreRetryAfter: true}, codes.ResourceExhausted, "3000", check, 0},
		{"ignore_retry_after stream", ratelimit.Config{RPS: 100, IgnoreRetryAfter: true}, codes.ResourceExhausted, "3000", watch, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs, addr := grpcUpstream(t)
			other, otherAddr := grpcUpstream(t)
			clk := newFakeClock()
			lim, err := ratelimit.New(tc.cfg, clk.Option())
			require.NoError(t, err)
			c := grpcClient(t, lim, addr)

			hs.fail(tc.code, tc.pushback)
			err = tc.call(context.Background(), c)
			assert.Equal(t, tc.code, status.Code(err), "the server's answer is passed through")
			assert.NotErrorIs(t, err, ratelimit.ErrLimited)
			hs.fail(codes.OK, "")

			err = tc.call(context.Background(), c)
			if tc.wantPause == 0 {
				require.NoError(t, err)
				return
			}
			requireLimited(t, err, addr, tc.wantPause)
			require.NoError(t, check(context.Background(), grpcClient(t, lim, otherAddr)), "another target is not affected")
			assert.Equal(t, int64(1), other.checks.Load())

			clk.Advance(tc.wantPause)
			require.NoError(t, tc.call(context.Background(), c), "the pause ends")
		})
	}
}

func TestGRPCMethodKey(t *testing.T) {
	_, addr := grpcUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1}, clk.Option(), ratelimit.WithGRPCMethodKey())
	require.NoError(t, err)
	c := grpcClient(t, lim, addr)
	require.NoError(t, check(context.Background(), c))
	require.NoError(t, watch(context.Background(), c), "another method, another bucket")
	requireLimited(t, check(context.Background(), c), addr+"/grpc.health.v1.Health/Check", time.Second)
}

func TestGRPCGlobalScope(t *testing.T) {
	a, addrA := grpcUpstream(t)
	b, addrB := grpcUpstream(t)
	clk := newFakeClock()
	lim, err := ratelimit.New(ratelimit.Config{RPS: 50, Burst: 2, Scope: "global"}, clk.Option())
	require.NoError(t, err)
	ca, cb := grpcClient(t, lim, addrA), grpcClient(t, lim, addrB)
	require.NoError(t, check(context.Background(), ca))
	require.NoError(t, check(context.Background(), cb))
	requireLimited(t, check(context.Background(), ca), "*", 20*time.Millisecond)
	requireLimited(t, watch(context.Background(), cb), "*", 20*time.Millisecond)
	assert.Equal(t, int64(1), a.checks.Load())
	assert.Equal(t, int64(1), b.checks.Load())
}
