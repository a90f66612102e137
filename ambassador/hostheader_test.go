package ambassador_test

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

// seenReq is what an upstream received: the Host header and the TLS
// server name (SNI) of its connection.
type seenReq struct{ host, sni string }

// hostUpstream records every request; the first failFirst get 503.
type hostUpstream struct {
	mu        sync.Mutex
	seen      []seenReq
	failFirst int
}

func (u *hostUpstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := seenReq{host: r.Host}
	if r.TLS != nil {
		s.sni = r.TLS.ServerName
	}
	u.mu.Lock()
	u.seen = append(u.seen, s)
	fail := len(u.seen) <= u.failFirst
	u.mu.Unlock()
	if fail {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
}

func (u *hostUpstream) requests() []seenReq {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]seenReq(nil), u.seen...)
}

// hostTransport builds the stack for c with NewTransport and closes it at
// the end of the test.
func hostTransport(t *testing.T, c ambassador.ServiceConfig) http.RoundTripper {
	t.Helper()
	rt, err := ambassador.NewTransport(c)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, rt.(io.Closer).Close()) })
	return rt
}

func getWithHost(t *testing.T, rt http.RoundTripper, url, host string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestNewTransportHostHeader checks the Host a library caller's requests
// carry for each host_header setting, on every attempt of a retry.
func TestNewTransportHostHeader(t *testing.T) {
	cases := []struct {
		name, hostHeader, callerHost string
		want                         func(endpoint string) string
	}{
		{"default: the endpoint", "", "", func(ep string) string { return ep }},
		{"literal", "api.example.com", "", func(string) string { return "api.example.com" }},
		{"literal wins over the caller's", "api.example.com", "caller.example", func(string) string { return "api.example.com" }},
		{"preserve the caller's", ambassador.HostPreserve, "caller.example", func(string) string { return "caller.example" }},
		{"preserve the logical name", ambassador.HostPreserve, "users", func(string) string { return "users" }},
		{"endpoint replaces the logical name", ambassador.HostEndpoint, "users", func(ep string) string { return ep }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := &hostUpstream{failFirst: 1}
			srv := httptest.NewServer(up)
			t.Cleanup(srv.Close)
			ep := srv.Listener.Addr().String()
			rt := hostTransport(t, ambassador.ServiceConfig{
				Name:       "users",
				Discovery:  discovery.Config{Static: []string{ep}},
				HostHeader: tc.hostHeader,
				Retry:      &retry.Config{MaxAttempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
			})
			getWithHost(t, rt, "http://users/x", tc.callerHost)
			w := seenReq{host: tc.want(ep)}
			assert.Equal(t, []seenReq{w, w}, up.requests(), "both attempts")
		})
	}
}

// TestNewTransportHostHeaderKeepsTLSServerName checks that a literal
// host_header does not change TLS: the certificate is verified against
// the endpoint's address (no SNI for an IP) or tls.server_name, while the
// Host header is the literal either way.
func TestNewTransportHostHeaderKeepsTLSServerName(t *testing.T) {
	p := newPKI(t)
	certPEM, keyPEM := p.Issue("upstream", true) // for 127.0.0.1 and users.internal
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	up := &hostUpstream{}
	srv := httptest.NewUnstartedServer(up)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	ep := srv.Listener.Addr().String()
	ca := filepath.Join(p.Dir, "ca.pem")

	for _, serverName := range []string{"", "users.internal"} {
		rt := hostTransport(t, ambassador.ServiceConfig{
			Name:       "users",
			Discovery:  discovery.Config{Static: []string{ep}},
			TLS:        ambassador.TLSConfig{CAFile: ca, ServerName: serverName},
			HostHeader: "api.example.com",
		})
		getWithHost(t, rt, "http://users/x", "")
	}
	assert.Equal(t, []seenReq{
		{host: "api.example.com", sni: ""},
		{host: "api.example.com", sni: "users.internal"},
	}, up.requests())
}

// TestServiceConfigHostHeaderValidate checks the values Validate refuses,
// each at host_header.
func TestServiceConfigHostHeaderValidate(t *testing.T) {
	base := ambassador.ServiceConfig{Name: "users", Discovery: discovery.Config{Static: []string{"127.0.0.1:1"}}}
	for _, bad := range []string{"a b", "a/b", "http://a", "a:0", "a:99999", "ENDPOINT", "::1", "[::1", "[1.2.3.4]", "a..b", "-a", "user@a"} {
		c := base
		c.HostHeader = bad
		err := c.Validate()
		require.Error(t, err, "%q", bad)
		var ce *proxy.ConfigError
		require.ErrorAs(t, err, &ce, "%q", bad)
		require.Len(t, ce.Problems, 1, "%q", bad)
		assert.Equal(t, "host_header", ce.Problems[0].Path, "%q", bad)
	}
	for _, good := range []string{"", "endpoint", "preserve", "api.example.com", "api.example.com.", "a:1", "[::1]", "[::1]:443", "10.1.2.3:80", "my_host"} {
		c := base
		c.HostHeader = good
		assert.NoError(t, c.Validate(), "%q", good)
	}
}
