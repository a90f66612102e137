// Package classify tells the retry layer what kind of failure an attempt
// met and whether a request may safely be sent again, and tells retry and
// the breaker alike what status a gRPC answer carries in its HTTP headers.
//
// # Errors
//
// Error sorts a RoundTrip or gRPC error into a Kind using errors.Is and
// errors.As on the types net, syscall, context and the HTTP/2 transports
// export (net/http's bundled HTTP/2 stream error converts into
// golang.org/x/net/http2.StreamError through its As method). One failure of
// net/http can only be recognised by its text: when an HTTP/2 stream was
// refused or its connection went away before the server processed it, and
// the request body had already been written without a GetBody to rewind it,
// net/http returns a fmt.Errorf with %v that wraps nothing
// ("http2: Transport: cannot retry err [...] after Request.Body was
// written..."). h2UnprocessedText isolates that string test. Likewise the
// bundled transport's GOAWAY-then-close error is an unexported type with
// neither Unwrap nor As; h2GoAwayClosedText recognises it (as a reset).
//
// # Idempotency
//
// Idempotent reports whether a request may be sent again after it may have
// reached the upstream: the methods RFC 9110 calls idempotent, or any
// request carrying an Idempotency-Key header.
//
// # gRPC over HTTP
//
// GRPCHeaderStatus reads the grpc-status of a "trailers-only" answer (a gRPC
// call that failed before any message, answered with HTTP 200), which the
// HTTP layers see as a success by its status line; each caller applies its
// own rule to the code (retry: retriable codes and pushback; the breaker:
// its failure codes).
package classify

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"

	"golang.org/x/net/http2"

	"github.com/outbound-go/outbound/internal/inbound"
	"github.com/outbound-go/outbound/internal/refusal"
)

// Kind is the class of an attempt's failure.
type Kind uint8

// The kinds of failure, from "the request never left" to "we do not know".
const (
	// Other is an error of no known class: it is not retried.
	Other Kind = iota
	// ConnectFailure: the connection could not be made (dial, DNS, a
	// failed or unverified TLS handshake); the request never left.
	ConnectFailure
	// RefusedStream: HTTP/2 REFUSED_STREAM or a GOAWAY for a stream the
	// server never processed; the request was not acted upon.
	RefusedStream
	// Reset: the connection was reset or closed (EOF) before the response
	// headers arrived; the upstream may have acted on the request.
	Reset
	// Timeout: the attempt's own per-try timeout fired while the caller's
	// context was still live.
	Timeout
	// Canceled: the caller's context is done; nothing is retried.
	Canceled
	// LocalRefusal: a layer of this stack refused the request locally
	// (breaker open, rate limited, no endpoints); it never reached an
	// upstream and is returned at once.
	LocalRefusal
	// Inbound: reading the caller's request body failed (see
	// internal/inbound); the failure is the caller's, not the upstream's,
	// and is returned at once.
	Inbound
)

