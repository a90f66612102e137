package proxy_test

import (
	"testing"

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
