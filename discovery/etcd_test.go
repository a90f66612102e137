package discovery_test

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/internal/testserver"
)

const etcdPrefix = "/services/users/"

func etcdSource(t testing.TB, endpoint string) discovery.Source {
	t.Helper()
	src, err := discovery.FromConfig(discovery.Config{Etcd: &discovery.EtcdConfig{
		Endpoints: []string{endpoint}, Prefix: etcdPrefix, DialTimeout: time.Second,
	}})
	require.NoError(t, err)
	return src
}

// TestEtcdFollowsPutDeleteAndLeaseExpiry: the listed set, then a put, a
// delete and a lease that expires, each followed within a second of the
// etcd operation (the latencies are logged). Keys that only share the
// prefix's letters without it ("/services/users2/") are not endpoints.
func TestEtcdFollowsPutDeleteAndLeaseExpiry(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli := etcdClient(t, e.Endpoint)
	ctx := etcdCtx(t)
	for k, v := range map[string]string{
		etcdPrefix + "a":      "127.0.0.1:1001",
		etcdPrefix + "b":      endpointJSON("127.0.0.1:1002", 3),
		"/services/users2/x":  "127.0.0.1:9999",
		"/services/users":     "127.0.0.1:9998",
		"/services/other/a/b": "127.0.0.1:9997",
	} {
		_, err := cli.Put(ctx, k, v)
		require.NoError(t, err)
	}
	w := watchSource(t, etcdSource(t, e.Addr))
	w.waitSet(t, map[string]int{"127.0.0.1:1001": 1, "127.0.0.1:1002": 3})

	var took []time.Duration
	follow := func(what string, op func(), want map[string]int) {
		start := time.Now()
		op()
		d := w.waitSet(t, want).Sub(start)
		t.Logf("%s followed in %v", what, d)
		assert.Less(t, d, time.Second, what)
		took = append(took, d)
	}
	follow("put", func() {
		_, err := cli.Put(ctx, etcdPrefix+"c", "127.0.0.1:1003")
		require.NoError(t, err)
	}, map[string]int{"127.0.0.1:1001": 1, "127.0.0.1:1002": 3, "127.0.0.1:1003": 1})
	follow("delete", func() {
		_, err := cli.Delete(ctx, etcdPrefix+"a")
		require.NoError(t, err)
	}, map[string]int{"127.0.0.1:1002": 3, "127.0.0.1:1003": 1})

	// A lease of 2s that nobody keeps alive: etcd deletes its key when it
	// expires, which is measured from the moment the grant was asked for.
	const ttl = 2
	var granted time.Time
	follow("put with lease", func() {
		granted = time.Now()
		lease, err := cli.Grant(ctx, ttl)
		require.NoError(t, err)
		_, err = cli.Put(ctx, etcdPrefix+"d", "127.0.0.1:1004", clientv3.WithLease(lease.ID))
		require.NoError(t, err)
	}, map[string]int{"127.0.0.1:1002": 3, "127.0.0.1:1003": 1, "127.0.0.1:1004": 1})
	gone := w.waitSet(t, map[string]int{"127.0.0.1:1002": 3, "127.0.0.1:1003": 1})
	late := gone.Sub(granted.Add(ttl * time.Second))
	t.Logf("lease expiry followed %v after the lease's %ds ran out", late, ttl)
	assert.Less(t, late, time.Second, "expired lease")
}

