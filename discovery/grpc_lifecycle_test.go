package discovery_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outbound-go/outbound/discovery"
)

// lifeSource reports its current set when a watch starts and counts the
// watches running, so a test sees when the Service's goroutines run.
type lifeSource struct {
	mu      sync.Mutex
	addrs   []string
	active  atomic.Int32
	watches atomic.Int32
}

func (l *lifeSource) set(addrs ...string) {
	l.mu.Lock()
	l.addrs = addrs
	l.mu.Unlock()
}

func (l *lifeSource) Watch(ctx context.Context, update func([]discovery.Endpoint, error)) {
	l.watches.Add(1)
	l.active.Add(1)
	defer l.active.Add(-1)
	l.mu.Lock()
	eps := make([]discovery.Endpoint, len(l.addrs))
	for i, a := range l.addrs {
		eps[i] = discovery.Endpoint{Address: a}
	}
	l.mu.Unlock()
	update(eps, nil)
	<-ctx.Done()
}

func dialConn(t *testing.T, s *discovery.Service, extra ...grpc.DialOption) *grpc.ClientConn {
	t.Helper()
	opts := append(s.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	conn, err := grpc.NewClient(s.Target(), append(opts, extra...)...)
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return conn
}

// TestStartOnUseNotDialedStartsNothing: options built and dropped without a
// dial start no goroutine, not even the health checker.
func TestStartOnUseNotDialedStartsNothing(t *testing.T) {
	before := goleak.IgnoreCurrent()
	src := &lifeSource{}
	src.set("127.0.0.1:1")
	s := newService(t, src, discovery.Config{HealthCheck: discovery.HealthCheckConfig{Path: "/healthz"}},
		discovery.WithStartOnUse())
	opts := s.DialOptions()
	require.NotEmpty(t, opts)
	opts = nil
	_ = opts
	goleak.VerifyNone(t, before)
	assert.Zero(t, src.watches.Load())
}

// TestStartOnUseClosedConnStopsWatch: the resolver grpc builds starts the
// watch; closing the ClientConn closes the resolver, which stops it, while
// the Service itself stays open.
func TestStartOnUseClosedConnStopsWatch(t *testing.T) {
	x := newGRPCUpstream(t, 0)
	before := goleak.IgnoreCurrent()
	src := &lifeSource{}
	src.set(x.addr)
	s := newService(t, src, discovery.Config{}, discovery.WithStartOnUse())
	conn := dialConn(t, s)
	require.NoError(t, check(context.Background(), healthpb.NewHealthClient(conn)))
	assert.EqualValues(t, 1, src.active.Load())
	require.NoError(t, conn.Close())
	goleak.VerifyNone(t, before)
	assert.Zero(t, src.active.Load())
}

// TestStartOnUseIdleChannelResolvesAgain: grpc's idle mode closes the
// resolver (stopping the watch); the next call builds a new one, whose watch
// reports the source's current set.
func TestStartOnUseIdleChannelResolvesAgain(t *testing.T) {
	x, y := newGRPCUpstream(t, 0), newGRPCUpstream(t, 0)
	src := &lifeSource{}
	src.set(x.addr)
	s := newService(t, src, discovery.Config{}, discovery.WithStartOnUse())
	conn := dialConn(t, s, grpc.WithIdleTimeout(20*time.Millisecond))
	c := healthpb.NewHealthClient(conn)
	require.NoError(t, check(context.Background(), c))
	require.Eventually(t, func() bool {
		return conn.GetState() == connectivity.Idle && src.active.Load() == 0
	}, 5*time.Second, time.Millisecond, "the idle channel closes its resolver")

	src.set(y.addr) // changed while nobody watched
	require.Eventually(t, func() bool {
		require.NoError(t, check(context.Background(), c))
		return y.hits.Load() > 0
	}, 5*time.Second, time.Millisecond)
	assert.GreaterOrEqual(t, src.watches.Load(), int32(2), "a new resolver, a new watch")
}

// TestStartOnUseHTTPHoldsUntilClose: in the start-on-use mode an HTTP pick
// starts the watch, which then runs until Close.
func TestStartOnUseHTTPHoldsUntilClose(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer up.Close()
	src := &lifeSource{}
	src.set(up.Listener.Addr().String())
	s, err := discovery.NewService("users", src, discovery.Config{}, discovery.WithStartOnUse(),
		discovery.WithLogger(slog.New(slog.DiscardHandler)))
	require.NoError(t, err)
	assert.Zero(t, src.watches.Load())
	assert.Equal(t, http.StatusOK, get(t, client(t, s), "http://users/"))
	assert.EqualValues(t, 1, src.active.Load())
	require.NoError(t, s.Close())
	assert.Zero(t, src.active.Load())
}

// TestResolverEndpointsReachGRPCBalancers: the resolver sends
// State.Endpoints; grpc's own pick_first and round_robin use them as our
// balancers do.
func TestResolverEndpointsReachGRPCBalancers(t *testing.T) {
	for _, lb := range []string{"pick_first", "round_robin"} {
		t.Run(lb, func(t *testing.T) {
			x, y := newGRPCUpstream(t, 0), newGRPCUpstream(t, 0)
			s := newService(t, discovery.Static(x.addr, y.addr), discovery.Config{})
			conn, err := grpc.NewClient(s.Target(), grpc.WithResolvers(s.ResolverBuilder()),
				grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultServiceConfig(fmt.Sprintf(`{"loadBalancingConfig":[{%q:{}}]}`, lb)))
			require.NoError(t, err)
			defer conn.Close()
			c := healthpb.NewHealthClient(conn)
			if lb == "round_robin" {
				callUntilBoth(t, c, x, y)
				return
			}
			for i := 0; i < 10; i++ {
				require.NoError(t, check(context.Background(), c))
			}
			assert.EqualValues(t, 10, x.hits.Load()+y.hits.Load())
			assert.True(t, x.hits.Load() == 0 || y.hits.Load() == 0, "pick_first uses one endpoint")
		})
	}
}

// TestDialOptionsRaceFreeWithNewClient runs, in a fresh test process (so
// that its DialOptions is the process's first), DialOptions while another
// goroutine creates grpc ClientConns that look balancers up. Registering
// balancers on the first DialOptions raced on grpc's registry; under -race
// the child process then fails with a DATA RACE report.
func TestDialOptionsRaceFreeWithNewClient(t *testing.T) {
	if os.Getenv("OUTBOUND_RACE_CHILD") == "1" {
		dialOptionsBesideNewClient(t)
		return
	}
	// The detector saw the unordered accesses in about half of the runs of
	// one process on the code that registered lazily: run a few (without
	// the race runtime's one-second pause at exit).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for run := 0; run < 10; run++ {
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestDialOptionsRaceFreeWithNewClient$", "-test.count=1")
		cmd.Env = append(os.Environ(), "OUTBOUND_RACE_CHILD=1",
			strings.TrimSpace("GORACE="+os.Getenv("GORACE")+" atexit_sleep_ms=0"))
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "DATA RACE") {
			t.Fatalf("run %d: a data race beside grpc.NewClient:\n%s", run, out)
		}
		require.NoError(t, err, "run %d: %s", run, out)
	}
}

func dialOptionsBesideNewClient(t *testing.T) {
	const readers = 4
	stop := make(chan struct{})
	var started, done sync.WaitGroup
	started.Add(readers)
	done.Add(readers)
	for r := 0; r < readers; r++ {
		go func() {
			defer done.Done()
			started.Done() // before the first NewClient: no order with it
			for {
				conn, err := grpc.NewClient("passthrough:///127.0.0.1:1",
					grpc.WithTransportCredentials(insecure.NewCredentials()),
					grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
				if err == nil {
					conn.Close()
				}
				select {
				case <-stop:
					return
				default:
				}
			}
		}()
	}
	started.Wait()
	s := newService(t, discovery.Static("127.0.0.1:1"), discovery.Config{})
	for i := 0; i < 10; i++ {
		require.NotEmpty(t, s.DialOptions())
	}
	close(stop)
	done.Wait()
}
