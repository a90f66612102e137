package ambassador_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/testkit"
	"github.com/outbound-go/outbound/retry"
)

// TestRetryWhileTransportStillWrites sends requests through a Stack (retry
// over discovery over net/http's Transport) to upstreams that leave the
// Transport writing an attempt's request after its RoundTrip returned, and
// lets retry send the next attempt meanwhile, many times over, for the race
// detector to see any attempt state (request copy, URL, body) that retry or
// discovery reuse while the Transport still reads it:
//
//   - an upstream that never reads, a body larger than the socket buffers
//     and a per-try timeout: every attempt is cut while the Transport's
//     writeLoop is blocked writing its body;
//   - an upstream that reads the head, answers 503 at once and then reads
//     the body slowly: retry sends the next attempt while writeLoop is
//     still writing the previous attempt's body.
//
// Every request must end after its attempts with the per-try timeout's
// error or the upstream's 503, the caller's request untouched.
func TestRetryWhileTransportStillWrites(t *testing.T) {
	body := bytes.Repeat([]byte("x"), 8<<20)
	cases := []struct {
		name     string
		perTry   time.Duration
		body     []byte
		requests int
		wantErr  bool
		// exactConns: every attempt reaches the upstream. Not so with a
		// 5 ms per-try timeout, which can end an attempt while it dials.
		exactConns bool
		handle     func(done <-chan struct{}, c net.Conn, br *bufio.Reader)
	}{
		{
			name: "never reads, per-try timeout", perTry: 5 * time.Millisecond,
			body: body, requests: 10, wantErr: true,
			handle: func(done <-chan struct{}, _ net.Conn, _ *bufio.Reader) { <-done },
		},
		{
			name: "503 after the head, body read slowly", body: body[:1<<20], requests: 20, exactConns: true,
			handle: func(_ <-chan struct{}, c net.Conn, br *bufio.Reader) {
				if _, err := testkit.ReadRawRequestHead(br); err != nil {
					return
				}
				_, _ = io.WriteString(c, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
				_, _ = io.Copy(io.Discard, &smallReads{r: br})
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan struct{})
			up := testkit.NewRawUpstream(t, func(_ *testkit.RawUpstream, c net.Conn, br *bufio.Reader) {
				tc.handle(done, c, br)
			})
			t.Cleanup(func() { close(done) }) // runs before the upstream's own cleanup
			s, err := ambassador.NewStack(ambassador.ServiceConfig{
				Name:      "svc",
				Discovery: discovery.Config{Static: []string{up.Addr()}},
				Retry: &retry.Config{
					MaxAttempts: 3, PerTryTimeout: tc.perTry,
					BaseDelay: time.Microsecond, MaxDelay: time.Microsecond,
					RetryOn: []string{"5xx", "reset", "connect-failure"},
					Budget:  retry.BudgetConfig{Disabled: true},
				},
			}, quietLogs)
			require.NoError(t, err)
			t.Cleanup(func() { _ = s.Close() })

			var wg sync.WaitGroup
			for range 2 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range tc.requests / 2 {
						if !putAndCheck(t, s, tc.body, tc.wantErr) {
							return
						}
					}
				}()
			}
			wg.Wait()
			if tc.exactConns {
				assert.Equal(t, 3*tc.requests, up.Conns(), "every request made its 3 attempts, each on a connection of its own")
			} else {
				assert.LessOrEqual(t, up.Conns(), 3*tc.requests, "no request made more than its 3 attempts")
			}
		})
	}
}

// putAndCheck sends one PUT of body to http://svc/a through rt and checks
// its end: an error (wantErr) or the upstream's 503, and the caller's
// request untouched.
func putAndCheck(t *testing.T, rt http.RoundTripper, body []byte, wantErr bool) bool {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPut, "http://svc/a?q=1", bytes.NewReader(body))
	require.NoError(t, err)
	resp, err := rt.RoundTrip(req)
	ok := assert.Equal(t, "svc", req.URL.Host, "the caller's URL is never rewritten")
	if wantErr {
		return assert.Error(t, err) && ok
	}
	if !assert.NoError(t, err) {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode) && ok
}

// smallReads reads r in pieces of at most 512 bytes.
type smallReads struct{ r io.Reader }

func (s *smallReads) Read(p []byte) (int, error) { return s.r.Read(p[:min(len(p), 512)]) }
