package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// accessLogger is the logger of -access-log dest: nil for "stderr" (the
// access log stays in the process log, as by default), a discarding logger
// for "off", else a logger with the process log's format writing to stdout
// or to the file dest, opened append-only and created 0644. close flushes
// and closes what it opened; it is never nil.
func accessLogger(dest string, stdout io.Writer, newHandler func(io.Writer) slog.Handler) (l *slog.Logger, close func(), err error) {
	switch dest {
	case "stderr":
		return nil, func() {}, nil
	case "off":
		return slog.New(slog.DiscardHandler), func() {}, nil
	case "":
		return nil, nil, errors.New("-access-log: want off, stdout, stderr or a FILE path, got \"\"")
	case "stdout":
		lw := newLogWriter(stdout)
		return slog.New(newHandler(lw)), func() { _ = lw.Close() }, nil
	}
	f, err := os.OpenFile(dest, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("-access-log: %w", err)
	}
	lw := newLogWriter(f)
	return slog.New(newHandler(lw)), func() { _ = lw.Close(); _ = f.Close() }, nil
}
