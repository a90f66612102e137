package attempt_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/outbound-go/outbound/internal/attempt"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRecordThroughContext(t *testing.T) {
	rec, n := attempt.FromContext(context.Background())
	assert.Nil(t, rec)
	assert.Zero(t, n)

	r := attempt.NewRecord()
	ctx, cancel := context.WithCancel(attempt.WithAttempt(context.Background(), r, r.Start()))
	defer cancel()
	got, n := attempt.FromContext(ctx)
	assert.Same(t, r, got)
	assert.Equal(t, 1, n)

	r.AddTried("10.0.0.1:80")
	r.AddTried("10.0.0.2:80")
	assert.True(t, r.Tried("10.0.0.1:80"))
	assert.False(t, r.Tried("10.0.0.3:80"))
	assert.Equal(t, "10.0.0.2:80", r.LastEndpoint())
	assert.Equal(t, 2, r.TriedCount())
}

// LastTried gives the position of an endpoint's latest pick, so discovery
// can go back to the endpoint tried longest ago.
func TestRecordLastTried(t *testing.T) {
	var r attempt.Record
	assert.Zero(t, r.LastTried("a:1"), "empty record")
	for _, ep := range []string{"a:1", "b:1", "a:1", "c:1"} {
		r.AddTried(ep)
	}
	for ep, want := range map[string]int{"a:1": 3, "b:1": 2, "c:1": 4, "d:1": 0} {
		assert.Equal(t, want, r.LastTried(ep), ep)
	}
	var one attempt.Record
	one.AddTried("a:1")
	assert.Equal(t, 1, one.LastTried("a:1"))
	assert.Zero(t, one.LastTried("b:1"))
}

func TestRecordConcurrent(t *testing.T) {
	r := attempt.NewRecord()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.Start()
			r.AddTried("e")
		}()
	}
	wg.Wait()
	assert.Equal(t, 8, r.Attempts())
	assert.Equal(t, 8, r.TriedCount())
}

// The clock reading set by the layer keeping the record reaches layers
// below through the attempt context; Refresh replaces it (a layer that
// waited), and neither Now nor Refresh invents a reading where none was set.
func TestNowAndRefresh(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://users/", nil)

	_, ok := attempt.Now(req.Context())
	assert.False(t, ok, "no record, no reading")
	attempt.Refresh(req.Context(), time.Now()) // no attempt context: nothing to do

	call := attempt.NewHTTPCall(context.Background(), nil)
	r := call.Request(req, 1)
	attempt.Refresh(r.Context(), time.Now())
	_, ok = attempt.Now(r.Context())
	assert.False(t, ok, "Refresh does not set a reading the sender did not take")

	sent := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	call.SetNow(sent)
	got, ok := attempt.Now(r.Context())
	require.True(t, ok)
	assert.True(t, got.Equal(sent))

	later := sent.Add(300 * time.Millisecond)
	attempt.Refresh(r.Context(), later)
	got, ok = attempt.Now(r.Context())
	require.True(t, ok)
	assert.True(t, got.Equal(later), "the refreshed reading replaces the first")
}

// Only the current attempt's request copy is owned, and a later attempt's
// copy has a URL of its own: what a layer below wrote into an earlier
// attempt's URL (which a transport may still be reading) is never
// overwritten by the next attempt.
func TestOwnedOnlyCurrentAttempt(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://users/a", nil)
	assert.False(t, attempt.Owned(req), "the caller's request is not owned")

	call := attempt.NewHTTPCall(context.Background(), nil)
	r1 := call.Request(req, 1)
	require.True(t, attempt.Owned(r1))
	assert.NotSame(t, req.URL, r1.URL, "the copy has a URL of its own")
	r1.URL.Host = "10.0.0.1:80" // what discovery does to an owned copy
	assert.Equal(t, "users", req.URL.Host, "the caller's URL is untouched")

	r2 := call.Request(req, 2)
	assert.True(t, attempt.Owned(r2))
	assert.False(t, attempt.Owned(r1), "only the current attempt's copy is owned")
	assert.NotSame(t, r1.URL, r2.URL, "a later attempt's copy has a URL of its own")
	assert.Equal(t, "users", r2.URL.Host, "filled from the caller's request")
	r2.URL.Host = "10.0.0.2:80"
	assert.Equal(t, "10.0.0.1:80", r1.URL.Host, "the first attempt's URL is never rewritten by a later one")
	assert.Equal(t, "users", req.URL.Host)
	_, n := attempt.FromContext(r2.Context())
	assert.Equal(t, 2, n)
}

