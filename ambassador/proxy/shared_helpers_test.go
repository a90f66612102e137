package proxy_test

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/internal/testkit"
)

// The test CA and grpc upstream of internal/testkit, by the names these
// tests (and ambassador's) use.
type pki = testkit.PKI

func newPKI(t *testing.T) *pki { return testkit.NewPKI(t) }

func grpcUpstream(t *testing.T, opts ...grpc.ServerOption) string {
	return testkit.GRPCUpstream(t, opts...)
}

type syncBuffer = testkit.SyncBuffer

// waitNotAccepting waits (bounded) until addr refuses new connections: a
// cancelled Run has begun its drain.
func waitNotAccepting(t *testing.T, addr string) {
	t.Helper()
	require.Eventually(t, func() bool {
		nc, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return true
		}
		_ = nc.Close()
		return false
	}, 5*time.Second, 5*time.Millisecond, "the listener kept accepting")
}

// waitRunReturned waits (bounded) for Run's result on done, requires it to
// be nil and puts it back for the cleanup that waits on done too.
func waitRunReturned(t *testing.T, done chan error, after string) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err)
		done <- nil
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after " + after)
	}
}
