// Package inbound tells the layers of an outbound stack when an attempt
// failed because of the caller's side rather than the upstream's: reading
// the caller's request body failed (a malformed chunked body, a client that
// went away mid-upload, a reader that broke). Such a failure is never the
// endpoint's: the breaker does not count it, discovery does not record it
// as latency or load, and retry does not send the request again.
//
// Every layer that sends a request with a body tracks it: Track wraps the
// body in a Body that remembers the first read error other than io.EOF and
// returns it as an *Error. A body that already tracks itself (a Body, or
// the retry layer's replay recorder, both implement Tracker) is passed on
// as it is, so the outermost layer wraps once and every layer below reads
// the same record. After the attempt a layer asks Failed with the body it
// sent and the error it got: the answer comes from the body's own record,
// so it does not depend on how net/http's HTTP/1 or HTTP/2 transport
// wraps (or replaces) the read error it saw. Requests without a body are
// never wrapped and cost nothing.
package inbound

import (
	"errors"
	"io"
	"net/http"
	"sync/atomic"
)

// Error is a failure to read the caller's request body. Err is the read
// error of the caller's body. Match it with errors.As.
type Error struct{ Err error }

// Error returns "reading the request body: " and Err's text.
func (e *Error) Error() string { return "reading the request body: " + e.Err.Error() }

// Unwrap returns Err.
func (e *Error) Unwrap() error { return e.Err }

// Tracker is a request body that remembers whether reading the caller's
// body failed. InboundError returns that failure (as an *Error), or nil
// while reading it has not failed.
type Tracker interface {
	io.ReadCloser
	InboundError() *Error
}

// Body is a tracked request body (see Track). It is safe for the
// concurrent Read and Close a transport may do.
type Body struct {
	rc     io.ReadCloser
	failed atomic.Pointer[Error]
}

// Track returns body as a Tracker: body itself when it is nil, http.NoBody
// or already a Tracker, else body wrapped in a *Body.
func Track(body io.ReadCloser) io.ReadCloser {
	if body == nil || body == http.NoBody {
		return body
	}
	if _, ok := body.(Tracker); ok {
		return body
	}
	return &Body{rc: body}
}

// Tracked reports whether body needs no Track: nil, http.NoBody or a
// Tracker.
func Tracked(body io.ReadCloser) bool {
	if body == nil || body == http.NoBody {
		return true
	}
	_, ok := body.(Tracker)
	return ok
}

// Read reads the caller's body. An error other than io.EOF is remembered
// and returned as an *Error (unless it already is one).
func (b *Body) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		return n, b.fail(err)
	}
	return n, err
}

func (b *Body) fail(err error) *Error {
	if e := b.failed.Load(); e != nil {
		return e
	}
	e := Wrap(err)
	if !b.failed.CompareAndSwap(nil, e) {
		return b.failed.Load()
	}
	return e
}

// Close closes the caller's body.
func (b *Body) Close() error { return b.rc.Close() }

// InboundError returns the first read failure, or nil.
func (b *Body) InboundError() *Error { return b.failed.Load() }

// Wrap returns err as an *Error: err itself when it is one (or wraps one),
// else a new *Error around it.
func Wrap(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Err: err}
}

// Failed reports whether an attempt that sent body and ended with err (nil
// when a response came back) failed because of the inbound side: err is,
// or wraps, an *Error, or body is a Tracker whose read failed. It does not
// allocate.
func Failed(body io.ReadCloser, err error) bool {
	if err == nil {
		return false
	}
	if t, ok := body.(Tracker); ok && t.InboundError() != nil {
		return true
	}
	return Is(err)
}

// Is reports whether err is, or wraps, an *Error.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}

// FromBody returns body's read failure when body is a Tracker whose read
// failed, else nil.
func FromBody(body io.ReadCloser) *Error {
	if t, ok := body.(Tracker); ok {
		return t.InboundError()
	}
	return nil
}
