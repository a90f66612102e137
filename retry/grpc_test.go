package retry_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/retry"
)

// testServer is a grpc TestService whose first calls fail as told.
type testServer struct {
	testgrpc.UnimplementedTestServiceServer
	calls   atomic.Int32
	failFor int32
	fail    func(ctx context.Context) error

	mu      sync.Mutex
	streamN []int // response sizes asked for, per stream call
}

func (s *testServer) UnaryCall(ctx context.Context, req *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s.calls.Add(1) <= s.failFor {
		return nil, s.fail(ctx)
	}
	return &testgrpc.SimpleResponse{Payload: req.GetPayload()}, nil
}

func (s *testServer) StreamingOutputCall(req *testgrpc.StreamingOutputCallRequest, stream grpc.ServerStreamingServer[testgrpc.StreamingOutputCallResponse]) error {
	n := s.calls.Add(1)
	s.mu.Lock()
	s.streamN = append(s.streamN, len(req.GetResponseParameters()))
	s.mu.Unlock()
	failing := n <= s.failFor
	if failing && req.GetPayload().GetBody() == nil {
		return s.fail(stream.Context()) // before any message
	}
	for i, rp := range req.GetResponseParameters() {
		if err := stream.Send(&testgrpc.StreamingOutputCallResponse{Payload: &testgrpc.Payload{Body: make([]byte, rp.GetSize())}}); err != nil {
			return err
		}
		if failing && i == 0 {
			return s.fail(stream.Context()) // after the first message
		}
	}
	return nil
}

func (s *testServer) FullDuplexCall(stream grpc.BidiStreamingServer[testgrpc.StreamingOutputCallRequest, testgrpc.StreamingOutputCallResponse]) error {
	s.calls.Add(1)
	return status.Error(codes.Unavailable, "down")
}

func unavailable(context.Context) error { return status.Error(codes.Unavailable, "try again") }

// startGRPC serves srv on loopback and returns a client whose calls pass
// through p's interceptors.
func startGRPC(t *testing.T, srv *testServer, p *retry.Policy) testgrpc.TestServiceClient {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	gs := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(gs, srv)
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	cc, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(p.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(p.StreamClientInterceptor()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	return testgrpc.NewTestServiceClient(cc)
}

func TestUnaryRetriesUnavailable(t *testing.T) {
	srv := &testServer{failFor: 2, fail: unavailable}
	p, clk, m := newPolicy(t, retry.Config{})
	client := startGRPC(t, srv, p)
	resp, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{Payload: &testgrpc.Payload{Body: []byte("hi")}})
	require.NoError(t, err)
	assert.Equal(t, []byte("hi"), resp.GetPayload().GetBody())
	assert.EqualValues(t, 3, srv.calls.Load())
	assert.Len(t, clk.Sleeps(), 2)
	assert.Equal(t, map[string]int64{"retried": 2, "success": 1}, m.outcomes(t))
}

func TestUnaryCodes(t *testing.T) {
	cases := []struct {
		name  string
		cfg   retry.Config
		code  codes.Code
		calls int32
	}{
		{"INTERNAL is not retried by default", retry.Config{}, codes.Internal, 1},
		{"RESOURCE_EXHAUSTED when configured", retry.Config{RetriableGRPCCodes: []string{"resource_exhausted"}}, codes.ResourceExhausted, 2},
		{"UNAVAILABLE not retried when the list replaces it", retry.Config{RetriableGRPCCodes: []string{"RESOURCE_EXHAUSTED"}}, codes.Unavailable, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := &testServer{failFor: 1, fail: func(context.Context) error { return status.Error(tc.code, "no") }}
			p, _, _ := newPolicy(t, tc.cfg)
			client := startGRPC(t, srv, p)
			_, _ = client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
			assert.Equal(t, tc.calls, srv.calls.Load())
		})
	}
}

