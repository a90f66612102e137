package ambassador_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
)

// TestLogicalHostIgnoresCaseAndDefaultPort checks which URLs reach the
// service: the logical host in any case, with or without the scheme's
// default port, goes to the service's endpoint (with the Host header the
// plain http://users/x would get); a non-default port, or another host,
// passes through untouched. The base records where each request went.
func TestLogicalHostIgnoresCaseAndDefaultPort(t *testing.T) {
	const endpoint = "127.0.0.1:9"
	type sent struct{ urlHost, host string }
	var (
		mu   sync.Mutex
		seen []sent
	)
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		mu.Lock()
		seen = append(seen, sent{r.URL.Host, r.Host})
		mu.Unlock()
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	s, err := ambassador.NewStack(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{endpoint}},
	}, ambassador.WithBase(base), quietLogs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	for _, tc := range []struct {
		url       string
		toService bool
	}{
		{"http://users/x", true},
		{"http://USERS/x", true},
		{"http://Users:80/x", true},
		{"http://users:80/x", true},
		{"https://users:443/x", true},
		{"https://USERS/x", true},
		{"http://users:8080/x", false},
		{"http://users:443/x", false},
		{"https://users:80/x", false},
		{"http://users.example/x", false},
		{"http://other/x", false},
	} {
		t.Run(tc.url, func(t *testing.T) {
			mu.Lock()
			seen = nil
			mu.Unlock()
			req, err := http.NewRequest(http.MethodGet, tc.url, nil)
			require.NoError(t, err)
			orig := *req.URL
			resp, err := s.RoundTrip(req)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			assert.Equal(t, orig, *req.URL, "the caller's request is not modified")
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, seen, 1)
			if tc.toService {
				assert.Equal(t, sent{endpoint, ""}, seen[0], "should reach the service's endpoint")
			} else {
				assert.Equal(t, sent{orig.Host, orig.Host}, seen[0], "should pass through untouched")
			}
		})
	}
}

// TestLogicalHostKeepsCallersHostHeader: a Host header the caller set to
// something other than the logical name survives the normalised match.
func TestLogicalHostKeepsCallersHostHeader(t *testing.T) {
	got := make(chan string, 1)
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		got <- r.Host
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: r}, nil
	})
	s, err := ambassador.NewStack(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{"127.0.0.1:9"}},
	}, ambassador.WithBase(base), quietLogs)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	req, err := http.NewRequest(http.MethodGet, "http://USERS:80/x", nil)
	require.NoError(t, err)
	req.Host = "users.internal"
	resp, err := s.RoundTrip(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	assert.Equal(t, "users.internal", <-got)
}
