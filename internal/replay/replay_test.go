package replay_test

import (
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/inbound"
	"github.com/outbound-go/outbound/internal/replay"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type body struct {
	io.Reader
	closed atomic.Int32
}

func (b *body) Close() error { b.closed.Add(1); return nil }

func newReq(t *testing.T, r io.ReadCloser) *http.Request {
	req, err := http.NewRequest(http.MethodPut, "http://x/", nil)
	require.NoError(t, err)
	req.Body = r
	return req
}

func read(t *testing.T, r io.Reader) string {
	b, err := io.ReadAll(r)
	require.NoError(t, err)
	return string(b)
}

func TestNoBody(t *testing.T) {
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	src, first := replay.Prepare(req, 10)
	assert.Nil(t, first)
	b, _, ok := src.Next()
	assert.True(t, ok)
	assert.Equal(t, http.NoBody, b)
}

func TestGetBody(t *testing.T) {
	req, _ := http.NewRequest(http.MethodPut, "http://x/", strings.NewReader("hello"))
	src, first := replay.Prepare(req, 1)
	assert.False(t, src.Recording())
	assert.Equal(t, "hello", read(t, first))
	b, gb, ok := src.Next()
	require.True(t, ok)
	assert.NotNil(t, gb)
	assert.Equal(t, "hello", read(t, b))
}

func TestRecordedWhileStreamed(t *testing.T) {
	orig := &body{Reader: strings.NewReader("abcdefgh")}
	src, first := replay.Prepare(newReq(t, orig), 100)
	require.True(t, src.Recording())
	assert.Equal(t, "abcdefgh", read(t, first))
	assert.True(t, src.Complete())
	require.NoError(t, first.Close())
	assert.Zero(t, orig.closed.Load(), "kept open until released")
	for range 2 {
		b, gb, ok := src.Next()
		require.True(t, ok)
		assert.Equal(t, "abcdefgh", read(t, b))
		g, err := gb()
		require.NoError(t, err)
		assert.Equal(t, "abcdefgh", read(t, g))
	}
	src.Release()
	assert.EqualValues(t, 1, orig.closed.Load())
}

func TestPartlyReadBodyIsCompletedForReplay(t *testing.T) {
	orig := &body{Reader: strings.NewReader("0123456789")}
	src, first := replay.Prepare(newReq(t, orig), 100)
	p := make([]byte, 4)
	n, err := first.Read(p)
	require.NoError(t, err)
	assert.Equal(t, "0123", string(p[:n]))
	assert.False(t, src.Complete())
	// A replay reads ahead; the first attempt still sees the whole body.
	b, _, ok := src.Next()
	require.True(t, ok)
	assert.Equal(t, "0123456789", read(t, b))
	assert.Equal(t, "456789", read(t, first))
	require.NoError(t, first.Close())
	src.Release()
	assert.EqualValues(t, 1, orig.closed.Load())
}

func TestTooLargeIsNotReplayed(t *testing.T) {
	orig := &body{Reader: strings.NewReader(strings.Repeat("x", 1000))}
	src, first := replay.Prepare(newReq(t, orig), 10)
	assert.Len(t, read(t, first), 1000, "streamed once, whole")
	_, _, ok := src.Next()
	assert.False(t, ok)
	src.Release()
	assert.Zero(t, orig.closed.Load(), "the transport has not closed it yet")
	require.NoError(t, first.Close())
	assert.EqualValues(t, 1, orig.closed.Load())
}

func TestUnsentTooLargeBody(t *testing.T) {
	orig := &body{Reader: strings.NewReader(strings.Repeat("x", 1000))}
	src, _ := replay.Prepare(newReq(t, orig), 10)
	_, _, ok := src.Next()
	assert.False(t, ok)
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("disk gone") }
func (failing) Close() error             { return nil }

func TestReadErrorIsNotReplayed(t *testing.T) {
	src, first := replay.Prepare(newReq(t, failing{}), 10)
	_, err := first.Read(make([]byte, 1))
	assert.Error(t, err)
	_, _, ok := src.Next()
	assert.False(t, ok)
}

func TestDeclaredTooLargeIsNeverBuffered(t *testing.T) {
	orig := &body{Reader: strings.NewReader(strings.Repeat("x", 100))}
	req := newReq(t, orig)
	req.ContentLength = 100
	src, first := replay.Prepare(req, 10)
	assert.False(t, src.Recording())
	assert.Same(t, orig, first, "the caller's body goes out as it is")
	_, _, ok := src.Next()
	assert.False(t, ok)
}

// A transport may close the body from another goroutine to abort a read
// that blocks on a slow sender: Close and Complete must not wait for it.
func TestCloseDoesNotWaitForBlockedRead(t *testing.T) {
	pr, pw := io.Pipe()
	src, first := replay.Prepare(newReq(t, pr), 100)
	readDone := make(chan error, 1)
	go func() {
		_, err := first.Read(make([]byte, 8))
		readDone <- err
	}()
	closed := make(chan struct{})
	go func() {
		assert.False(t, src.Complete())
		_ = first.Close()
		src.Release() // closes the pipe, which unblocks the read
		close(closed)
	}()
	<-closed
	require.Error(t, <-readDone)
	_ = pw.Close()
}

// TestFailedCallerBodyIsTrackedAndNotReplayed: when the caller's body fails
// mid-read, the Recorder says so as an inbound.Tracker, returns the
// failure as an *inbound.Error, and the body is not replayable.
func TestFailedCallerBodyIsTrackedAndNotReplayed(t *testing.T) {
	cause := errors.New("malformed chunked encoding")
	req, err := http.NewRequest(http.MethodPut, "http://x/", io.NopCloser(io.MultiReader(strings.NewReader("hel"), iotest.ErrReader(cause))))
	require.NoError(t, err)
	src, first := replay.Prepare(req, 1<<20)
	require.Nil(t, inbound.FromBody(first))
	_, rerr := io.ReadAll(first)
	var ie *inbound.Error
	require.ErrorAs(t, rerr, &ie)
	assert.ErrorIs(t, rerr, cause)
	assert.Same(t, ie, inbound.FromBody(first))
	_, _, ok := src.Next()
	assert.False(t, ok, "a body that failed to read is not replayable")
	require.NoError(t, first.Close())
	src.Release()
}

// TestGetBodyBodiesAreTracked: with GetBody, the first body and every
// replayed one track their read failures too.
func TestGetBodyBodiesAreTracked(t *testing.T) {
	req, err := http.NewRequest(http.MethodPut, "http://x/", strings.NewReader("hello"))
	require.NoError(t, err)
	src, first := replay.Prepare(req, 1<<20)
	assert.True(t, inbound.Tracked(first))
	next, _, ok := src.Next()
	require.True(t, ok)
	assert.True(t, inbound.Tracked(next))
	src.Release()
}
