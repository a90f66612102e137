package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/outbound-go/outbound/internal/testkit"
)

// TestAbortedAnswerWithCallerBodyInFlightEnds reproduces the soak's rare
// client timeouts on /broken/ (HTTP/1.1 POSTs to the upstream that answers
// "200, Content-Length: 4096" with 100 bytes and hangs up without reading
// the body). The upstream answers before the request body has been read
// to its end, so the base transport's write loop is still reading the
// caller's body from the client connection when the proxy gives up on the
// cut answer (ReverseProxy panics with http.ErrAbortHandler). net/http's
// HTTP/1 server then aborts the pending read of that connection
// (connReader.abortPendingRead: a read deadline in the past, then it waits
// for the read to end). When the caller's last body bytes arrive just
// then, the write loop's read returns them instead of the deadline error,
// hits the end of the body and starts the server's background read, which
// clears the read deadline: the server waits for a read that nothing ends
// until the caller closes its connection. The caller got no answer at all,
// whatever the service timeout.
//
// The upstream here arranges the moment: once the body's first part has
// reached it (so the write loop waits for the rest from the client), it
// writes, in one goroutine, the caller's last bytes and then the cut
// answer and its FIN. With one P (the ambassador's default GOMAXPROCS)
// the runtime's network poller wakes both waiting goroutines at once and
// runs the last one woken first: the transport's read loop, which hands
// the answer to the proxy's goroutine, which aborts while the write loop,
// woken by the last bytes, has not run yet. Without the fix (the handler
// guards the caller's body: callerBody) the first few attempts hang. Every
// attempt must see its connection end (the ambassador closes it after an
// aborted answer) within three times the service timeout.
func TestAbortedAnswerWithCallerBodyInFlightEnds(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })

	const (
		serviceTimeout = time.Second
		first          = 8 << 10 // body bytes sent with the head
		last           = 1 << 10 // body bytes sent as the answer is cut
		attempts       = 50
	)
	type iteration struct {
		client net.Conn      // the caller's connection to the ambassador
		done   chan struct{} // closed when the caller is done with it
	}
	iters := make(chan iteration, 1)
	up := newRawUpstream(t, func(u *rawUpstream, c net.Conn, br *bufio.Reader) {
		it := <-iters
		if _, err := testkit.ReadRawRequestHead(br); err != nil {
			return
		}
		// The transport's 4 KiB write buffer may hold back the tail of
		// what it read: the first part minus that much has surely passed
		// through the write loop, which then waits on the client for more.
		if _, err := io.ReadFull(br, make([]byte, first-4<<10)); err != nil {
			return
		}
		_, _ = io.WriteString(it.client, strings.Repeat("p", last))
		_, _ = io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 4096\r\n\r\n"+strings.Repeat("r", 100))
		_ = c.(*net.TCPConn).CloseWrite()
		<-it.done // no RST from this side before the caller is done
	})
	addr, _ := oneServiceAmbassador(t, []string{up.Addr()},
		fmt.Sprintf("timeout: %s\nretry: {max_attempts: 2, retry_on: [reset, 5xx]}", serviceTimeout), "")

	for i := range attempts {
		c, _ := rawDial(t, addr)
		it := iteration{client: c, done: make(chan struct{})}
		iters <- it
		start := time.Now()
		require.NoError(t, c.SetDeadline(start.Add(3*serviceTimeout)))
		rawSend(t, c, fmt.Sprintf("POST /broken/x HTTP/1.1\r\nHost: up\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n%s",
			first+last, strings.Repeat("p", first)))
		_, err := io.Copy(io.Discard, c)
		close(it.done)
		_ = c.Close()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("attempt %d: no answer and no end of the connection within %s (3× the service timeout): the ambassador's HTTP/1 server is stuck aborting the read of the caller's body", i+1, time.Since(start).Round(time.Millisecond))
		}
	}
}