// TestEtcdEndpointsManagerRegistration: a service registering itself the
// way etcd's naming package does (Manager.AddEndpoint with a kept-alive
// lease and a weight) is picked by its weight, and leaves when its lease is
// revoked.
func TestEtcdEndpointsManagerRegistration(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli := etcdClient(t, e.Endpoint)
	ctx := etcdCtx(t)
	em, err := endpoints.NewManager(cli, "/services/users")
	require.NoError(t, err)
	lease, err := cli.Grant(ctx, 5)
	require.NoError(t, err)
	kctx, stopKeepAlive := context.WithCancel(context.Background())
	defer stopKeepAlive()
	_, err = cli.KeepAlive(kctx, lease.ID)
	require.NoError(t, err)
	require.NoError(t, em.AddEndpoint(ctx, etcdPrefix+"u1",
		endpoints.Endpoint{Addr: "127.0.0.1:2001", Metadata: map[string]any{"weight": 3}}, clientv3.WithLease(lease.ID)))
	require.NoError(t, em.AddEndpoint(ctx, etcdPrefix+"u2",
		endpoints.Endpoint{Addr: "127.0.0.1:2002"}, clientv3.WithLease(lease.ID)))

	svc := newService(t, etcdSource(t, e.Addr), discovery.Config{})
	require.Eventually(t, func() bool { return len(svc.Endpoints()) == 2 }, 5*time.Second, 5*time.Millisecond)
	picks := map[string]int{}
	for range 40 {
		a, err := svc.Pick(ctx)
		require.NoError(t, err)
		picks[a]++
	}
	assert.Equal(t, map[string]int{"127.0.0.1:2001": 30, "127.0.0.1:2002": 10}, picks)

	_, err = cli.Revoke(ctx, lease.ID)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return len(svc.Endpoints()) == 0 }, time.Second, 5*time.Millisecond)
}

// TestEtcdKeepsServingWhileDownThenFollows: with etcd stopped, requests go
// on to the last set; once it is back (same ports and data) the source
// follows new changes. A value that is not an endpoint is skipped and
// logged, and the other keys still count.
func TestEtcdKeepsServingWhileDownThenFollows(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli := etcdClient(t, e.Endpoint)
	ctx := etcdCtx(t)
	ok := func(w http.ResponseWriter, _ *http.Request) {}
	u1, u2 := newUpstream(t, ok), newUpstream(t, ok)
	_, err := cli.Put(ctx, etcdPrefix+"u1", u1.addr())
	require.NoError(t, err)
	_, err = cli.Put(ctx, etcdPrefix+"junk", `{"Addr": "nope"}`)
	require.NoError(t, err)

	logs := &testkit.SyncBuffer{}
	svc := newService(t, etcdSource(t, e.Addr), discovery.Config{}, discovery.WithLogger(testkit.DebugLogger(logs)))
	c := client(t, svc)
	require.Equal(t, http.StatusOK, get(t, c, "http://users/"))
	assert.Equal(t, []string{u1.addr()}, svcAddrs(svc))
	assert.Contains(t, logs.String(), etcdPrefix+"junk")

	e.Stop()
	for range 20 {
		require.Equal(t, http.StatusOK, get(t, c, "http://users/"))
	}
	assert.Equal(t, []string{u1.addr()}, svcAddrs(svc), "the last set serves while etcd is down")

	e.Restart()
	start := time.Now()
	_, err = cli.Put(etcdCtx(t), etcdPrefix+"u2", u2.addr())
	require.NoError(t, err)
	_, err = cli.Delete(etcdCtx(t), etcdPrefix+"u1")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		a := svcAddrs(svc)
		return len(a) == 1 && a[0] == u2.addr()
	}, 10*time.Second, 5*time.Millisecond)
	t.Logf("after the restart, a put and a delete were followed %v after the put was sent", time.Since(start))
	require.Equal(t, http.StatusOK, get(t, c, "http://users/"))
}

// TestEtcdRelistsAfterCompaction: while one client's connection is cut,
// the keys change and etcd compacts past the revision its watch had
// reached; on reconnecting, the resumed watch is refused as compacted, and
// the source lists the prefix again instead of missing the changes.
func TestEtcdRelistsAfterCompaction(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli := etcdClient(t, e.Endpoint)
	ctx := etcdCtx(t)
	_, err := cli.Put(ctx, etcdPrefix+"a", "127.0.0.1:3001")
	require.NoError(t, err)
	p := newCutProxy(t, e.Addr)
	w := watchSource(t, etcdSource(t, p.Addr()))
	w.waitSet(t, map[string]int{"127.0.0.1:3001": 1})

	p.Cut()
	_, err = cli.Put(ctx, etcdPrefix+"b", "127.0.0.1:3002")
	require.NoError(t, err)
	_, err = cli.Delete(ctx, etcdPrefix+"a")
	require.NoError(t, err)
	resp, err := cli.Put(ctx, etcdPrefix+"c", endpointJSON("127.0.0.1:3003", 2))
	require.NoError(t, err)
	_, err = cli.Compact(ctx, resp.Header.Revision, clientv3.WithCompactPhysical())
	require.NoError(t, err)
	p.Heal()

	start := time.Now()
	w.waitSet(t, map[string]int{"127.0.0.1:3002": 1, "127.0.0.1:3003": 2})
	t.Logf("re-listed %v after the connection was restored", time.Since(start))
}

