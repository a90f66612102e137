package proxy

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc/codes"

	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/internal/attempt"
	kinds "github.com/outbound-go/outbound/internal/classify"
	"github.com/outbound-go/outbound/internal/inbound"
	"github.com/outbound-go/outbound/ratelimit"
	"github.com/outbound-go/outbound/retry"
)

// HeaderError is the response header that marks a response the ambassador
// made itself, with the reason (rate_limited, circuit_open, …) as its value.
const HeaderError = "X-Outbound-Error"

// Reasons carried in HeaderError.
const (
	ReasonRateLimited            = "rate_limited"
	ReasonCircuitOpen            = "circuit_open"
	ReasonNoEndpoints            = "no_endpoints"
	ReasonRetryBudgetExhausted   = "retry_budget_exhausted"
	ReasonOverloaded             = "overloaded"
	ReasonUpstreamTimeout        = "upstream_timeout"
	ReasonUpstreamConnectFailure = "upstream_connect_failure"
	ReasonUpstreamReset          = "upstream_reset"
	ReasonNoRoute                = "no_route"
	ReasonBadRequest             = "bad_request"
)

// modifyResponse removes an upstream's own X-Outbound-Error (clients can
// trust the header: only the ambassador sets it) from the headers and from
// the trailers it announced (see stripTrailerError for the trailers
// themselves), the upstream's hop-by-hop headers from a 101 (switchHeaders),
// and re-frames a gRPC trailers-only answer.
func modifyResponse(resp *http.Response) error {
	delete(resp.Header, HeaderError)
	delete(resp.Trailer, HeaderError)
	if resp.StatusCode == http.StatusSwitchingProtocols {
		if err := checkSwitch(resp); err != nil {
			return err
		}
		switchHeaders(resp.Header)
		return nil
	}
	if len(resp.Header["Grpc-Status"]) > 0 {
		trailersOnly(resp)
	}
	return nil
}

// trailersOnly moves the metadata of a gRPC trailers-only answer (status and
// metadata in the one header block that ends the stream) into trailers.
// ReverseProxy flushes the response headers before it copies the (empty)
// body, which would split the block from the end of the stream; a gRPC
// client reads grpc-status from headers only when they end the stream, but
// always from trailers.
func trailersOnly(resp *http.Response) {
	if resp.ProtoMajor != 2 || resp.ContentLength > 0 {
		return
	}
	tr := make(http.Header, len(resp.Header))
	for k, v := range resp.Header {
		if k == "Content-Type" || k == "Date" {
			continue
		}
		tr[k] = v
		delete(resp.Header, k)
	}
	resp.Trailer = tr
}

// bufferPool hands out 32 KiB copy buffers to every reverse proxy.
type bufferPool struct{ p sync.Pool }

const copyBufSize = 32 << 10

var sharedBufferPool = &bufferPool{p: sync.Pool{New: func() any { return new([copyBufSize]byte) }}}

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufSize]byte)[:] }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) < copyBufSize {
		return
	}
	b.p.Put((*[copyBufSize]byte)(buf[:copyBufSize]))
}

// logWriter records what the access log needs about a response.
type logWriter struct {
	http.ResponseWriter
	status int
	reason string
	quiet  bool
	n1xx   int           // 1xx responses relayed (see writeInformational)
	out    int64         // response body bytes written
	in     *countingBody // the caller's request body, nil without one
	duplex bool          // HTTP/1 full duplex is on (see closeIfBodyLeft)

	tun      *tunnels    // the server's, where a hijacked connection is kept
	hijacked *tunnelConn // the client connection, once Hijack handed it over
}

func (w *logWriter) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		w.writeInformational(code)
		return
	}
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
		w.finalHeader()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *logWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
		w.finalHeader()
	}
	n, err := w.ResponseWriter.Write(p)
	w.out += int64(n)
	return n, err
}

// finalHeader readies the header of the final answer just before it goes.
func (w *logWriter) finalHeader() {
	h := w.ResponseWriter.Header()
	noSniff(h)
	closeIfBodyLeft(w, h)
}

// noSniff keeps net/http's server from adding a Content-Type guessed from
// the body to a response whose upstream sent none: a present key with no
// value writes nothing and stops the guess. (The ambassador's own answers
// set their type.)
func noSniff(h http.Header) {
	if _, ok := h["Content-Type"]; !ok {
		h["Content-Type"] = nil
	}
}

