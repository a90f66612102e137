package ambassador_test

import (
	"context"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
	"google.golang.org/grpc"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testserver"
)

const etcdPrefix = "/services/users/"

// etcdFixture is a real etcd with a client of the test's own.
type etcdFixture struct {
	*testserver.Etcd
	cli *clientv3.Client
}

func startEtcd(t *testing.T) *etcdFixture {
	t.Helper()
	e := testserver.StartEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	t.Cleanup(func() { cli.Close() })
	return &etcdFixture{Etcd: e, cli: cli}
}

func (f *etcdFixture) put(t *testing.T, key, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.cli.Put(ctx, etcdPrefix+key, value)
	require.NoError(t, err)
}

func (f *etcdFixture) del(t *testing.T, key string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := f.cli.Delete(ctx, etcdPrefix+key)
	require.NoError(t, err)
}

func (f *etcdFixture) discovery() discovery.Config {
	return discovery.Config{Etcd: &discovery.EtcdConfig{Endpoints: []string{f.Addr}, Prefix: etcdPrefix}}
}

// countingGRPCUpstream is a grpc health upstream that counts the calls it
// serves.
func countingGRPCUpstream(t *testing.T) (string, *atomic.Int64) {
	n := &atomic.Int64{}
	addr := grpcUpstream(t, grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		n.Add(1)
		return h(ctx, req)
	}))
	return addr, n
}

// TestDialOptionsFollowEtcd: through the gRPC resolver, calls go to the
// endpoint registered in etcd and move to another once the first key is
// deleted and a second one put.
func TestDialOptionsFollowEtcd(t *testing.T) {
	needsRealDiscovery(t)
	f := startEtcd(t)
	addrA, callsA := countingGRPCUpstream(t)
	addrB, callsB := countingGRPCUpstream(t)
	f.put(t, "a", addrA)

	opts, err := ambassador.DialOptions(ambassador.ServiceConfig{Name: "users", Protocol: "h2c", Discovery: f.discovery()})
	require.NoError(t, err)
	conn, err := grpc.NewClient("outbound:///users", opts...)
	require.NoError(t, err)
	defer conn.Close()
	for range 3 {
		_, err := checkHealth(t, conn)
		require.NoError(t, err)
	}
	assert.Equal(t, int64(3), callsA.Load())

	start := time.Now()
	f.put(t, "b", addrB)
	f.del(t, "a")
	// Four calls in a row to b: with round_robin, a is gone from the set.
	require.Eventually(t, func() bool {
		a, b := callsA.Load(), callsB.Load()
		for range 4 {
			if _, err := checkHealth(t, conn); err != nil {
				return false
			}
		}
		return callsA.Load() == a && callsB.Load() == b+4
	}, 5*time.Second, 5*time.Millisecond)
	t.Logf("gRPC calls went only to the endpoint added in etcd %v after the put", time.Since(start))
	a := callsA.Load()
	for range 5 {
		_, err := checkHealth(t, conn)
		require.NoError(t, err)
	}
	assert.Equal(t, a, callsA.Load(), "no call to the endpoint deleted from etcd")
}

// TestNewTransportFollowsEtcd: the HTTP stack's endpoints are etcd's, and
// follow a key put and a key deleted.
func TestNewTransportFollowsEtcd(t *testing.T) {
	f := startEtcd(t)
	a, b := upstream(t, "a"), upstream(t, "b")
	f.put(t, "a", hostOf(t, a.URL))
	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{Name: "users", Discovery: f.discovery()})
	require.NoError(t, err)
	defer rt.(io.Closer).Close()
	body, err := get(t, rt, "http://users/")
	require.NoError(t, err)
	assert.Equal(t, "a /", body)

	start := time.Now()
	f.put(t, "b", hostOf(t, b.URL))
	f.del(t, "a")
	// Four answers in a row from b: with round_robin, a is gone from the set.
	require.Eventually(t, func() bool {
		for range 4 {
			if body, err := get(t, rt, "http://users/"); err != nil || body != "b /" {
				return false
			}
		}
		return true
	}, 5*time.Second, 5*time.Millisecond)
	t.Logf("HTTP requests went only to the endpoint added in etcd %v after the put", time.Since(start))
	for range 5 {
		body, err := get(t, rt, "http://users/")
		require.NoError(t, err)
		assert.Equal(t, "b /", body, "no request to the endpoint deleted from etcd")
	}
}
