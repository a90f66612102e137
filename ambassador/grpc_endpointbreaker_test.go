package ambassador_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
)

func startHealth(t testing.TB, code codes.Code) (string, *testkit.SwitchHealth) {
	t.Helper()
	h := testkit.NewSwitchHealth(code)
	h.FailWatchFirst = true
	return testkit.StartHealth(t, h), h
}

// callKinds are a unary call and a server-streaming call read to its end.
var callKinds = []struct {
	name string
	call func(ctx context.Context, c healthpb.HealthClient) error
}{
	{"unary", func(ctx context.Context, c healthpb.HealthClient) error {
		_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	}},
	{"stream", func(ctx context.Context, c healthpb.HealthClient) error {
		s, err := c.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		for {
			if _, err := s.Recv(); err != nil {
				if err == io.EOF {
					return nil
				}
				return err
			}
		}
	}},
}

func dialUsers(t *testing.T, c ambassador.ServiceConfig) healthpb.HealthClient {
	t.Helper()
	opts, err := ambassador.DialOptions(c)
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// TestDialOptionsEjectsFailingEndpoint: of two endpoints behind the
// discovery resolver, the failing one is ejected by its own breaker after
// consecutive_failures, although round robin interleaves the good
// endpoint's successes; the calls then all go to the good one, and once it
// answers again the bad one takes calls after open_timeout. open_timeout
// stays on the wall clock (gobreaker reads time.Now, and grpc over
// loopback cannot run in a synctest bubble): 1s is far more than the
// ejected phase's calls take, and the return is awaited, not timed.
func TestDialOptionsEjectsFailingEndpoint(t *testing.T) {
	needsRealDiscovery(t)
	for _, k := range callKinds {
		t.Run(k.name, func(t *testing.T) {
			goodAddr, good := startHealth(t, codes.OK)
			badAddr, bad := startHealth(t, codes.Unavailable)
			const failures = 2
			c := dialUsers(t, ambassador.ServiceConfig{
				Name:      "users",
				Discovery: discovery.Config{Static: []string{goodAddr, badAddr}},
				Breaker:   &breaker.Config{ConsecutiveFailures: failures, OpenTimeout: time.Second},
			})
			ctx := t.Context()
			for n := 0; bad.Calls.Load() < failures; n++ {
				require.Less(t, n, 100, "the bad endpoint never got %d calls", failures)
				_ = k.call(ctx, c)
			}
			goodBefore := good.Calls.Load()
			const more = 10
			for range more {
				require.NoError(t, k.call(ctx, c), "every call goes to the good endpoint")
			}
			assert.Equal(t, int64(failures), bad.Calls.Load(), "the bad endpoint was ejected")
			assert.Equal(t, goodBefore+more, good.Calls.Load())

			bad.Set(codes.OK, nil)
			require.Eventually(t, func() bool {
				_ = k.call(ctx, c)
				return bad.Calls.Load() > failures
			}, 10*time.Second, 20*time.Millisecond, "the bad endpoint is probed after open_timeout")
			before := bad.Calls.Load()
			for range 4 {
				require.NoError(t, k.call(ctx, c))
			}
			assert.Equal(t, before+2, bad.Calls.Load(), "closed again: back in the rotation")
		})
	}
}

// TestDialOptionsEveryEndpointEjected: once both endpoints' breakers are
// open, a call fails at once with the contract's no_endpoints answer
// (codes.Unavailable, discovery.ErrNoEndpoints) and reaches neither.
func TestDialOptionsEveryEndpointEjected(t *testing.T) {
	needsRealDiscovery(t)
	for _, k := range callKinds {
		t.Run(k.name, func(t *testing.T) {
			aAddr, a := startHealth(t, codes.Internal)
			bAddr, b := startHealth(t, codes.Internal)
			c := dialUsers(t, ambassador.ServiceConfig{
				Name:      "users",
				Discovery: discovery.Config{Static: []string{aAddr, bAddr}},
				Breaker:   &breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour},
			})
			ctx := t.Context()
			for n := 0; a.Calls.Load() < 1 || b.Calls.Load() < 1; n++ {
				require.Less(t, n, 100, "both endpoints get a call")
				require.Equal(t, codes.Internal, status.Code(k.call(ctx, c)))
			}
			err := k.call(ctx, c)
			assert.Equal(t, codes.Unavailable, status.Code(err))
			assert.ErrorIs(t, err, discovery.ErrNoEndpoints)
			assert.NotErrorIs(t, err, breaker.ErrOpen)
			assert.Equal(t, int64(2), a.Calls.Load()+b.Calls.Load())
		})
	}
}

