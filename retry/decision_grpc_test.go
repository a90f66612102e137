package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/retry"
)

// TestServerStreamDecidesAsUnary runs the same failures through a unary
// call and a server stream that fails before its first message: both ask
// the policy the same question, so they get the same answer, the same
// number of attempts and the same outcomes.
func TestServerStreamDecidesAsUnary(t *testing.T) {
	noBudget := retry.BudgetConfig{MinPerSecond: 0.001, TTL: time.Second}
	farPushback := func(ctx context.Context) error {
		_ = grpc.SetTrailer(ctx, metadata.Pairs("grpc-retry-pushback-ms", "3600000"))
		return status.Error(codes.Unavailable, "busy")
	}
	cases := []struct {
		name       string
		cfg        retry.Config
		fail       func(context.Context) error
		wantCode   codes.Code
		wantBudget bool
		calls      int32
		want       map[string]int64
	}{
		{"UNAVAILABLE until attempts run out", retry.Config{MaxAttempts: 3}, unavailable, codes.Unavailable, false, 3,
			map[string]int64{"retried": 2, "exhausted": 1}},
		{"UNAVAILABLE with the budget spent", retry.Config{Budget: noBudget}, unavailable, codes.Unavailable, true, 1,
			map[string]int64{"budget_exhausted": 1}},
		{"INTERNAL", retry.Config{}, func(context.Context) error { return status.Error(codes.Internal, "no") }, codes.Internal, false, 1,
			map[string]int64{"not_retryable": 1}},
		{"pushback beyond max_retry_after", retry.Config{}, farPushback, codes.Unavailable, false, 1,
			map[string]int64{"not_retryable": 1}},
	}
	for _, tc := range cases {
		for _, stream := range []bool{false, true} {
			name := tc.name + map[bool]string{false: "/unary", true: "/stream"}[stream]
			t.Run(name, func(t *testing.T) {
				srv := &testServer{failFor: 1 << 30, fail: tc.fail}
				p, _, m := newPolicy(t, tc.cfg)
				client := startGRPC(t, srv, p)
				var err error
				if stream {
					s, serr := client.StreamingOutputCall(context.Background(), streamReq(nil, 1))
					require.NoError(t, serr)
					_, err = recvAll(s)
				} else {
					_, err = client.UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
				}
				require.Error(t, err)
				assert.Equal(t, tc.wantCode, status.Code(err), "the last status survives")
				if tc.wantBudget {
					assert.ErrorIs(t, err, retry.ErrBudgetExhausted)
				} else {
					assert.NotErrorIs(t, err, retry.ErrBudgetExhausted)
				}
				assert.Equal(t, tc.calls, srv.calls.Load())
				assert.Equal(t, tc.want, m.outcomes(t))
			})
		}
	}
}
