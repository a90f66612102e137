package ambassador

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"

	kinds "github.com/outbound-go/outbound/internal/classify"
)

// ErrResendLimit is matched (errors.Is) by the error of a request that the
// base transport sent on one connection, re-sent on another idle one when
// the first failed, and was about to send on a third: the Stack stops it
// there. net/http's Transport re-sends a replayable request (idempotent,
// with no body or a GetBody) that fails on a reused connection, once per
// pooled connection, so without this bound one request could reach a
// failing upstream once per idle connection. Every further send is an
// attempt of the retry policy, within max_attempts and the budget, or does
// not happen.
//
// To the retry policy and the breaker the error is a reset (retry_on
// reset; an upstream failure), or over HTTP/2, whose transports re-send
// only streams the server refused or never processed, a refused stream
// (retry_on refused-stream, for every method); errors.Is(err,
// context.Canceled) does not hold for it. The ambassador answers it with
// 502 upstream_reset.
var ErrResendLimit = kinds.ErrResendLimit

// maxConnsPerSend is how many connections one RoundTrip of the base
// transport may take: the first send and one re-send.
const maxConnsPerSend = 2

// errStopResends is the cancellation cause the guard gives a RoundTrip of
// the base transport that went for one connection too many.
var errStopResends = errors.New("ambassador: transport re-send limit")

// resendGuard wraps a Stack's base transport and bounds the re-sends it
// makes on its own within one RoundTrip (see ErrResendLimit). It counts
// the connections the RoundTrip takes with an httptrace GotConn hook,
// composed with any trace already in the request's context, and at the
// third one cancels the RoundTrip. An HTTP/1 connection taken that way is
// closed before the transport writes to it, so the request never reaches
// it; an HTTP/2 connection is shared with other streams and is left open,
// so there the cancellation alone stops the transport (its re-sends are of
// streams the server refused or never processed).
type resendGuard struct {
	next http.RoundTripper
	// h2 is set when the base is known to speak HTTP/2 only (the stack's
	// own h2 or h2c transport): its connections are never closed here.
	h2 bool
}

// guardResends wraps base in a resendGuard. h2 says base speaks HTTP/2 only.
func guardResends(base http.RoundTripper, h2 bool) http.RoundTripper {
	return &resendGuard{next: base, h2: h2}
}

// resendCall is the guard's state for one RoundTrip, in one allocation
// (for the first attempt of a Stack request, inside the Stack's: see
// stackCall.guard): it is the context the base transport sees (the
// caller's, with the trace and the guard's cancellation), the trace, the
// connection count and the body wrapper that releases the context.
//
// The cancellation is a lazyCtx without a deadline of its own (see its
// invariants): no cancellation exists until something asks for Done (a
// real transport does at once; a RoundTripper that never blocks does
// not), so a base that does no I/O costs no cancellation machinery; the
// Stack's, linked to its request context, shares that context's. The trace
// is found by its key without a context.WithValue: see isTraceKey.
type resendCall struct {
	lazyCtx
	trace         httptrace.ClientTrace
	traceOnce     sync.Once // arms trace.GotConn on the first lookup of the trace
	conns         atomic.Int32
	callerGotConn func(httptrace.GotConnInfo)
	stopped       atomic.Bool
	stoppedH2     atomic.Bool // the connection the RoundTrip was stopped at is HTTP/2
	h2            bool
	// linked is set on the resendCall a stackCall holds (stackCall.link),
	// before the request is sent; claimed says the guard took it (see
	// stackCall.guard). Until then a linked resendCall is a plain child
	// context of the Stack's: it answers the trace key only once claimed.
	// (The field order fills alignment holes.)
	linked  bool
	claimed atomic.Bool

	body releaseBody
}

var _ context.Context = (*resendCall)(nil)

func (g *resendGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	c, out := g.newCall(req)
	resp, err := g.next.RoundTrip(out)
	if c.stopped.Load() && c.parent.Err() == nil {
		// Whatever the transport made of the cancellation, the cause is
		// ours. A response that raced it (HTTP/2) is bound to the
		// cancelled context: it cannot be read.
		if err == nil {
			drainClose(resp)
		}
		c.done()
		if c.stoppedH2.Load() {
			return nil, fmt.Errorf("ambassador: %s %s: %w: %w", req.Method, req.URL.Host, ErrResendLimit, kinds.ErrResendUnprocessed)
		}
		return nil, fmt.Errorf("ambassador: %s %s: %w", req.Method, req.URL.Host, ErrResendLimit)
	}
	if err != nil {
		c.done()
		return nil, err
	}
	if c.linked {
		return resp, nil // released with the Stack's context: see done
	}
	return c.holdFor(resp, &c.body), nil
}

