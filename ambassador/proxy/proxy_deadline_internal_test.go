package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// stalledDeadline is a context whose deadline has passed but whose timer
// has not fired yet: Err is still nil, as it is for a moment after the
// deadline of a real context.
type stalledDeadline struct {
	context.Context
	dl time.Time
}

func (c stalledDeadline) Deadline() (time.Time, bool) { return c.dl, true }
func (c stalledDeadline) Err() error                  { return nil }

func TestDeadlinePassed(t *testing.T) {
	past, cancelPast := context.WithDeadline(context.Background(), time.Now().Add(-time.Millisecond))
	defer cancelPast()
	future, cancelFuture := context.WithTimeout(context.Background(), time.Hour)
	defer cancelFuture()
	canceled, cancel := context.WithTimeout(context.Background(), time.Hour)
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want bool
	}{
		{"no deadline", context.Background(), false},
		{"deadline ahead", future, false},
		{"canceled before its deadline", canceled, false},
		{"deadline exceeded", past, true},
		{"deadline passed, timer not yet fired", stalledDeadline{context.Background(), time.Now().Add(-time.Microsecond)}, true},
	} {
		assert.Equal(t, tc.want, deadlinePassed(tc.ctx), tc.name)
	}
}
