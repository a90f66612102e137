package breaker_test

import (
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// elapse moves a synctest bubble's fake clock on by d (inside a bubble
// time.Sleep returns as soon as every goroutine is blocked, with the clock
// advanced) and then waits until the bubble's goroutines have settled again,
// so the test reads the state the timers that fired left behind.
func elapse(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}
