package proxy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestClientConnectionsFor pins the documented derivation of the default
// max_client_connections from the open-file limit.
func TestClientConnectionsFor(t *testing.T) {
	for _, tc := range []struct {
		nofile uint64
		want   int
	}{
		{0, 1},
		{3, 1},
		{100, 25},   // below the reserve: a quarter
		{256, 64},   // (256-128)/2 = 64 = 256/4
		{1024, 448}, // (1024-128)/2
		{65536, 32704},
		{1 << 40, maxClientConnectionsBound},
		{^uint64(0), maxClientConnectionsBound}, // RLIM_INFINITY
	} {
		assert.Equal(t, tc.want, clientConnectionsFor(tc.nofile), "RLIMIT_NOFILE %d", tc.nofile)
	}
}