// Unwrap lets http.ResponseController (used by ReverseProxy for Flush)
// reach the server's writer.
func (w *logWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

var logWriterPool = sync.Pool{New: func() any { return new(logWriter) }}

// listenerHandler routes and proxies the requests of one listener.
type listenerHandler struct {
	s   *Server
	idx int
}

func (h *listenerHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	s.handlers.Add(1)
	defer s.handlers.Done() // runs last: after the line and the metric
	start := time.Now()
	lw := logWriterPool.Get().(*logWriter)
	*lw = logWriter{ResponseWriter: w, tun: &s.tunnels}
	var (
		rt    *route
		entry *serviceEntry
		rec   *attempt.Record
		slot  bool
		body  *callerBody
		done  bool // the proxy answered without a panic
	)
	// One deferred call does all the bookkeeping: the caller's body, the
	// access log, the bulkhead slot, the entry reference.
	defer func() {
		p := recover()
		if body != nil {
			body.finish(w)
		}
		if slot {
			entry.freeSlot()
		}
		if done {
			flushAnswered(w, r, lw.status)
		}
		s.reqMetrics.record(r, lw.status, p != nil, rt, entry, start)
		s.accessLog(r, lw, rt, entry, rec, start, p)
		if entry != nil {
			entry.release()
		}
		if lw.hijacked != nil {
			s.tunnels.remove(lw.hijacked.Conn) // last: the drain waits for the line above
		} else if body != nil && p == nil && !willClose(r, w.Header()) {
			body.discardRest() // last: the client may still be sending it
		}
		*lw = logWriter{}
		logWriterPool.Put(lw)
		if p != nil {
			panic(p)
		}
	}()
	if s.opts.tracer != nil {
		sr, span := s.startServerSpan(r)
		r = sr
		defer func() { endServerSpan(span, lw.status, rt, entry) }()
	}

	closeAfterChunkedRequest(lw, r)
	if r.Method == http.MethodConnect {
		s.refuse(lw, r, http.StatusMethodNotAllowed, ReasonBadRequest, 0)
		return
	}
	if r.URL.Path == "" && r.URL.Opaque == "" {
		// An absolute-form target without a path ("GET http://host
		// HTTP/1.1", as a client configured with an HTTP proxy sends it)
		// means "/" (RFC 9110, section 4.2.3); routes, the transcoder, the
		// access log and the upstream all see "/". An OPTIONS without a
		// path asks about the server itself: it is routed as "/" and goes
		// upstream as "OPTIONS *" (RFC 9112, section 3.2.4; see Rewrite).
		if r.Method == http.MethodOptions {
			r.URL.Opaque = "*"
		}
		r.URL.Path = "/"
	}
	if rt, entry = h.route(lw, r); entry == nil {
		return
	}
	if !entry.takeSlot() {
		s.refuse(lw, r, http.StatusServiceUnavailable, ReasonOverloaded, 0)
		return
	}
	slot = true
	ctx, rec := attempt.WithNewRecord(r.Context())
	if isGRPC(r) {
		if d, ok := parseGRPCTimeout(r.Header.Get("Grpc-Timeout")); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
	}
	r2 := r.WithContext(ctx)
	// errorHandler asks this tracker whether the client's body broke (it
	// answers 400, not 502); a request without a body is left alone.
	// ReverseProxy hides it behind a wrapper of its own, so the stack's
	// layers track the body again: the read error they see is this
	// tracker's *inbound.Error, and they do not count it either.
	//
	// An HTTP/1 body is guarded so that nothing reads it after this
	// handler returns (see callerBody): net/http's server cannot abort its
	// pending read of the connection while the base transport still reads.
	b := r.Body
	if b != nil && b != http.NoBody {
		lw.in = &countingBody{rc: b, size: r.ContentLength}
		b = lw.in
	}
	if r.ProtoMajor == 1 && b != nil && b != http.NoBody {
		body = newCallerBody(b)
		b = body
		enableFullDuplex(w)
		lw.duplex = true
	}
	r2.Body = inbound.Track(b)
	if rt.transcode != nil && !isGRPC(r) {
		// JSON for a gRPC service; gRPC itself is proxied as it is.
		rt = s.serveTranscode(lw, r2, rt, entry)
		return
	}
	entry.proxy.ServeHTTP(lw, r2)
	stripTrailerError(w.Header())
	done = true
}

// route matches r on the current table and returns its route and entry,
// acquired; when there is none it answers the refusal and returns a nil
// entry.
func (h *listenerHandler) route(w http.ResponseWriter, r *http.Request) (*route, *serviceEntry) {
	s := h.s
	for {
		t := s.table.Load()
		rt, entry := t.listeners[h.idx].match(r)
		if entry == nil {
			s.refuse(w, r, http.StatusNotFound, ReasonNoRoute, 0)
			return rt, nil
		}
		if entry.acquire() {
			return rt, entry
		}
		if s.table.Load() == t {
			// Retired with no newer table: the server is closing.
			s.refuse(w, r, http.StatusServiceUnavailable, ReasonNoEndpoints, 0)
			return rt, nil
		}
		// Retired by a reload between Load and acquire: route again on the
		// new table (Reload stores it before it retires the old entries).
	}
}

// errorHandler answers a request the stack could not complete.
// A failure to read the client's body is the client's: 400 bad_request, or
// nothing when the client went away (it is then gone, and so is its context).
func (s *Server) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	badBody := inbound.Failed(r.Body, err)
	if (badBody || errors.Is(err, context.Canceled)) && r.Context().Err() != nil {
		// The client went away: nobody to answer, nothing worth logging.
		if lw, ok := w.(*logWriter); ok {
			lw.quiet = true
			lw.status = 499
		}
		return
	}
	if badBody {
		s.refuse(w, r, http.StatusBadRequest, ReasonBadRequest, 0)
		return
	}
	code, reason, retryAfter := classify(err)
	if code == http.StatusBadGateway && deadlinePassed(r.Context()) {
		// The request's deadline (its grpc-timeout) ended the call, even if
		// what came back first was the upstream's reset of the stream.
		code, reason = http.StatusGatewayTimeout, ReasonUpstreamTimeout
	}
	if code == http.StatusBadGateway || code == http.StatusGatewayTimeout {
		s.opts.logger.LogAttrs(r.Context(), slog.LevelDebug, "upstream error", slog.String("reason", reason), slog.Any("error", err))
	}
	s.refuse(w, r, code, reason, retryAfter)
}

