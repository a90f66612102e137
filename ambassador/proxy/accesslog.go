package proxy

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/outbound-go/outbound/internal/attempt"
)

// accessLog writes the one line per request: route, service, endpoint,
// status, attempts, duration and the X-Outbound-Error reason if any.
// A request whose client went away before an answer is logged at debug.
func (s *Server) accessLog(r *http.Request, w *logWriter, rt *route, e *serviceEntry, rec *attempt.Record, start time.Time, panicked any) {
	level := slog.LevelInfo
	if w.quiet {
		level = slog.LevelDebug
	}
	ctx := context.Background()
	h := s.opts.logger.Handler()
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
	var route, service, endpoint string
	if rt != nil {
		route = rt.name
	}
	if e != nil {
		service = e.name
	}
	attempts := 0
	if rec != nil {
		endpoint = rec.LastEndpoint()
		attempts = rec.Attempts()
		if attempts == 0 {
			attempts = rec.TriedCount()
		}
		if attempts == 0 && w.reason == "" && status != 499 {
			attempts = 1 // no retry layer counted it, but an upstream answered
		}
	}
	attrs := [...]slog.Attr{
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("route", route),
		slog.String("service", service),
		slog.String("endpoint", endpoint),
		slog.Int("status", status),
		slog.Int("attempts", attempts),
		slog.Duration("duration", now.Sub(start)),
		slog.String("error", w.reason),
	}
	n := len(attrs)
	if w.reason == "" {
		n-- // the reason is last: leave it out when there is none
	}
	// The handler directly, not Logger.LogAttrs: the same record, without
	// the caller's program counter (runtime.Callers) nobody prints.
	line := slog.NewRecord(now, level, "request", 0)
	line.AddAttrs(attrs[:n]...)
	_ = h.Handle(ctx, line)
}
