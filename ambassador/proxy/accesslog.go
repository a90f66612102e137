package proxy

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/outbound-go/outbound/internal/attempt"
)

// WithAccessLog sets the logger of the access log, one line per request
// (see the package doc for its fields), apart from the server's own
// messages. Default: the logger of WithLogger. A logger whose handler is
// slog.DiscardHandler (or is not enabled at info) turns the access log off
// at the cost of one Enabled call per request.
func WithAccessLog(l *slog.Logger) Option {
	return func(o *serverOptions) {
		if l != nil {
			o.access = l
		}
	}
}

// accessLogger is the logger of the access log.
func (s *Server) accessLogger() *slog.Logger {
	if s.opts.access != nil {
		return s.opts.access
	}
	return s.opts.logger
}

// countingBody counts the bytes read from the caller's request body.
type countingBody struct {
	rc   io.ReadCloser
	size int64 // the request's ContentLength: -1 when unknown
	n    atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.rc.Read(p)
	b.n.Add(int64(n))
	return n, err
}

func (b *countingBody) Close() error { return b.rc.Close() }

// drainLimit is how much of a request body net/http's HTTP/1 server reads
// and drops after the handler to keep the connection (its
// maxPostHandlerReadBytes): with more left than this it closes the
// connection.
const drainLimit = 256 << 10

// leavesTooMuch reports whether more of the body is unread than the server
// drains: its connection will be closed after the answer.
func (b *countingBody) leavesTooMuch() bool {
	return b.size < 0 || b.size-b.n.Load() > drainLimit
}

// bytesIn is how many bytes of the request body were read, 0 without one.
func (b *countingBody) bytesIn() int64 {
	if b == nil {
		return 0
	}
	return b.n.Load()
}

// accessLog writes the one line per request: remote address, host, route,
// service, endpoint, status (and grpc-status), attempts, bytes in and out,
// duration, the trace id and the X-Outbound-Error reason if any.
// A request whose client went away before an answer is logged at debug.
func (s *Server) accessLog(r *http.Request, w *logWriter, rt *route, e *serviceEntry, rec *attempt.Record, start time.Time, panicked any) {
	level := slog.LevelInfo
	if w.quiet {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	h := s.accessLogger().Handler()
	if !h.Enabled(ctx, level) {
		return
	}
	if panicked != nil {
		level = slog.LevelWarn
	}
	now := time.Now()
	status := w.status
	if status == 0 {
		if panicked != nil {
			status = 499 // aborted mid-stream
		} else {
			status = http.StatusOK
		}
	}
	var route, service string
	if rt != nil {
		route = rt.name
	}
	if e != nil {
		service = e.name
	}
	endpoint, attempts := attemptsOf(rec, w, status)
	in, out := w.in.bytesIn(), w.out
	if t := w.hijacked; t != nil {
		in += t.in.Load()
		out += t.out.Load()
	}
	attrs := [...]slog.Attr{
		slog.String("remote", r.RemoteAddr),
		slog.String("host", r.Host),
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.String("service", service),
		slog.String("endpoint", endpoint),
		slog.Int("status", status),
		slog.Int("attempts", attempts),
		slog.Int64("bytes_in", in),
		slog.Int64("bytes_out", out),
		slog.Float64("duration_ms", float64(now.Sub(start).Microseconds())/1000),
		{}, {}, {}, // grpc_status, trace_id, error: only when there is one
	}
	n := len(attrs) - 3
	if gs := grpcStatusOf(w.Header()); gs != "" {
		attrs[n] = slog.String("grpc_status", gs)
		n++
	}
	if tid := traceIDOf(r); tid != "" {
		attrs[n] = slog.String("trace_id", tid)
		n++
	}
	if w.reason != "" {
		attrs[n] = slog.String("error", w.reason)
		n++
	}
	// The handler directly, not Logger.LogAttrs: the same record, without
	// the caller's program counter (runtime.Callers) nobody prints.
	line := slog.NewRecord(now, level, "request", 0)
	line.AddAttrs(attrs[:n]...)
	_ = h.Handle(ctx, line)
}

// attemptsOf is the last endpoint tried and the number of attempts.
func attemptsOf(rec *attempt.Record, w *logWriter, status int) (string, int) {
	if rec == nil {
		return "", 0
	}
	attempts := rec.Attempts()
	if attempts == 0 {
		attempts = rec.TriedCount()
	}
	if attempts == 0 && w.reason == "" && status != 499 {
		attempts = 1 // no retry layer counted it, but an upstream answered
	}
	return rec.LastEndpoint(), attempts
}

// grpcStatusOf is the grpc-status the caller was sent, in the headers
// (trailers-only) or in the trailers ReverseProxy copied into h.
func grpcStatusOf(h http.Header) string {
	if v := h["Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	if v := h[http.TrailerPrefix+"Grpc-Status"]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// traceIDOf is the request's trace id: its span's if the context has one,
// else the caller's W3C traceparent header's; "" when there is none.
func traceIDOf(r *http.Request) string {
	if sc := trace.SpanContextFromContext(r.Context()); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	v := r.Header["Traceparent"]
	if len(v) == 0 {
		return ""
	}
	// version "-" trace-id (32 hex) "-" parent-id "-" flags
	tp := v[0]
	if len(tp) < 55 || tp[2] != '-' || tp[35] != '-' {
		return ""
	}
	tid, err := trace.TraceIDFromHex(tp[3:35])
	if err != nil || !tid.IsValid() {
		return ""
	}
	return tid.String()
}
