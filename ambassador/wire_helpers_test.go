package ambassador_test

import "github.com/outbound-go/outbound/internal/testkit"

// The raw-socket fakes of internal/testkit, by the names these tests use.
type rawUpstream = testkit.RawUpstream

const wireTimeout = testkit.WireTimeout

var (
	newRawUpstream = testkit.NewRawUpstream
	writeResponse  = testkit.WriteResponse
)
