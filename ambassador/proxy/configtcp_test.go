package proxy_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
)

// tcpBase has an HTTP service web and a tcp service cache; cases add keys
// under cache (from line 7) and then the listeners.
const tcpBase = `services:
  web:
    discovery: {static: [127.0.0.1:8081]}
  cache:
    protocol: tcp
    discovery: {static: [127.0.0.1:6379]}
`

// TestTCPConfigProblems: every mismatch of listener and service protocol,
// and every bad tcp key, is reported at its key path.
func TestTCPConfigProblems(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []want
	}{
		{"tcp listener with routes", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, protocol: tcp, routes: [{service: cache}]}\n",
			[]want{{"listeners[0].routes", 8, "a tcp listener takes service only"}, {"listeners[0].service", 8, "required for a tcp listener"}}},
		{"tcp listener with a split", tcpBase + "listeners:\n  - address: 127.0.0.1:10001\n    protocol: tcp\n    routes: [{split: [{service: cache, weight: 1}]}]\n",
			[]want{{"listeners[0].service", 8, "required for a tcp listener"}, {"listeners[0].routes", 10, "no routes or split"}}},
		{"tcp listener on an http service", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, protocol: tcp, service: web}\n",
			[]want{{"listeners[0].service", 8, `service "web" has protocol "http1"; a tcp listener needs a service of protocol tcp`}}},
		{"http listener on a tcp service", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, service: cache}\n",
			[]want{{"listeners[0].service", 8, `service "cache" has protocol tcp; only a tcp listener (protocol: tcp) can use it`}}},
		{"route to a tcp service", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, routes: [{path_prefix: /c/, service: cache}]}\n",
			[]want{{"listeners[0].routes[0].service", 8, `service "cache" has protocol tcp`}}},
		{"split to a tcp service", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, routes: [{split: [{service: web, weight: 1}, {service: cache, weight: 1}]}]}\n",
			[]want{{"listeners[0].routes[0].split[1].service", 8, `service "cache" has protocol tcp`}}},
		{"tcp listener with transcode", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, protocol: tcp, service: cache, transcode: {}}\n",
			[]want{{"listeners[0].transcode", 8, "not for a tcp listener"}}},
		{"unknown listener protocol", tcpBase + "listeners:\n  - {address: 127.0.0.1:10001, protocol: udp, service: web}\n",
			[]want{{"listeners[0].protocol", 8, `unknown protocol "udp": want http or tcp`}}},
		{"negative tcp durations", tcpBase + "    tcp: {connect_timeout: -1s, idle_timeout: -2s, queue_timeout: -3s}\nlisteners:\n  - {address: 127.0.0.1:10001, protocol: tcp, service: cache}\n",
			[]want{{"services.cache.tcp.connect_timeout", 7, "must be ≥ 0"}, {"services.cache.tcp.idle_timeout", 7, "must be ≥ 0"}, {"services.cache.tcp.queue_timeout", 7, "must be ≥ 0"}}},
		{"tcp block on an http service", "services:\n  web:\n    discovery: {static: [127.0.0.1:8081]}\n    tcp: {idle_timeout: 1s}\nlisteners:\n  - {address: 127.0.0.1:10001, service: web}\n",
			[]want{{"services.web.tcp", 4, "only for protocol tcp"}}},
		{"http-only keys on a tcp service", tcpBase + "    ratelimit: {rps: 1}\n    host_header: preserve\nlisteners:\n  - {address: 127.0.0.1:10001, protocol: tcp, service: cache}\n",
			[]want{{"services.cache.ratelimit", 7, "not supported for protocol tcp"}, {"services.cache.host_header", 8, "not used by protocol tcp"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ps := parseProblems(t, tc.doc)
			require.Len(t, ps, len(tc.want), "%v", ps)
			for i, w := range tc.want {
				assert.Equal(t, w.path, ps[i].Path, "problem %d: %v", i, ps[i])
				if w.line != 0 {
					assert.Equal(t, w.line, ps[i].Line, "problem %d: %v", i, ps[i])
				}
				assert.Contains(t, ps[i].Msg, w.msg, "problem %d", i)
			}
		})
	}
}

// TestTCPServiceRefusedByHTTPStack: NewTransport and DialOptions refuse a
// tcp service with ErrTCPService; NewTCPStack refuses any other protocol.
func TestTCPServiceRefusedByHTTPStack(t *testing.T) {
	c := ambassador.ServiceConfig{Name: "cache", Protocol: ambassador.ProtocolTCP}
	c.Discovery.Static = []string{"127.0.0.1:6379"}
	_, err := ambassador.NewTransport(c)
	require.ErrorIs(t, err, ambassador.ErrTCPService)
	_, err = ambassador.DialOptions(c)
	require.ErrorIs(t, err, ambassador.ErrTCPService)

	c.Protocol = ambassador.ProtocolHTTP1
	_, err = ambassador.NewTCPStack(c)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs protocol tcp")
}
