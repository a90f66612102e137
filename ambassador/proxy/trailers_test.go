package proxy_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// trailerEcho is an upstream that answers the request body and the value of
// its X-Checksum trailer, over HTTP/1.1 and h2c.
func trailerEcho(t *testing.T) string {
	t.Helper()
	return serveH1AndH2C(t, func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		_, _ = io.WriteString(w, r.Proto+" "+string(b)+" checksum="+r.Trailer.Get("X-Checksum"))
	})
}

// sendWithTrailer sends "payload" with the trailer X-Checksum: 42 to addr,
// as a body of unknown length (chunked over HTTP/1.1) unless knownLength,
// requires a 200 and returns the answer's body.
func sendWithTrailer(t *testing.T, c *http.Client, method, addr string, knownLength bool) string {
	t.Helper()
	var payload io.Reader = io.MultiReader(strings.NewReader("payload"))
	if knownLength {
		payload = strings.NewReader("payload")
	}
	req, err := http.NewRequest(method, "http://"+addr+"/sum", payload)
	require.NoError(t, err)
	req.Trailer = http.Header{"X-Checksum": {"42"}}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	return string(body)
}

// A request's trailers reach the upstream: ReverseProxy sends a copy of the
// trailer map taken before the body was read, which the server fills only
// at the body's end, so without care the upstream got the announcement
// (Trailer: X-Checksum) and an empty trailer section. Over HTTP/1.1 and h2c
// from the client, to an HTTP/1.1 and an h2c upstream, with and without
// retry (whose attempts copy the request too).
func TestRequestTrailersReachTheUpstream(t *testing.T) {
	up := trailerEcho(t)
	for _, tc := range []struct {
		name, extra string
		h2cClient   bool
		wantProto   string
		knownLength bool // the client sends a Content-Length (HTTP/2 allows trailers after it)
	}{
		{"http1 to http1", "", false, "HTTP/1.1", false},
		{"http1 to h2c", "protocol: h2c", false, "HTTP/2.0", false},
		{"h2c to http1", "", true, "HTTP/1.1", false},
		{"http1 to http1 with retry", "retry: {}", false, "HTTP/1.1", false},
		{"h2c to h2c with retry", "protocol: h2c\nretry: {}", true, "HTTP/2.0", false},
		{"h2c with a Content-Length to http1", "", true, "HTTP/1.1", true},
		{"h2c with a Content-Length to h2c", "protocol: h2c", true, "HTTP/2.0", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr, _ := oneServiceAmbassador(t, []string{up}, tc.extra, "")
			c := client(t)
			if tc.h2cClient {
				c = h2cClient(t)
			}
			body := sendWithTrailer(t, c, http.MethodPost, addr, tc.knownLength)
			assert.Equal(t, tc.wantProto+" payload checksum=42", body)
		})
	}
}

// A retried request sends its trailers again: the first attempt's upstream
// read the body and its trailer, then closed the connection without an
// answer (upstream_reset, retried for an idempotent PUT); the second
// attempt, from the replayed body, carries the trailer too.
func TestRequestTrailersOnRetriedAttempt(t *testing.T) {
	var calls atomic.Int32
	var seen []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b)+" checksum="+r.Trailer.Get("X-Checksum"))
		mu.Unlock()
		if calls.Add(1) == 1 {
			c, _, err := http.NewResponseController(w).Hijack()
			if err == nil {
				_ = c.Close()
			}
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	addr, _ := oneServiceAmbassador(t, []string{srv.Listener.Addr().String()}, "retry: {base_delay: 1ms, max_delay: 1ms}", "")
	sendWithTrailer(t, client(t), http.MethodPut, addr, false)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"payload checksum=42", "payload checksum=42"}, seen)
}

// A hedged request sends its trailers with every attempt: the first attempt
// is held until the hedge arrives, and both read the body and the trailer
// (the hedge from the replayed body) while the first may still be reading.
func TestRequestTrailersOnHedgedAttempts(t *testing.T) {
	var (
		mu    sync.Mutex
		seen  []string
		calls atomic.Int32
	)
	hedged := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b)+" checksum="+r.Trailer.Get("X-Checksum"))
		mu.Unlock()
		if calls.Add(1) == 1 {
			select { // the first attempt answers once the hedge came
			case <-hedged:
			case <-r.Context().Done():
				return
			}
		} else {
			close(hedged)
		}
		_, _ = io.WriteString(w, "ok")
	}))
	t.Cleanup(srv.Close)
	addr, _ := oneServiceAmbassador(t, []string{srv.Listener.Addr().String()}, "retry: {hedge: {delay: 1ms}}", "")
	sendWithTrailer(t, client(t), http.MethodPut, addr, false)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(seen) == 2 }, wireTimeout, time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []string{"payload checksum=42", "payload checksum=42"}, seen)
}
