package testkit

import (
	"io"
	"log/slog"
	"testing"
)

// DebugLogger returns a text logger that writes every level from Debug up
// to w.
func DebugLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// CaptureDefaultLog points slog.Default at a DebugLogger writing to the
// returned buffer until the test ends, so that a test can show a library
// logs nothing it was not asked to. Tests that call it must not run in
// parallel with each other.
func CaptureDefaultLog(t testing.TB) *SyncBuffer {
	t.Helper()
	var buf SyncBuffer
	prev := slog.Default()
	slog.SetDefault(DebugLogger(&buf))
	t.Cleanup(func() { slog.SetDefault(prev) })
	return &buf
}
