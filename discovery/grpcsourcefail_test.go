package discovery_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/discovery"
)

// TestGRPCFailsFastWhenTheSourceNeverHadASet: a service whose DNS server
// answers SERVFAIL from the start has no endpoint; an HTTP pick fails at
// once with ErrNoEndpoints, and a gRPC call fails at once with
// codes.Unavailable, naming the source's failure, rather than waiting out
// its deadline for a resolver state that never came.
func TestGRPCFailsFastWhenTheSourceNeverHadASet(t *testing.T) {
	d := startDNS(t)
	d.SetRcode(dns.RcodeServerFailure)
	src, err := discovery.DNS("users.test:8080", d.Addr, time.Hour)
	require.NoError(t, err)
	s := newService(t, src, discovery.Config{})
	_, err = s.Pick(t.Context()) // waits for the first report: the failure
	require.ErrorIs(t, err, discovery.ErrNoEndpoints)

	c := dial(t, s)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err = check(ctx, c)
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "SERVFAIL")
	assert.Less(t, time.Since(start), 4*time.Second, "failed at once, not at the deadline")
}

// TestGRPCFailsFastWhenTheSourceFailsAfterDial: the same when the channel
// was connected (its resolver built) before the source's first report, a
// failure: grpc used to get no resolver state at all, and every call
// waited for its deadline.
func TestGRPCFailsFastWhenTheSourceFailsAfterDial(t *testing.T) {
	src := newSetSource()
	s := newService(t, src, discovery.Config{})
	conn := dialConn(t, s)
	conn.Connect() // builds the resolver: no set to push yet
	src.send(t, nil, errors.New("lookup users.test: SERVFAIL"))

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	start := time.Now()
	err := check(ctx, healthpb.NewHealthClient(conn))
	assert.Equal(t, codes.Unavailable, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "SERVFAIL")
	assert.Less(t, time.Since(start), 4*time.Second, "failed at once, not at the deadline")
}
