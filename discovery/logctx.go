package discovery

import (
	"context"
	"log/slog"
)

// loggerKey carries a Service's logger to its source's Watch, for what a
// source notices without failing (a skipped etcd value).
type loggerKey struct{}

// withLogger returns ctx carrying l.
func withLogger(ctx context.Context, l *slog.Logger) context.Context {
	return context.WithValue(ctx, loggerKey{}, l)
}

// loggerFrom returns the logger ctx carries, or one that discards.
func loggerFrom(ctx context.Context) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok && l != nil {
		return l
	}
	return slog.New(slog.DiscardHandler)
}