// done releases c once its RoundTrip failed. The state a Stack's request
// holds (linked) is the context of the layers above the guard too, which
// may still look at it (a breaker or the client metrics classifying the
// error): the Stack's release releases it, once the request and its
// response body are done, as it does after a response.
func (c *resendCall) done() {
	if !c.linked {
		c.release()
	}
}

// newCall returns the guard's state for one RoundTrip of req and the
// request the base transport is given, whose context it is. The first
// attempt of a Stack request carries the guard's state linked in its
// context already (claimLinked): that request goes as it is. Any other
// allocates both, the request a copy with the guard's context.
func (g *resendGuard) newCall(req *http.Request) (*resendCall, *http.Request) {
	if c, ok := claimLinked(req); ok {
		c.h2 = g.h2
		c.composeTrace(c.parent)
		return c, req
	}
	parent := req.Context()
	c := &resendCall{}
	c.lazyCtx.parent, c.h2 = parent, g.h2
	c.composeTrace(parent)
	return c, req.WithContext(c)
}

// composeTrace takes the caller's trace in parent, if any, into c's: its
// hooks stay, and its GotConn runs after ours (as
// httptrace.WithClientTrace would compose them).
func (c *resendCall) composeTrace(parent context.Context) {
	if old := httptrace.ContextClientTrace(parent); old != nil {
		c.trace = *old
		c.callerGotConn = old.GotConn
	}
}

// traceKeyProbe holds a trace under httptrace's own (unexported) key and
// nothing else, so isTraceKey can recognise that key.
var traceKeyProbe = httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{})

// isTraceKey reports whether key is the one httptrace.ContextClientTrace
// looks up.
func isTraceKey(key any) bool { return traceKeyProbe.Value(key) != nil }

// Value answers the trace key with the guard's trace. Its GotConn hook (a
// closure over c: an allocation) is only set when a transport first looks
// the trace up, so a base that never traces (one that takes no
// connections) costs none; until then trace holds the caller's hooks only.
func (c *resendCall) Value(key any) any {
	if (!c.linked || c.claimed.Load()) && isTraceKey(key) {
		c.traceOnce.Do(c.armTrace)
		return &c.trace
	}
	return c.lazyCtx.Value(key)
}

func (c *resendCall) String() string { return "ambassador re-send guard context" }

func (c *resendCall) armTrace() { c.trace.GotConn = c.gotConn }

// gotConn counts the connections the RoundTrip takes and stops it at one
// too many.
func (c *resendCall) gotConn(info httptrace.GotConnInfo) {
	if c.conns.Add(1) > maxConnsPerSend {
		c.stop(info.Conn)
	}
	if c.callerGotConn != nil {
		c.callerGotConn(info)
	}
}

// stop cancels the RoundTrip with the guard's own cause and keeps the
// request off conn.
func (c *resendCall) stop(conn net.Conn) {
	h2 := c.h2 || (conn != nil && negotiatedH2(conn))
	if h2 {
		c.stoppedH2.Store(true)
	}
	c.stopped.Store(true)
	c.cancel(errStopResends)
	if !h2 && conn != nil {
		// net/http writes the request to this HTTP/1 connection whether
		// or not the context is done by then: closing it first means not
		// a byte of the request is sent on it.
		_ = conn.Close()
	}
}

// negotiatedH2 reports whether conn is a TLS connection that negotiated
// HTTP/2, whose streams other requests share.
func negotiatedH2(conn net.Conn) bool {
	tc, ok := conn.(*tls.Conn)
	return ok && tc.ConnectionState().NegotiatedProtocol == "h2"
}

// drainClose reads a little of a response body that is discarded and
// closes it.
func drainClose(resp *http.Response) {
	if resp == nil || resp.Body == nil {
		return
	}
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	_ = resp.Body.Close()
}
