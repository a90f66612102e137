package attempt_test

import (
	"context"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/attempt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecordThroughContext(t *testing.T) {
	rec, n := attempt.FromContext(context.Background())
	assert.Nil(t, rec)
	assert.Zero(t, n)

	r := attempt.NewRecord()
	ctx, cancel := context.WithCancel(attempt.WithAttempt(context.Background(), r, r.Start()))
	defer cancel()
	got, n := attempt.FromContext(ctx)
	assert.Same(t, r, got)
	assert.Equal(t, 1, n)

	r.AddTried("10.0.0.1:80")
	r.AddTried("10.0.0.2:80")
	assert.True(t, r.Tried("10.0.0.1:80"))
	assert.False(t, r.Tried("10.0.0.3:80"))
	assert.Equal(t, "10.0.0.2:80", r.LastEndpoint())
	assert.Equal(t, 2, r.TriedCount())
}

func TestRecordConcurrent(t *testing.T) {
	r := attempt.NewRecord()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Start()
			r.AddTried("e")
		}()
	}
	wg.Wait()
	assert.Equal(t, 8, r.Attempts())
	assert.Equal(t, 8, r.TriedCount())
}
