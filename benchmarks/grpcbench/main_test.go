package grpcbench_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	// Library log lines (a discovery set change, say) would land between
	// benchmark result lines and break benchstat's parsing: discard them.
	slog.SetDefault(slog.New(slog.DiscardHandler))
	goleak.VerifyTestMain(m)
}

// TestEachStackRetriesUnavailable proves each contender retries before any
// of them is timed: UNAVAILABLE once, then OK; the caller sees OK and the
// upstream counted 2 calls. bare must pass UNAVAILABLE through after 1.
func TestEachStackRetriesUnavailable(t *testing.T) {
	for _, c := range contenders() {
		t.Run(c.name+"/loopback", func(t *testing.T) {
			up := &flakyHealth{fail: 1}
			client := dial(t, startServer(t, up), c.build(t))
			resp, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
			if c.retries {
				require.NoError(t, err)
				assert.Equal(t, healthpb.HealthCheckResponse_SERVING, resp.GetStatus())
				assert.Equal(t, int64(2), up.count.Load())
			} else {
				assert.Equal(t, codes.Unavailable, status.Code(err))
				assert.Equal(t, int64(1), up.count.Load())
			}
		})
		if c.inConn {
			continue
		}
		t.Run(c.name+"/instant", func(t *testing.T) {
			var count atomic.Int64
			invoker := func(context.Context, string, any, any, *grpc.ClientConn, ...grpc.CallOption) error {
				if count.Add(1) == 1 {
					return status.Error(codes.Unavailable, "flaky: try again")
				}
				return nil
			}
			s := c.build(t)
			err := bind(s.unary, invoker)(context.Background(), checkMethod,
				&healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{}, idleConn(t))
			if c.retries {
				require.NoError(t, err)
				assert.Equal(t, int64(2), count.Load())
			} else {
				assert.Equal(t, codes.Unavailable, status.Code(err))
				assert.Equal(t, int64(1), count.Load())
			}
		})
	}
}
