package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/retry"
)

// hostRecorder is an upstream that answers every request with the Host it
// received and keeps them all; the first failFirst requests get 503.
type hostRecorder struct {
	addr string

	mu        sync.Mutex
	hosts     []string
	failFirst int
}

func newHostRecorder(t *testing.T, failFirst int) *hostRecorder {
	t.Helper()
	h := &hostRecorder{failFirst: failFirst}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.mu.Lock()
		h.hosts = append(h.hosts, r.Host)
		fail := len(h.hosts) <= h.failFirst
		h.mu.Unlock()
		if fail {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		_, _ = io.WriteString(w, r.Host)
	}))
	t.Cleanup(srv.Close)
	h.addr = srv.Listener.Addr().String()
	return h
}

func (h *hostRecorder) seen() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.hosts...)
}

// TestHostHeaderThroughProxy sends one request per host_header setting
// through the ambassador and checks the Host each upstream received.
func TestHostHeaderThroughProxy(t *testing.T) {
	cases := []struct {
		name       string
		hostHeader string
		clientHost string
		want       func(upstream string) string
	}{
		{"default is the endpoint", "", "client.example:8443", func(up string) string { return up }},
		{"endpoint", ambassador.HostEndpoint, "client.example", func(up string) string { return up }},
		{"preserve", ambassador.HostPreserve, "client.example:8443", func(string) string { return "client.example:8443" }},
		{"preserve the service's own name", ambassador.HostPreserve, "users", func(string) string { return "users" }},
		{"literal", "api.example.com", "client.example", func(string) string { return "api.example.com" }},
		{"literal with port", "api.example.com:8443", "client.example", func(string) string { return "api.example.com:8443" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			up := newHostRecorder(t, 0)
			sc := svc(up.addr)
			sc.HostHeader = tc.hostHeader
			cfg := &proxy.Config{
				Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
				Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "users"}},
				Services:  map[string]ambassador.ServiceConfig{"users": sc},
			}
			s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
			require.NoError(t, err)
			urls := serve(t, s)
			code, _, body := fetch(t, client(t), http.MethodGet, urls[0]+"/x", tc.clientHost)
			require.Equal(t, http.StatusOK, code, body)
			want := tc.want(up.addr)
			assert.Equal(t, want, body)
			assert.Equal(t, []string{want}, up.seen())
		})
	}
}

// TestHostHeaderSurvivesRetry checks that every attempt of a retried
// request carries the configured Host, not only the first.
func TestHostHeaderSurvivesRetry(t *testing.T) {
	for _, tc := range []struct{ hostHeader, clientHost, want string }{
		{"api.example.com", "client.example", "api.example.com"},
		{ambassador.HostPreserve, "client.example:8443", "client.example:8443"},
	} {
		t.Run(tc.hostHeader, func(t *testing.T) {
			up := newHostRecorder(t, 2)
			sc := svc(up.addr)
			sc.HostHeader = tc.hostHeader
			sc.Retry = &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
			cfg := &proxy.Config{
				Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
				Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "users"}},
				Services:  map[string]ambassador.ServiceConfig{"users": sc},
			}
			s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
			require.NoError(t, err)
			urls := serve(t, s)
			code, _, body := fetch(t, client(t), http.MethodGet, urls[0]+"/x", tc.clientHost)
			require.Equal(t, http.StatusOK, code, body)
			assert.Equal(t, []string{tc.want, tc.want, tc.want}, up.seen(), "Host of each attempt")
		})
	}
}

// TestHostHeaderConfigCheck checks that a bad host_header is refused at
// its key path, and that the keywords and literals are accepted.
func TestHostHeaderConfigCheck(t *testing.T) {
	for _, bad := range []string{`"api example.com"`, `api.example.com/v1`, `"http://api.example.com"`, `"api.example.com:0"`, `"api.example.com:http"`, `Preserve`, `"-bad-.example"`, `"::1"`, `"[::1"`} {
		t.Run(bad, func(t *testing.T) {
			doc := base + "    host_header: " + bad + "\n"
			ps := parseProblems(t, doc)
			require.Len(t, ps, 1, "%v", ps)
			assert.Equal(t, "services.users.host_header", ps[0].Path)
			assert.Regexp(t, `^"`, ps[0].Msg, "the message quotes the value")
		})
	}
	for _, good := range []string{"endpoint", "preserve", "api.example.com", "api.example.com:8443", "10.0.0.1", "[::1]:443", "localhost"} {
		t.Run(good, func(t *testing.T) {
			c, err := proxy.ParseConfig([]byte(base+"    host_header: \""+good+"\"\n"), "")
			require.NoError(t, err)
			assert.Equal(t, good, c.Services["users"].HostHeader)
		})
	}
}
