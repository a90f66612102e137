package testkit

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// SwitchHealth is a grpc health server whose answer the test changes: a
// code, and optionally a hold until a channel closes (or the call's
// context ends). It counts the calls it gets in Calls. Watch fails with the
// code before sending anything when FailWatchFirst is set; otherwise it
// sends one SERVING message first and then ends with the code.
type SwitchHealth struct {
	healthpb.UnimplementedHealthServer
	Calls          atomic.Int64
	FailWatchFirst bool

	mu   sync.Mutex
	code codes.Code
	hold chan struct{}
}

// NewSwitchHealth is a SwitchHealth answering code.
func NewSwitchHealth(code codes.Code) *SwitchHealth { return &SwitchHealth{code: code} }

// Set changes the answer of later calls; a non-nil hold holds each call
// until it is closed.
func (h *SwitchHealth) Set(code codes.Code, hold chan struct{}) {
	h.mu.Lock()
	h.code, h.hold = code, hold
	h.mu.Unlock()
}

func (h *SwitchHealth) answer(ctx context.Context) error {
	h.Calls.Add(1)
	h.mu.Lock()
	code, hold := h.code, h.hold
	h.mu.Unlock()
	if hold != nil {
		select {
		case <-hold:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	if code != codes.OK {
		return status.Error(code, "test upstream says "+code.String())
	}
	return nil
}

// Check answers as Set says.
func (h *SwitchHealth) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	if err := h.answer(ctx); err != nil {
		return nil, err
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

// Watch sends one message and ends as Set says (see FailWatchFirst).
func (h *SwitchHealth) Watch(_ *healthpb.HealthCheckRequest, s healthpb.Health_WatchServer) error {
	msg := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	if !h.FailWatchFirst {
		if err := s.Send(msg); err != nil {
			return err
		}
		return h.answer(s.Context())
	}
	if err := h.answer(s.Context()); err != nil {
		return err
	}
	return s.Send(msg)
}

// ServeHealth serves h on lis until the test ends.
func ServeHealth(t testing.TB, lis net.Listener, h *SwitchHealth) {
	t.Helper()
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, h)
	ServeGRPC(t, srv, lis)
}

// StartHealth serves h on a free 127.0.0.1 port until the test ends and
// returns its address.
func StartHealth(t testing.TB, h *SwitchHealth) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ServeHealth(t, lis, h)
	return lis.Addr().String()
}
