package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/outbound-go/outbound/internal/testserver"
)

// TestEtcdDiscoveryProcess: the ambassador process with discovery.etcd
// sends requests to the endpoints under the prefix, follows a put and a
// delete, keeps serving the last set while etcd is stopped, and follows
// etcd again once it is back.
func TestEtcdDiscoveryProcess(t *testing.T) {
	e := testserver.StartEtcd(t)
	cli, err := clientv3.New(clientv3.Config{Endpoints: []string{e.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	require.NoError(t, err)
	defer cli.Close()
	put := func(k, v string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cli.Put(ctx, "/services/users/"+k, v)
		require.NoError(t, err)
	}
	del := func(k string) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := cli.Delete(ctx, "/services/users/"+k)
		require.NoError(t, err)
	}
	one, two, three := textUpstream(t, "one"), textUpstream(t, "two"), textUpstream(t, "three")
	put("one", hostOf(one.URL))

	admin, lis := freeAddr(t), freeAddr(t)
	runAmbassador(t, admin, fmt.Sprintf(`
admin: {address: %s}
listeners: [{address: %s, service: users}]
services:
  users:
    discovery:
      etcd: {endpoints: [%s], prefix: /services/users/, dial_timeout: 2s}
`, admin, lis, e.Endpoint))
	c := newClient(t)
	u := "http://" + lis + "/"
	_, body := get(t, c, u)
	require.Equal(t, "one", body)

	put("two", `{"Addr": "`+hostOf(two.URL)+`", "Metadata": {"weight": 2}}`)
	del("one")
	require.Eventually(t, func() bool { return answersOnly(c, u, "two") }, 5*time.Second, 10*time.Millisecond)

	e.Stop()
	for range 10 {
		resp, body := get(t, c, u)
		require.Equal(t, http.StatusOK, resp.StatusCode)
		assert.Equal(t, "two", body, "the last set serves while etcd is down")
	}

	e.Restart()
	put("three", hostOf(three.URL))
	del("two")
	require.Eventually(t, func() bool { return answersOnly(c, u, "three") }, 10*time.Second, 10*time.Millisecond)
}

// TestCheckNamesBadEtcdKeys: -check names each bad discovery.etcd setting
// by its key path.
func TestCheckNamesBadEtcdKeys(t *testing.T) {
	path := writeConfig(t, `
listeners: [{address: 127.0.0.1:1, service: users}]
services:
  users:
    discovery:
      etcd: {endpoints: [127.0.0.1, "http://127.0.0.1:2379/v3"], dial_timeout: -1s, bogus: 1}
`)
	p := startProc(t, "-config", path, "-check")
	assert.Equal(t, 2, p.exitCode(t, 10*time.Second))
	out := p.out.String()
	for _, key := range []string{
		"services.users.discovery.etcd.endpoints[0]:",
		"services.users.discovery.etcd.endpoints[1]:",
		"services.users.discovery.etcd.prefix:",
		"services.users.discovery.etcd.dial_timeout:",
		"services.users.discovery.etcd.bogus",
	} {
		assert.Contains(t, out, key)
	}

	good := writeConfig(t, `
listeners: [{address: 127.0.0.1:1, service: users}]
services:
  users: {discovery: {etcd: {endpoints: [127.0.0.1:2379], prefix: /services/users/}}}
`)
	p = startProc(t, "-config", good, "-check")
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second), p.out.String())
}

// answersOnly reports whether four GETs in a row answer want: with
// round_robin, no other endpoint is left in the set.
func answersOnly(c *http.Client, u, want string) bool {
	for range 4 {
		if !answers(c, u, want) {
			return false
		}
	}
	return true
}
