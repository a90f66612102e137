package main

import (
	"bufio"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/testserver"
)

// TestTCPListenerToRedis runs the binary with a tcp listener in front of a
// real redis-server: PING through it, the connection counted on /metrics
// under its Prometheus name, and SIGTERM exits 0.
func TestTCPListenerToRedis(t *testing.T) {
	r := testserver.StartRedis(t)
	admin, lis := freeAddr(t), freeAddr(t)
	p := runAmbassador(t, admin, `admin: {address: `+admin+`}
listeners: [{address: `+lis+`, protocol: tcp, service: cache}]
services:
  cache:
    protocol: tcp
    discovery: {static: [`+r.Addr+`]}
    tcp: {connect_timeout: 2s}
`)
	c, err := net.DialTimeout("tcp", lis, 2*time.Second)
	require.NoError(t, err)
	require.NoError(t, c.SetDeadline(time.Now().Add(5*time.Second)))
	_, err = io.WriteString(c, "*1\r\n$4\r\nPING\r\n")
	require.NoError(t, err)
	line, err := bufio.NewReader(c).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "+PONG\r\n", line)
	require.NoError(t, c.Close())

	hc := newClient(t)
	require.Eventually(t, func() bool {
		_, body := get(t, hc, p.admin+"/metrics")
		return strings.Contains(body, `outbound_tcp_connections_total{result="connected",service="cache"} 1`)
	}, 5*time.Second, 20*time.Millisecond)
	p.signal(t, syscall.SIGTERM)
	assert.Equal(t, 0, p.exitCode(t, 10*time.Second))
}

// TestCheckReportsTCPMismatches: -check names every listener/service
// protocol mismatch at its key and exits 2.
func TestCheckReportsTCPMismatches(t *testing.T) {
	path := writeConfig(t, `
listeners:
  - {address: 127.0.0.1:1, protocol: tcp, service: web}
  - {address: 127.0.0.1:2, service: cache}
  - {address: 127.0.0.1:3, protocol: tcp, routes: [{service: cache}]}
services:
  web: {discovery: {static: [127.0.0.1:4]}}
  cache: {protocol: tcp, discovery: {static: [127.0.0.1:5]}, tcp: {idle_timeout: -1s}}
`)
	p := startProc(t, "-config", path, "-check")
	assert.Equal(t, 2, p.exitCode(t, 10*time.Second))
	out := p.out.String()
	for _, key := range []string{
		"listeners[0].service: service \"web\" has protocol \"http1\"",
		"listeners[1].service: service \"cache\" has protocol tcp",
		"listeners[2].routes: a tcp listener takes service only",
		"services.cache.tcp.idle_timeout: must be ≥ 0",
	} {
		assert.Contains(t, out, key)
	}
}
