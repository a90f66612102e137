package proxy_test

import (
	"bufio"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// The raw-socket fakes of internal/testkit, by the names these tests use.
type (
	rawRequest  = testkit.RawRequest
	rawResponse = testkit.RawResponse
	rawUpstream = testkit.RawUpstream
)

const wireTimeout = testkit.WireTimeout

var (
	newRawUpstream  = testkit.NewRawUpstream
	readRawResponse = testkit.ReadRawResponse
	rawDial         = testkit.RawDial
	rawSend         = testkit.RawSend
	writeResponse   = testkit.WriteResponse
)

// oneServiceAmbassador starts an ambassador with one listener sending
// everything to service "up" at the given endpoints; extra is YAML
// appended under the service (indented by four spaces), limits is YAML for
// the top-level limits section (a flow mapping such as "{idle_timeout: 1s}"
// or ""). It returns the listener's host:port and the server.
func oneServiceAmbassador(t *testing.T, endpoints []string, extra, limits string) (string, *proxy.Server) {
	t.Helper()
	var b strings.Builder
	b.WriteString("admin: {address: 127.0.0.1:0}\n")
	if limits != "" {
		b.WriteString("limits: " + limits + "\n")
	}
	b.WriteString("listeners:\n  - {address: 127.0.0.1:0, service: up}\nservices:\n  up:\n")
	b.WriteString("    discovery: {static: [" + strings.Join(endpoints, ", ") + "]}\n")
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		if l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	cfg, err := proxy.ParseConfig([]byte(b.String()), t.TempDir())
	require.NoError(t, err, "config:\n%s", b.String())
	s, err := proxy.NewServer(cfg, proxy.WithLogger(quietLogger()))
	require.NoError(t, err)
	urls := serve(t, s)
	return strings.TrimPrefix(urls[0], "http://"), s
}

// TestRawFakesRoundTrip checks the fakes themselves against the
// ambassador: a request written byte by byte reaches the raw upstream as
// one request with its body, and the raw answer comes back whole.
func TestRawFakesRoundTrip(t *testing.T) {
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		for {
			req, err := u.ReadRequest(br)
			if err != nil {
				return
			}
			writeResponse(t, c, "HTTP/1.1 200 OK\r\nContent-Length: "+strconv.Itoa(len(req.Body)+3)+"\r\n\r\nok:"+string(req.Body))
		}
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()}, "", "")
	c, br := rawDial(t, addr)
	rawSend(t, c, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello")
	resp, err := readRawResponse(br, "POST")
	require.NoError(t, err)
	require.Equal(t, 200, resp.Status)
	require.True(t, resp.Complete)
	require.Equal(t, "ok:hello", string(resp.Body))
	reqs := up.Requests()
	require.Len(t, reqs, 1)
	require.Equal(t, "/echo", reqs[0].Target)
	require.Equal(t, "hello", string(reqs[0].Body))
}