// classify maps a stack error to the status and reason of a local answer.
func classify(err error) (int, string, time.Duration) {
	var le *ratelimit.LimitedError
	switch {
	case errors.As(err, &le):
		return http.StatusTooManyRequests, ReasonRateLimited, le.RetryAfter
	case errors.Is(err, ratelimit.ErrLimited):
		return http.StatusTooManyRequests, ReasonRateLimited, time.Second
	case errors.Is(err, breaker.ErrOpen):
		return http.StatusServiceUnavailable, ReasonCircuitOpen, 0
	case errors.Is(err, discovery.ErrNoEndpoints):
		return http.StatusServiceUnavailable, ReasonNoEndpoints, 0
	case errors.Is(err, retry.ErrBudgetExhausted):
		return http.StatusServiceUnavailable, ReasonRetryBudgetExhausted, 0
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return http.StatusGatewayTimeout, ReasonUpstreamTimeout, 0
	case isDialError(err):
		return http.StatusBadGateway, ReasonUpstreamConnectFailure, 0
	default:
		return http.StatusBadGateway, ReasonUpstreamReset, 0
	}
}

// deadlinePassed reports whether ctx has a deadline (for a proxied request,
// the one its grpc-timeout set) and it has passed, whether or not its timer
// has fired yet. An upstream that learnt the same deadline from the
// forwarded grpc-timeout ends the call at about the same moment: grpc-go
// resets the stream with CANCEL, and that reset can reach the transport
// before the context's timer cancels the request (or the transport may see
// both and pick the reset), so the transport error alone would say
// upstream_reset.
func deadlinePassed(ctx context.Context) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && !time.Now().Before(dl)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isDialError(err error) bool {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return true
	}
	return errors.Is(err, syscall.ECONNREFUSED) || kinds.TLSHandshakeFailure(err)
}

// refuse writes a locally made answer: an HTTP status with HeaderError, or
// for gRPC clients a trailers-only gRPC status carrying the reason as
// x-outbound-error metadata.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, code int, reason string, retryAfter time.Duration) {
	if lw, ok := w.(*logWriter); ok {
		lw.reason = reason
	}
	h := w.Header()
	h[HeaderError] = []string{reason}
	if isGRPC(r) {
		gc := codes.Unavailable
		switch code {
		case http.StatusTooManyRequests:
			gc = codes.ResourceExhausted
		case http.StatusGatewayTimeout:
			gc = codes.DeadlineExceeded
		case http.StatusNotFound:
			gc = codes.Unimplemented
		case http.StatusMethodNotAllowed, http.StatusBadRequest:
			gc = codes.Internal
		}
		h["Content-Type"] = []string{"application/grpc"}
		h["Grpc-Status"] = []string{strconv.Itoa(int(gc))}
		h["Grpc-Message"] = []string{"outbound: " + reason}
		if retryAfter > 0 {
			h["Grpc-Retry-Pushback-Ms"] = []string{strconv.FormatInt(retryAfter.Milliseconds(), 10)}
		}
		w.WriteHeader(http.StatusOK)
		return
	}
	if code == http.StatusTooManyRequests {
		h["Retry-After"] = []string{strconv.Itoa(retryAfterSeconds(retryAfter))}
	}
	h["Content-Type"] = []string{"text/plain; charset=utf-8"}
	h["X-Content-Type-Options"] = []string{"nosniff"}
	w.WriteHeader(code)
	_, _ = w.Write([]byte("outbound: " + reason + "\n"))
}

// retryAfterSeconds rounds d up to whole seconds, at least 1.
func retryAfterSeconds(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		return 1
	}
	return s
}

func isGRPC(r *http.Request) bool {
	ct := r.Header["Content-Type"]
	return len(ct) > 0 && len(ct[0]) >= 16 && ct[0][:16] == "application/grpc"
}

// parseGRPCTimeout reads a grpc-timeout header: up to 8 digits and a unit
// (H, M, S, m, u, n).
func parseGRPCTimeout(v string) (time.Duration, bool) {
	if len(v) < 2 || len(v) > 9 {
		return 0, false
	}
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if err != nil || n < 0 {
		return 0, false
	}
	var unit time.Duration
	switch v[len(v)-1] {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, false
	}
	if n > int64(math.MaxInt64/unit) {
		return time.Duration(math.MaxInt64), true // beyond ~292 years: no deadline worth the name
	}
	return time.Duration(n) * unit, true
}
