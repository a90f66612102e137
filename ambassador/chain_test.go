package ambassador_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
)

type rtFunc func(*http.Request) (*http.Response, error)

func (f rtFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// tag returns a middleware that appends name to the X-Order header on the way
// down, after cloning the request as the RoundTripper contract requires.
func tag(name string) ambassador.Middleware {
	return func(next http.RoundTripper) http.RoundTripper {
		return rtFunc(func(r *http.Request) (*http.Response, error) {
			r2 := r.Clone(r.Context())
			r2.Header.Add("X-Order", name)
			return next.RoundTrip(r2)
		})
	}
}

func TestChainOrderOutermostFirst(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(strings.Join(r.Header.Values("X-Order"), ",")))
	}))
	defer srv.Close()

	rt := ambassador.Chain(srv.Client().Transport, tag("a"), nil, tag("b"), tag("c"))
	req, err := http.NewRequest(http.MethodGet, srv.URL, nil)
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	assert.Equal(t, "a,b,c", string(body))
	assert.Empty(t, req.Header.Values("X-Order"), "caller's request must not be mutated")
}

func TestChainNilBaseUsesDefaultTransport(t *testing.T) {
	assert.Same(t, http.DefaultTransport, ambassador.Chain(nil))
}
