package proxy_test

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// tlsUpstream is a TLS upstream with a server certificate from a pki (no
// client certificate asked for) that counts the ClientHellos it gets and
// the requests that reach its handler.
type tlsUpstream struct {
	srv      *httptest.Server
	hellos   atomic.Int64
	requests atomic.Int64
}

func newTLSUpstream(t *testing.T, p *pki, body string) *tlsUpstream {
	t.Helper()
	certPEM, keyPEM := p.Issue("upstream", true)
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	require.NoError(t, err)
	u := &tlsUpstream{}
	u.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.requests.Add(1)
		b, _ := io.ReadAll(r.Body)
		_, _ = io.WriteString(w, body+" "+r.Method+" "+string(b))
	}))
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	u.srv.TLS = &tls.Config{GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		u.hellos.Add(1)
		return cfg, nil
	}}
	u.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	u.srv.StartTLS()
	t.Cleanup(u.srv.Close)
	return u
}

func (u *tlsUpstream) addr(*testing.T) string { return u.srv.Listener.Addr().String() }

// A handshake that fails verification never sent the request: the
// ambassador answers 502 upstream_connect_failure, not upstream_reset.
func TestTLSVerificationFailureIsConnectFailure(t *testing.T) {
	p := newPKI(t)
	up := newTLSUpstream(t, p, "up")
	otherCA := filepath.Join(newPKI(t).Dir, "ca.pem")
	rightCA := filepath.Join(p.Dir, "ca.pem")
	cases := []struct{ name, tls string }{
		{"wrong CA", "tls: {ca_file: " + otherCA + "}"},
		{"wrong server name", "tls: {ca_file: " + rightCA + ", server_name: other.internal}"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := oneServiceAmbassador(t, []string{up.addr(t)}, tc.tls, "")
			code, reason, _ := fetch(t, client(t), http.MethodGet, "http://"+addr+"/x", "")
			assert.Equal(t, http.StatusBadGateway, code)
			assert.Equal(t, "upstream_connect_failure", reason)
		})
	}
	assert.Zero(t, up.requests.Load(), "no request reached the upstream")
	assert.NotZero(t, up.hellos.Load(), "the handshakes were tried")
}

// A POST whose first endpoint fails certificate verification is retried
// on the second (a connect failure: never sent, retryable for every
// method), and the first endpoint saw no request.
func TestTLSVerificationFailurePOSTRetriedOnNextEndpoint(t *testing.T) {
	p := newPKI(t)
	good := newTLSUpstream(t, p, "good")
	bad := newTLSUpstream(t, newPKI(t), "bad") // its certificate is from a CA the service does not trust
	addr, _ := oneServiceAmbassador(t, []string{bad.addr(t), good.addr(t)},
		"tls: {ca_file: "+filepath.Join(p.Dir, "ca.pem")+"}\nretry: {max_attempts: 2, base_delay: 1ms, max_delay: 1ms}", "")
	c := client(t)
	for i := range 4 { // round robin: at least two of them try the bad endpoint first
		resp, err := c.Post("http://"+addr+"/pay", "text/plain", strings.NewReader("order"))
		require.NoError(t, err)
		b, err := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "POST %d: %s %s", i, resp.Header.Get("X-Outbound-Error"), b)
		assert.Equal(t, "good POST order", string(b), "POST %d", i)
	}
	assert.Equal(t, int64(4), good.requests.Load())
	assert.Zero(t, bad.requests.Load(), "no request bytes reached the endpoint that failed verification")
	assert.GreaterOrEqual(t, bad.hellos.Load(), int64(2), "the bad endpoint was tried first at least twice")
}
