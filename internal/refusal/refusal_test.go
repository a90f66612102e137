package refusal_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/refusal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type wrapper struct{ err error }

func (w *wrapper) Error() string { return "wrapped: " + w.err.Error() }
func (w *wrapper) Unwrap() error { return w.err }

func TestIs(t *testing.T) {
	errOpen := refusal.New("breaker: circuit open")
	assert.True(t, refusal.Is(errOpen))
	assert.True(t, refusal.Is(fmt.Errorf("endpoint a: %w", errOpen)))
	assert.True(t, refusal.Is(&wrapper{errOpen}))
	assert.True(t, refusal.Is(errors.Join(errors.New("x"), errOpen)))
	assert.False(t, refusal.Is(errors.New("dial tcp: connection refused")))
	assert.False(t, refusal.Is(nil))
	assert.True(t, errors.Is(fmt.Errorf("w: %w", errOpen), errOpen))
}
