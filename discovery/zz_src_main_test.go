package discovery_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that no test leaves a goroutine behind. (The sources'
// branch adds it under this name; keep one TestMain when merging.)
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
