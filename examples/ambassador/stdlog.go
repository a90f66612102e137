package main

import (
	"log"
	"log/slog"
	"strings"
)

// stdLog turns what the standard library's package-level logger is given
// into records of the process's logger at Warn level. net/http's Transport
// writes there on its own ("Unsolicited response received on idle HTTP
// channel", an upstream that answered what nobody asked), and a raw text
// line in the middle of JSON logs breaks whatever reads them.
type stdLog struct{ l *slog.Logger }

func (s stdLog) Write(p []byte) (int, error) {
	s.l.Warn(strings.TrimSuffix(string(p), "\n"), "component", "go")
	return len(p), nil
}

// routeStdLog installs stdLog as the output of the log package (like
// routeRedisLog, this is for main to do, not the library) and returns what
// puts the log package back as it was, for run to call on its way out.
func routeStdLog(l *slog.Logger) (restore func()) {
	std := log.Default()
	w, flags, prefix := std.Writer(), std.Flags(), std.Prefix()
	std.SetFlags(0) // the record has its own time
	std.SetPrefix("")
	std.SetOutput(stdLog{l})
	return func() {
		std.SetOutput(w)
		std.SetFlags(flags)
		std.SetPrefix(prefix)
	}
}
