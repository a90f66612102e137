package proxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCallerBodyFinish: finish ends a read of the caller's body that is
// still waiting for bytes the client has not sent (or, when it runs before
// that read starts, the read is refused), and every later Read or Close
// leaves the server's body alone.
func TestCallerBodyFinish(t *testing.T) {
	type result struct {
		finished   bool  // finish returned
		readErr    error // the blocked reader's error
		afterRead  error
		afterClose error
	}
	results := make(chan result, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b := newCallerBody(r.Body)
		first := make([]byte, 5)
		if _, err := io.ReadFull(b, first); err != nil {
			t.Errorf("reading the first bytes: %v", err)
			results <- result{}
			return
		}
		readDone := make(chan error, 1)
		go func() {
			// The client sent 5 of 10 bytes: this read waits for the rest.
			_, err := io.ReadFull(b, make([]byte, 5))
			readDone <- err
		}()
		finished := make(chan struct{})
		go func() {
			b.finish(w)
			close(finished)
		}()
		var res result
		select {
		case <-finished:
			res.finished = true
		case <-time.After(5 * time.Second):
		}
		select {
		case res.readErr = <-readDone:
		case <-time.After(5 * time.Second):
		}
		_, res.afterRead = b.Read(make([]byte, 1))
		res.afterClose = b.Close()
		results <- res
	}))
	defer srv.Close()

	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
	require.NoError(t, err)
	res := <-results
	assert.True(t, res.finished, "finish did not return")
	assert.Error(t, res.readErr, "the blocked read must end with an error")
	assert.ErrorIs(t, res.afterRead, errHandlerDone)
	assert.NoError(t, res.afterClose)
}