func TestUnaryPushback(t *testing.T) {
	cases := []struct {
		value  string
		calls  int32
		sleeps []time.Duration
	}{
		{"700", 2, []time.Duration{700 * time.Millisecond}},
		{"-1", 1, nil},
		{"soon", 1, nil},
		{"3600000", 1, nil}, // beyond max_retry_after
	}
	for _, tc := range cases {
		t.Run(tc.value, func(t *testing.T) {
			srv := &testServer{failFor: 1, fail: func(ctx context.Context) error {
				_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", tc.value))
				return status.Error(codes.Unavailable, "busy")
			}}
			p, clk, _ := newPolicy(t, retry.Config{})
			client := startGRPC(t, srv, p)
			_, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
			assert.Equal(t, tc.calls, srv.calls.Load())
			assert.Equal(t, tc.sleeps, clk.Sleeps())
			if tc.calls == 1 {
				assert.Equal(t, codes.Unavailable, status.Code(err))
			} else {
				assert.NoError(t, err)
			}
		})
	}
}

// A pushback that fits before the call's deadline is the wait, even when
// the backoff schedule's own step (5–15 s from a 10 s base_delay) would end
// past it.
func TestUnaryPushbackInsideDeadlineWhateverTheSchedule(t *testing.T) {
	srv := &testServer{failFor: 1, fail: func(ctx context.Context) error {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", "0"))
		return status.Error(codes.Unavailable, "busy")
	}}
	p, clk, m := newPolicy(t, retry.Config{BaseDelay: 10 * time.Second, MaxDelay: 10 * time.Second})
	client := startGRPC(t, srv, p)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, srv.calls.Load())
	assert.Equal(t, []time.Duration{0}, clk.Sleeps())
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
}

func TestUnaryPerTryTimeout(t *testing.T) {
	srv := &testServer{failFor: 1, fail: func(ctx context.Context) error {
		<-ctx.Done() // hang until the client's per-try timeout
		return ctx.Err()
	}}
	p, _, m := newPolicy(t, retry.Config{PerTryTimeout: perTryTimeout})
	client := startGRPC(t, srv, p)
	_, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	require.NoError(t, err)
	assert.EqualValues(t, 2, srv.calls.Load())
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
}

func TestUnaryBudgetSharedWithHTTP(t *testing.T) {
	srv := &testServer{failFor: 1 << 30, fail: unavailable}
	p, _, m := newPolicy(t, retry.Config{MaxAttempts: 5, Budget: retry.BudgetConfig{MinPerSecond: 0.001, TTL: time.Minute}})
	client := startGRPC(t, srv, p)

	// Ten HTTP requests through the same policy earn 0.2 × 10 = 2 retries.
	hsrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer hsrv.Close()
	hc := &http.Client{Transport: p.RoundTripper(hsrv.Client().Transport)}
	for range 10 {
		resp, err := hc.Get(hsrv.URL)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
	}

	_, err := client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	assert.Equal(t, codes.Unavailable, status.Code(err), "the last status survives")
	assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
	assert.EqualValues(t, 3, srv.calls.Load(), "the gRPC call spends the retries the HTTP requests earned")
	assert.Equal(t, map[string]int64{"success": 10, "retried": 2, "budget_exhausted": 1}, m.outcomes(t))
}

func TestServerStreamPerTryTimeout(t *testing.T) {
	srv := &testServer{failFor: 1, fail: func(ctx context.Context) error {
		<-ctx.Done() // no first message until the client gives up on this try
		return ctx.Err()
	}}
	p, _, m := newPolicy(t, retry.Config{PerTryTimeout: perTryTimeout})
	client := startGRPC(t, srv, p)
	stream, err := client.StreamingOutputCall(context.Background(), streamReq(nil, 4))
	require.NoError(t, err)
	got, err := recvAll(stream)
	require.NoError(t, err)
	assert.Equal(t, []int{4}, got)
	assert.EqualValues(t, 2, srv.calls.Load())
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
}

func TestUnaryCallerCancel(t *testing.T) {
	srv := &testServer{failFor: 1 << 30, fail: unavailable}
	p, _, _ := newPolicy(t, retry.Config{MaxAttempts: 5})
	client := startGRPC(t, srv, p)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
	assert.Equal(t, codes.Canceled, status.Code(err))
	assert.Zero(t, srv.calls.Load())
}