// TestFirstRequestCopyIsNeverReused: the first attempt's request copy lives
// in the call state, and a later attempt gets a copy of its own, so what a
// transport still holds of an earlier attempt (or the caller of its
// response) is never overwritten.
func TestFirstRequestCopyIsNeverReused(t *testing.T) {
	req := httptest.NewRequest(http.MethodGet, "http://svc/a", nil)
	req.Header.Set("X-Id", "one")
	call := attempt.NewHTTPCall(context.Background(), nil)

	r1 := call.Request(req, call.Record().Start())
	r1.Header = http.Header{"X-Id": {"rewritten by a layer"}}
	r2 := call.Request(req, call.Record().Start())
	require.NotSame(t, r1, r2)
	assert.Equal(t, "rewritten by a layer", r1.Header.Get("X-Id"), "the second attempt overwrote the first's copy")
	assert.Equal(t, "one", r2.Header.Get("X-Id"))
	_, n1 := attempt.FromContext(r1.Context())
	_, n2 := attempt.FromContext(r2.Context())
	assert.Equal(t, []int{1, 2}, []int{n1, n2})
	assert.False(t, attempt.Owned(r1), "only the current attempt's copy is owned")
	assert.True(t, attempt.Owned(r2))
	assert.NotSame(t, req, r1)
	assert.Equal(t, "one", req.Header.Get("X-Id"), "the caller's request is never changed")
}

type firstKey struct{}

// UseFirstParent gives the first attempt's context a parent of its own;
// later attempts stay children of Init's parent, and Parent tells both.
func TestUseFirstParent(t *testing.T) {
	parent := context.Background()
	first := context.WithValue(parent, firstKey{}, "first")
	var c attempt.HTTPCall
	c.UseFirstParent(first)
	c.Init(parent, nil)
	req := httptest.NewRequest(http.MethodGet, "http://users/x", nil)

	r1 := c.Request(req, 1)
	p, ok := attempt.Parent(r1.Context())
	require.True(t, ok)
	assert.Equal(t, first, p)
	assert.Equal(t, "first", r1.Context().Value(firstKey{}))

	r2 := c.Request(req, 2)
	p, ok = attempt.Parent(r2.Context())
	require.True(t, ok)
	assert.Equal(t, parent, p, "a later attempt is a child of Init's parent")
	assert.Nil(t, r2.Context().Value(firstKey{}))
	rec, n := attempt.FromContext(r2.Context())
	assert.Same(t, c.Record(), rec)
	assert.Equal(t, 2, n)

	_, ok = attempt.Parent(first)
	assert.False(t, ok, "not an attempt context")
}

// CallOptions adds the trailer capture after the caller's options, in the
// call's own storage when they fit, never in the caller's slice.
func TestGRPCCallOptionsAppendTheTrailer(t *testing.T) {
	for _, n := range []int{0, 1, 3, 4, 6} {
		c := attempt.NewGRPCCall(context.Background(), nil)
		callerOpts := make([]grpc.CallOption, n, n+2) // room a careless append would write into
		for i := range callerOpts {
			callerOpts[i] = grpc.WaitForReady(true)
		}
		out := c.CallOptions(callerOpts)
		require.Len(t, out, n+1, "%d caller options", n)
		for i := range n {
			assert.Equal(t, grpc.WaitForReady(true), out[i])
		}
		tr, ok := out[n].(grpc.TrailerCallOption)
		require.True(t, ok, "%d caller options: the last is the trailer capture", n)
		*tr.TrailerAddr = metadata.Pairs("k", "v")
		assert.Equal(t, []string{"v"}, c.Trailer().Get("k"))
		assert.Nil(t, callerOpts[:n+1][n], "the caller's slice is not written")
	}
}

// Lookup answers Now and Trailer as the one-question helpers do.
func TestLookupAnswersAsNowAndTrailer(t *testing.T) {
	plain := context.Background()
	v := attempt.Lookup(plain)
	_, ok := v.Now()
	assert.False(t, ok)
	assert.Nil(t, v.Trailer())

	c := attempt.NewGRPCCall(plain, nil)
	actx := c.Attempt(1)
	now := time.Now()
	c.SetNow(now)
	v = attempt.Lookup(actx)
	got, ok := v.Now()
	require.True(t, ok)
	assert.Equal(t, now, got)
	want, _ := attempt.Now(actx)
	assert.Equal(t, want, got)
	assert.Same(t, attempt.Trailer(actx), v.Trailer())
	assert.NotNil(t, v.Trailer())
}

// WithNewRecord's context carries its record as WithRecord's does.
func TestWithNewRecordCarriesItsRecord(t *testing.T) {
	parent := context.WithValue(context.Background(), struct{ k int }{1}, "v")
	ctx, rec := attempt.WithNewRecord(parent)
	got, n := attempt.FromContext(ctx)
	assert.Same(t, rec, got)
	assert.Zero(t, n)
	assert.Zero(t, rec.Attempts())
	p, ok := attempt.Parent(ctx)
	require.True(t, ok)
	assert.Equal(t, parent, p)
	assert.Equal(t, "v", ctx.Value(struct{ k int }{1}), "other keys reach the parent")
	rec.AddTried("a:1")
	again, _ := attempt.FromContext(ctx)
	assert.Equal(t, "a:1", again.LastEndpoint())
}