// TestEtcdRelistsWhenTheStoreIsNew: the etcd behind the source's address
// is replaced by a new one (a wiped data directory, a restore without
// --bump-revision) whose revision is below the one the watch had reached.
// The client resumes its watch at the old revision, which the new store has
// not reached, so no change would arrive; the source sees the revision go
// back on a progress notification and lists the new store.
func TestEtcdRelistsWhenTheStoreIsNew(t *testing.T) {
	old, fresh := testserver.StartEtcd(t), testserver.StartEtcd(t)
	ctx := etcdCtx(t)
	oldCli := etcdClient(t, old.Endpoint)
	_, err := oldCli.Put(ctx, etcdPrefix+"a", "127.0.0.1:3001")
	require.NoError(t, err)
	for i := range 20 { // the old store's revision well past the new one's
		_, err = oldCli.Put(ctx, "/elsewhere", strconv.Itoa(i))
		require.NoError(t, err)
	}
	p := newCutProxy(t, old.Addr)
	clk := newStepClock()
	svc := newService(t, etcdSource(t, p.Addr()), discovery.Config{}, discovery.WithClock(clk))
	assert.Equal(t, 10*time.Second, clk.sleeping(t), "the watch asks for progress on the Service's clock")
	require.Eventually(t, func() bool { return slices.Equal(svcAddrs(svc), []string{"127.0.0.1:3001"}) }, 10*time.Second, 5*time.Millisecond)

	_, err = etcdClient(t, fresh.Endpoint).Put(ctx, etcdPrefix+"b", "127.0.0.1:3002")
	require.NoError(t, err)
	p.Cut()
	p.Retarget(fresh.Addr)
	p.Heal()

	// Each step is one progress request; until the client has reconnected
	// to the new store it goes nowhere, so step until the set follows.
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Equal(svcAddrs(svc), []string{"127.0.0.1:3002"}) {
		require.True(t, time.Now().Before(deadline), "still %v: the new store was never listed", svcAddrs(svc))
		clk.step(t)
		followed := func() bool { return slices.Equal(svcAddrs(svc), []string{"127.0.0.1:3002"}) }
		if assert.Eventually(&quietT{}, followed, 200*time.Millisecond, 5*time.Millisecond) {
			break
		}
	}

	// And it follows the new store from there.
	_, err = etcdClient(t, fresh.Endpoint).Put(ctx, etcdPrefix+"c", "127.0.0.1:3003")
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		return slices.Equal(svcAddrs(svc), []string{"127.0.0.1:3002", "127.0.0.1:3003"})
	}, 10*time.Second, 5*time.Millisecond)
}

// quietT is an assert.TestingT that keeps failures to itself, for a bounded
// wait whose timeout is not a failure.
type quietT struct{}

func (quietT) Errorf(string, ...any) {}

// TestEtcdDownAtStart: a source whose etcd does not answer yet reports the
// failed listing (so a Service says why it has no endpoints) and finds the
// set once etcd is up.
func TestEtcdDownAtStart(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli := etcdClient(t, e.Endpoint)
	_, err := cli.Put(etcdCtx(t), etcdPrefix+"a", "127.0.0.1:4001")
	require.NoError(t, err)
	e.Stop()

	src, err := discovery.Etcd(discovery.EtcdConfig{
		Endpoints: []string{e.Endpoint}, Prefix: etcdPrefix, DialTimeout: 200 * time.Millisecond,
	})
	require.NoError(t, err)
	w := watchSource(t, src)
	select {
	case err := <-w.errs:
		assert.ErrorContains(t, err, "discovery: etcd")
	case set := <-w.sets:
		t.Fatalf("set %v with etcd down", set)
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported with etcd down")
	}
	e.Restart()
	w.waitSet(t, map[string]int{"127.0.0.1:4001": 1})
}

func svcAddrs(svc *discovery.Service) []string {
	var out []string
	for _, ep := range svc.Endpoints() {
		out = append(out, ep.Address)
	}
	return out
}
