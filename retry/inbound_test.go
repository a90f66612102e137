package retry_test

import (
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/inbound/inboundtest"
	"github.com/outbound-go/outbound/retry"
)

// brokenPUT is an idempotent request whose body fails after a few bytes
// with io.ErrUnexpectedEOF (what a client that aborts its upload gives),
// as does every body its GetBody returns.
func brokenPUT(t *testing.T, url string, getBody bool) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, url, inboundtest.BrokenBody("part", io.ErrUnexpectedEOF))
	require.NoError(t, err)
	if getBody {
		req.GetBody = func() (io.ReadCloser, error) { return inboundtest.BrokenBody("part", io.ErrUnexpectedEOF), nil }
	}
	return req
}

// TestCallerBodyErrorIsNotRetried: an attempt that failed because reading
// the caller's body failed is returned at once (outcome not_retryable), over
// HTTP/1.1 and h2c, whether the body would be replayed through GetBody or
// from the buffer.
func TestCallerBodyErrorIsNotRetried(t *testing.T) {
	for i, proto := range []string{"http1", "h2c"} {
		for _, getBody := range []bool{true, false} {
			name := proto + "/buffered"
			if getBody {
				name = proto + "/GetBody"
			}
			t.Run(name, func(t *testing.T) {
				// A fresh upstream: an h2c handler may start after the
				// client saw the error, so counts must not carry over.
				up := inboundtest.Upstreams(t)[i]
				p, clk, m := newPolicy(t, retry.Config{MaxAttempts: 3})
				resp, err := p.RoundTripper(up.Transport).RoundTrip(brokenPUT(t, up.URL, getBody))
				require.Error(t, err)
				assert.Nil(t, resp)
				assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
				assert.Empty(t, clk.Sleeps(), "no backoff")
				assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
				assert.LessOrEqual(t, up.Arrived.Load(), int32(1), "sent once at most")
				assert.Zero(t, up.Complete.Load())
			})
		}
	}
}

// TestCallerBodyErrorIsNotRetriedWhateverTheTransportSays: the retry layer
// asks the body it sent, not the error: a transport that reports the
// caller's broken body as a connection reset (which GET and PUT retry)
// gets no second attempt.
func TestCallerBodyErrorIsNotRetriedWhateverTheTransportSays(t *testing.T) {
	var calls int
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		if _, err := io.Copy(io.Discard, r.Body); err != nil {
			return nil, &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})
	p, clk, m := newPolicy(t, retry.Config{MaxAttempts: 3})
	_, err := p.RoundTripper(base).RoundTrip(brokenPUT(t, "http://up.test/", true))
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ECONNRESET, "the transport's error is returned as it is")
	assert.Equal(t, 1, calls)
	assert.Empty(t, clk.Sleeps())
	assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
}

// TestUpstreamResetIsStillRetried: a body that read fine and a reset from
// the transport is the upstream's failure, retried as before.
func TestUpstreamResetIsStillRetriedWithBody(t *testing.T) {
	var calls int
	base := rtFunc(func(r *http.Request) (*http.Response, error) {
		calls++
		_, _ = io.Copy(io.Discard, r.Body)
		if calls == 1 {
			return nil, &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
		}
		return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("ok")), Request: r}, nil
	})
	p, _, m := newPolicy(t, retry.Config{MaxAttempts: 3})
	req, err := http.NewRequest(http.MethodPut, "http://up.test/", strings.NewReader("whole"))
	require.NoError(t, err)
	resp, err := p.RoundTripper(base).RoundTrip(req)
	require.NoError(t, err)
	assert.Equal(t, "ok", readAll(t, resp))
	assert.Equal(t, 2, calls)
	assert.Equal(t, map[string]int64{"retried": 1, "success": 1}, m.outcomes(t))
}

// TestCallerBodyErrorIsNotRetriedWhenHedged: the hedging path asks the
// body too: the failed attempt is the answer, with no retry after it.
func TestCallerBodyErrorIsNotRetriedWhenHedged(t *testing.T) {
	up := inboundtest.Upstreams(t)[0]
	p, clk, m := newPolicy(t, retry.Config{MaxAttempts: 3, Hedge: retry.HedgeConfig{Delay: time.Minute}})
	_, err := p.RoundTripper(up.Transport).RoundTrip(brokenPUT(t, up.URL, true))
	require.Error(t, err)
	assert.Empty(t, clk.Sleeps())
	assert.Equal(t, map[string]int64{"not_retryable": 1}, m.outcomes(t))
	assert.LessOrEqual(t, up.Arrived.Load(), int32(1))
}
