package retry

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// lateTimerCtx is an attempt context whose per-try deadline has passed but
// whose timer lost the race to the attempt's cancel: Err says Canceled.
// That is what the unary interceptor sees when the server, which learnt the
// deadline from grpc-timeout, ends the call first.
type lateTimerCtx struct {
	context.Context
	deadline time.Time
}

func (c lateTimerCtx) Deadline() (time.Time, bool) { return c.deadline, true }
func (c lateTimerCtx) Err() error                  { return context.Canceled }

// lateDeadlineCtx is a caller context whose deadline has passed and whose
// timer has not fired yet.
type lateDeadlineCtx struct {
	context.Context
	deadline time.Time
}

func (c lateDeadlineCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func TestJudgeGRPCSeesPerTryDeadlineBeforeItsTimer(t *testing.T) {
	p, err := New(Config{PerTryTimeout: 50 * time.Millisecond})
	require.NoError(t, err)
	rst := status.Error(codes.DeadlineExceeded, "stream terminated by RST_STREAM with error code: CANCEL")
	past := time.Now().Add(-time.Millisecond)

	t.Run("per-try deadline passed: retried", func(t *testing.T) {
		v := p.judgeGRPC(context.Background(), lateTimerCtx{context.Background(), past}, rst, nil, false)
		assert.True(t, v.retry)
	})
	t.Run("deadline not reached and not the per-try bound: DEADLINE_EXCEEDED is the server own, not retried", func(t *testing.T) {
		v := p.judgeGRPC(context.Background(), lateTimerCtx{context.Background(), time.Now().Add(time.Hour)}, rst, nil, false)
		assert.False(t, v.retry)
	})
	t.Run("the passed deadline is the caller's: not retried", func(t *testing.T) {
		caller := lateDeadlineCtx{context.Background(), past}
		v := p.judgeGRPC(caller, lateTimerCtx{caller, past}, rst, nil, false)
		assert.False(t, v.retry)
	})
}