var kindNames = [...]string{"other", "connect-failure", "refused-stream", "reset", "timeout", "canceled", "local-refusal", "inbound"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// ErrResendLimit is the error of a request that the base transport sent,
// re-sent once on another connection after the first failed, and was
// stopped before a third send (the ambassador's Stack bounds net/http's
// hidden re-sends through its idle pool). Over HTTP/1 the last connection
// failed after the request was sent, so it is a Reset. It wraps nothing:
// in particular not context.Canceled, so it is never taken for the caller
// going away.
var ErrResendLimit = errors.New("transport re-send limit: the request failed on two connections and is not sent on a third")

// ErrResendUnprocessed goes with ErrResendLimit when the transport was
// HTTP/2: its transports re-send only streams the server refused or never
// processed (REFUSED_STREAM, GOAWAY), so that error is a RefusedStream.
var ErrResendUnprocessed = errors.New("HTTP/2 streams refused or not processed")

// ErrPerTryTimeout is the cancellation cause the retry layer gives an
// attempt context whose per-try timeout fired.
var ErrPerTryTimeout = errors.New("outbound: per-try timeout")

// Error classifies err, returned by an attempt made under attemptCtx, a child
// of callerCtx. It must only be called with a non-nil err.
func Error(callerCtx, attemptCtx context.Context, err error) Kind {
	if callerCtx.Err() != nil {
		return Canceled
	}
	if refusal.Is(err) {
		return LocalRefusal
	}
	if inbound.Is(err) {
		return Inbound
	}
	if attemptCtx != nil && attemptCtx.Err() != nil {
		if errors.Is(context.Cause(attemptCtx), ErrPerTryTimeout) ||
			errors.Is(attemptCtx.Err(), context.DeadlineExceeded) {
			return Timeout
		}
	}
	if errors.Is(err, ErrPerTryTimeout) {
		return Timeout
	}
	if isConnectFailure(err) {
		return ConnectFailure
	}
	if isRefusedStream(err) {
		return RefusedStream
	}
	if isReset(err) {
		return Reset
	}
	return Other
}

// Attempt is Error for an HTTP attempt that sent body: when body is an
// inbound.Tracker whose reading failed, the kind is Inbound whatever error
// the transport made of it (unless the caller's context is done: Canceled).
func Attempt(callerCtx, attemptCtx context.Context, body io.ReadCloser, err error) Kind {
	if callerCtx.Err() == nil && inbound.FromBody(body) != nil {
		return Inbound
	}
	return Error(callerCtx, attemptCtx, err)
}

func isConnectFailure(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || TLSHandshakeFailure(err)
}

// TLSHandshakeFailure reports whether err is a TLS handshake that failed:
// the peer's certificate did not verify (wrong CA, wrong name, expired),
// the peer answered with a TLS alert (it refused our certificate, say), or
// it did not speak TLS at all. The request was not sent, or reached only
// the peer's TLS layer, which refused the connection before any
// application saw it. It looks at exported types only
// (tls.CertificateVerificationError, the x509 errors, tls.AlertError,
// tls.RecordHeaderError).
func TLSHandshakeFailure(err error) bool {
	var cve *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var badName x509.HostnameError
	var invalid x509.CertificateInvalidError
	var alert tls.AlertError
	var record tls.RecordHeaderError
	return errors.As(err, &cve) || errors.As(err, &unknownCA) || errors.As(err, &badName) ||
		errors.As(err, &invalid) || errors.As(err, &alert) || errors.As(err, &record)
}

func isRefusedStream(err error) bool {
	var se http2.StreamError
	if errors.As(err, &se) && se.Code == http2.ErrCodeRefusedStream {
		return true
	}
	if errors.Is(err, ErrResendUnprocessed) {
		return true
	}
	return h2UnprocessedText(err)
}

// h2UnprocessedText recognises the one net/http error that carries no
// type: the bundled HTTP/2 transport's refusal to replay a request whose
// stream was refused (or whose connection got GOAWAY) before the server
// processed it, after the body was written and no GetBody was set. It is
// built with fmt.Errorf("...%v...") and so wraps nothing; its text is the
// only handle. The server did not process the stream, so it is a refused
// stream.
func h2UnprocessedText(err error) bool {
	return strings.Contains(err.Error(), "http2: Transport: cannot retry err [")
}

// h2GoAwayClosedText recognises net/http's HTTP/2 GoAwayError (an
// unexported type with no Unwrap or As): the server sent GOAWAY and closed
// the connection while this stream, which it may have processed, was in
// flight. That is a reset. x/net's exported twin is deprecated, so the
// text is the handle here too.
func h2GoAwayClosedText(err error) bool {
	return strings.Contains(err.Error(), "http2: server sent GOAWAY and closed the connection")
}

func isReset(err error) bool {
	return h2GoAwayClosedText(err) ||
		errors.Is(err, ErrResendLimit) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// Idempotent reports whether req may be sent again once the upstream may
// have seen it: GET, HEAD, OPTIONS, TRACE, PUT and DELETE, or any request
// with an Idempotency-Key header.
func Idempotent(req *http.Request) bool {
	switch req.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace,
		http.MethodPut, http.MethodDelete:
		return true
	}
	return len(req.Header["Idempotency-Key"]) > 0
}

// NeverSent reports whether a failure of kind k means the upstream never
// acted on the request, so that even a non-idempotent request may be sent
// again.
func NeverSent(k Kind) bool { return k == ConnectFailure || k == RefusedStream }
