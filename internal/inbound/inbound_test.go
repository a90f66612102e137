package inbound_test

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/outbound-go/outbound/internal/inbound"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestTrackLeavesNothingToTrackAlone(t *testing.T) {
	assert.Nil(t, inbound.Track(nil))
	assert.Equal(t, http.NoBody, inbound.Track(http.NoBody))
	b := inbound.Track(io.NopCloser(strings.NewReader("x")))
	assert.Same(t, b.(*inbound.Body), inbound.Track(b).(*inbound.Body), "a tracked body is not wrapped twice")
	assert.True(t, inbound.Tracked(nil))
	assert.True(t, inbound.Tracked(http.NoBody))
	assert.True(t, inbound.Tracked(b))
	assert.False(t, inbound.Tracked(io.NopCloser(strings.NewReader("x"))))
}

func TestBodyRemembersReadFailure(t *testing.T) {
	cause := errors.New("malformed chunked encoding")
	b := inbound.Track(io.NopCloser(io.MultiReader(strings.NewReader("hello"), iotest.ErrReader(cause))))
	got, err := io.ReadAll(b)
	assert.Equal(t, "hello", string(got))
	var ie *inbound.Error
	require.ErrorAs(t, err, &ie)
	assert.ErrorIs(t, err, cause)
	assert.Same(t, ie, inbound.FromBody(b))
	_, again := b.Read(make([]byte, 1))
	assert.Same(t, ie, again, "one failure, one error")

	opaque := fmt.Errorf("net/http: HTTP/1.x transport connection broken: %v", err) // wraps nothing
	assert.True(t, inbound.Failed(b, opaque), "the body says so whatever the error")
	assert.True(t, inbound.Failed(nil, fmt.Errorf("x: %w", err)), "the error says so without the body")
	assert.False(t, inbound.Failed(b, nil), "a response came back")
}

func TestBodyAtEOFIsNoFailure(t *testing.T) {
	b := inbound.Track(io.NopCloser(strings.NewReader("hello")))
	_, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Nil(t, inbound.FromBody(b))
	assert.False(t, inbound.Failed(b, io.ErrUnexpectedEOF), "an upstream failure stays the upstream's")
	assert.False(t, inbound.Is(io.ErrUnexpectedEOF))
	assert.Nil(t, inbound.FromBody(io.NopCloser(strings.NewReader(""))))
}

func TestBodyConcurrentReadAndCheck(t *testing.T) {
	b := inbound.Track(io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF)))
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, _ = b.Read(make([]byte, 1))
			assert.NotNil(t, inbound.FromBody(b))
		})
	}
	wg.Wait()
	assert.ErrorIs(t, inbound.FromBody(b), io.ErrUnexpectedEOF)
}

func TestWrapKeepsAnExistingError(t *testing.T) {
	e := &inbound.Error{Err: io.ErrUnexpectedEOF}
	assert.Same(t, e, inbound.Wrap(fmt.Errorf("copy: %w", e)))
	assert.Equal(t, "reading the request body: unexpected EOF", e.Error())
}