func streamReq(payload []byte, sizes ...int32) *testgrpc.StreamingOutputCallRequest {
	req := &testgrpc.StreamingOutputCallRequest{}
	if payload != nil {
		req.Payload = &testgrpc.Payload{Body: payload}
	}
	for _, s := range sizes {
		req.ResponseParameters = append(req.ResponseParameters, &testgrpc.ResponseParameters{Size: s})
	}
	return req
}

func recvAll(stream grpc.ServerStreamingClient[testgrpc.StreamingOutputCallResponse]) ([]int, error) {
	var got []int
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, len(msg.GetPayload().GetBody()))
	}
}

func TestServerStreamRetriedBeforeFirstMessage(t *testing.T) {
	srv := &testServer{failFor: 2, fail: unavailable}
	p, _, m := newPolicy(t, retry.Config{})
	client := startGRPC(t, srv, p)
	stream, err := client.StreamingOutputCall(context.Background(), streamReq(nil, 1, 2, 3))
	require.NoError(t, err)
	got, err := recvAll(stream)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 2, 3}, got)
	assert.EqualValues(t, 3, srv.calls.Load())
	assert.Equal(t, []int{3, 3, 3}, srv.streamN, "every attempt got the same request message")
	assert.Equal(t, map[string]int64{"retried": 2, "success": 1}, m.outcomes(t))
}

func TestServerStreamNotRetriedAfterFirstMessage(t *testing.T) {
	srv := &testServer{failFor: 1, fail: unavailable}
	p, _, _ := newPolicy(t, retry.Config{})
	client := startGRPC(t, srv, p)
	// A payload asks the server to fail after its first message.
	stream, err := client.StreamingOutputCall(context.Background(), streamReq([]byte("late"), 7, 8))
	require.NoError(t, err)
	got, err := recvAll(stream)
	assert.Equal(t, []int{7}, got)
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.EqualValues(t, 1, srv.calls.Load())
}

func TestBidiStreamPassesThrough(t *testing.T) {
	srv := &testServer{}
	p, _, m := newPolicy(t, retry.Config{})
	client := startGRPC(t, srv, p)
	stream, err := client.FullDuplexCall(context.Background())
	require.NoError(t, err)
	_, err = stream.Recv()
	assert.Equal(t, codes.Unavailable, status.Code(err))
	assert.EqualValues(t, 1, srv.calls.Load())
	assert.Empty(t, m.outcomes(t))
}

// blockingClock's Sleep waits for the caller's context, and says when a
// sleep has begun: the caller can end its context while the policy waits
// between attempts.
type blockingClock struct{ sleeping chan struct{} }

func (blockingClock) Now() time.Time { return time.Now() }

func (c blockingClock) Sleep(ctx context.Context, _ time.Duration) error {
	c.sleeping <- struct{}{}
	<-ctx.Done()
	return ctx.Err()
}

// A caller that gives up while the policy waits to retry gets gRPC's status
// for its own cancellation (and errors.Is still finds context.Canceled),
// not the UNAVAILABLE of the attempt before, and no further attempt is sent.
func TestUnaryCallerCancelDuringBackoff(t *testing.T) {
	srv := &testServer{failFor: 1 << 30, fail: unavailable}
	clk := blockingClock{sleeping: make(chan struct{}, 1)}
	p, err := retry.New(retry.Config{MaxAttempts: 5}, retry.WithClock(clk))
	require.NoError(t, err)
	client := startGRPC(t, srv, p)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := client.UnaryCall(ctx, &testgrpc.SimpleRequest{})
		done <- err
	}()
	<-clk.sleeping // the first attempt failed; the policy waits to retry
	cancel()
	err = <-done
	require.Error(t, err)
	assert.Equal(t, codes.Canceled, status.Code(err))
	assert.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 1, srv.calls.Load(), "no attempt after the caller gave up")
}