// TestDialOptionsHalfOpenProbeAtPick: a half-open endpoint takes
// half_open_requests probes at once, counted at the pick; the calls that
// arrive meanwhile go to the other endpoint instead of failing or
// probing the recovering one too.
func TestDialOptionsHalfOpenProbeAtPick(t *testing.T) {
	needsRealDiscovery(t)
	goodAddr, good := startHealth(t, codes.OK)
	badAddr, bad := startHealth(t, codes.Unavailable)
	s, err := ambassador.NewStack(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{goodAddr, badAddr}},
		Breaker:   &breaker.Config{ConsecutiveFailures: 1, OpenTimeout: 300 * time.Millisecond},
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	opts, err := s.DialOptions()
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	c := healthpb.NewHealthClient(conn)
	ctx := t.Context()
	for n := 0; bad.Calls.Load() < 1; n++ {
		require.Less(t, n, 100)
		_, _ = c.Check(ctx, &healthpb.HealthCheckRequest{})
	}
	release := make(chan struct{})
	bad.Set(codes.OK, release)
	require.Eventually(t, func() bool { return s.Breaker().State(badAddr) == breaker.StateHalfOpen },
		10*time.Second, 5*time.Millisecond)

	const n = 10
	goodBefore := good.Calls.Load()
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			_, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
			errs <- err
		})
	}
	// One probe is held by the bad endpoint; every other call is answered
	// by the good one.
	for range n - 1 {
		assert.NoError(t, <-errs)
	}
	assert.Equal(t, goodBefore+n-1, good.Calls.Load())
	// The probe was admitted at its pick; it may reach the server after
	// the others are done.
	require.Eventually(t, func() bool { return bad.Calls.Load() >= 2 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, int64(2), bad.Calls.Load(), "one probe")
	close(release)
	wg.Wait()
	assert.NoError(t, <-errs)
	assert.Equal(t, breaker.StateClosed, s.Breaker().State(badAddr))
}

// TestDialOptionsWaitsForConnectingEndpoint: when the only ready endpoint is
// ejected while another endpoint's connection is still being set up, a
// call waits for that connection (here until its deadline, as the server
// does not answer yet) instead of failing with no_endpoints; once the
// server serves, a call gets through to it.
func TestDialOptionsWaitsForConnectingEndpoint(t *testing.T) {
	needsRealDiscovery(t)
	badAddr, bad := startHealth(t, codes.Unavailable)
	// Accepted by the kernel but not served yet: grpc's connection to it
	// stays connecting, waiting for the server's HTTP/2 preface.
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = lis.Close() })
	c := dialUsers(t, ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{badAddr, lis.Addr().String()}},
		Breaker:   &breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Hour},
	})
	_, err = c.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.Equal(t, codes.Unavailable, status.Code(err))
	require.Equal(t, int64(1), bad.Calls.Load())

	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err = c.Check(ctx, &healthpb.HealthCheckRequest{})
	assert.Equal(t, codes.DeadlineExceeded, status.Code(err), "waited for the connecting endpoint: %v", err)
	assert.NotErrorIs(t, err, discovery.ErrNoEndpoints)

	late := testkit.NewSwitchHealth(codes.OK)
	late.FailWatchFirst = true
	testkit.ServeHealth(t, lis, late)
	_, err = c.Check(t.Context(), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, int64(1), late.Calls.Load())
	assert.Equal(t, int64(1), bad.Calls.Load())
}
