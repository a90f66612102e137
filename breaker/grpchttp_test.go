package breaker_test

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/internal/testkit"
)

// h2cClient sends HTTP/2 with prior knowledge, as the ambassador sends
// gRPC to an h2c service, through b's RoundTripper.
func h2cClient(t *testing.T, b *breaker.Breaker) *http.Client {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: b.RoundTripper(tr)}
}

// grpcOverHTTP sends one gRPC call (an empty request message) to method
// as a plain HTTP/2 request and returns the grpc-status of the answer,
// from its headers (trailers-only) or its trailers.
func grpcOverHTTP(t *testing.T, c *http.Client, addr, method string) (string, error) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, "http://"+addr+method, bytes.NewReader([]byte{0, 0, 0, 0, 0}))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("TE", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	if s := resp.Header.Get("Grpc-Status"); s != "" {
		return s, nil
	}
	return resp.Trailer.Get("Grpc-Status"), nil
}

// TestGRPCOverHTTPTrailersOnly: a gRPC error proxied over HTTP/2 comes back
// HTTP 200 with grpc-status in the headers; the HTTP breaker counts it by
// the gRPC failure codes, so an endpoint answering UNAVAILABLE is ejected
// and one answering NOT_FOUND is not.
func TestGRPCOverHTTPTrailersOnly(t *testing.T) {
	for _, tc := range []struct {
		code   codes.Code
		status string
		trips  bool
	}{
		{codes.Unavailable, "14", true},
		{codes.Internal, "13", true},
		{codes.NotFound, "5", false},
		{codes.OK, "0", false},
	} {
		t.Run(tc.code.String(), func(t *testing.T) {
			h := testkit.NewSwitchHealth(codes.OK)
			h.Set(tc.code, nil)
			addr := testkit.StartHealth(t, h)
			b := newBreaker(t, breaker.Config{ConsecutiveFailures: 2})
			c := h2cClient(t, b)
			for range 2 {
				got, err := grpcOverHTTP(t, c, addr, "/grpc.health.v1.Health/Check")
				require.NoError(t, err)
				assert.Equal(t, tc.status, got)
			}
			_, err := grpcOverHTTP(t, c, addr, "/grpc.health.v1.Health/Check")
			if tc.trips {
				require.ErrorIs(t, err, breaker.ErrOpen)
				assert.Equal(t, breaker.StateOpen, b.State(addr))
				assert.Equal(t, int64(2), h.Calls.Load(), "the third call is refused")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, breaker.StateClosed, b.State(addr))
		})
	}
}

// TestGRPCOverHTTPStatusInTrailersNotJudged: a status that arrives after a
// response message, in the trailers, belongs to the body, which is the
// caller's: the response was classified (a success) when its headers came.
func TestGRPCOverHTTPStatusInTrailersNotJudged(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	h.Set(codes.Unavailable, nil)
	addr := testkit.StartHealth(t, h)
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1})
	c := h2cClient(t, b)
	for range 3 {
		got, err := grpcOverHTTP(t, c, addr, "/grpc.health.v1.Health/Watch")
		require.NoError(t, err)
		assert.Equal(t, "14", got)
	}
	assert.Equal(t, breaker.StateClosed, b.State(addr))
}

// TestGRPCOverHTTPCustomClassifier: WithClassifier replaces the rule for
// gRPC answers too.
func TestGRPCOverHTTPCustomClassifier(t *testing.T) {
	h := testkit.NewSwitchHealth(codes.OK)
	h.Set(codes.Unavailable, nil)
	addr := testkit.StartHealth(t, h)
	never := func(*http.Request, *http.Response, error) breaker.Outcome { return breaker.Success }
	b := newBreaker(t, breaker.Config{ConsecutiveFailures: 1}, breaker.WithClassifier(never))
	c := h2cClient(t, b)
	for range 3 {
		_, err := grpcOverHTTP(t, c, addr, "/grpc.health.v1.Health/Check")
		require.NoError(t, err)
	}
	assert.Equal(t, breaker.StateClosed, b.State(addr))
}
