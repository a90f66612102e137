package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// countingStd counts the records lineHandler leaves to slog's handler.
type countingStd struct {
	slog.Handler
	n int
}

func (c *countingStd) Handle(ctx context.Context, r slog.Record) error {
	c.n++
	return c.Handler.Handle(ctx, r)
}

// accessRecord is a record like the proxy's access-log line.
func accessRecord(t time.Time, level slog.Level, route, path string, ms float64) slog.Record {
	r := slog.NewRecord(t, level, "request", 0)
	r.AddAttrs(
		slog.String("remote", "127.0.0.1:53412"), slog.String("host", "users.internal:8080"),
		slog.String("method", "GET"), slog.String("path", path), slog.String("route", route),
		slog.String("service", "users"), slog.String("endpoint", "[::1]:9001"), slog.Int("status", 200),
		slog.Int("attempts", 1), slog.Int64("bytes_in", 0), slog.Int64("bytes_out", 100),
		slog.Float64("duration_ms", ms), slog.String("grpc_status", "0"),
		slog.String("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736"), slog.String("error", "upstream_reset"))
	return r
}

func oneAttr(a slog.Attr) slog.Record {
	r := slog.NewRecord(time.Date(2026, 12, 2, 7, 31, 33, 123456789, time.UTC), slog.LevelInfo, "m", 0)
	r.AddAttrs(a)
	return r
}

// path says which handler writes a record: lineHandler's fast path, slog's
// handler, or the fast path for text only (JSON's floats outside [1e-6,
// 1e21) are slog's).
type path int

const (
	fast path = iota
	slow
	textOnly
)

func TestLineHandlerWritesWhatSlogWrites(t *testing.T) {
	ts := time.Date(2026, 12, 2, 7, 31, 33, 123456789, time.UTC)
	type tc struct {
		name string
		r    slog.Record
		path path // which records the fast path writes
	}
	cases := []tc{
		{"access line", accessRecord(ts, slog.LevelInfo, "listener 127.0.0.1:8080", "/api/x", 0.123), fast},
		{"access line debug", accessRecord(ts, slog.LevelDebug, "r", "/", 0), fast},
		{"access line warn", accessRecord(ts, slog.LevelWarn, "", "/a b", 12.5), fast},
		{"level error", accessRecord(ts, slog.LevelError, "r", "/", 1), fast},
		{"level info+2", accessRecord(ts, slog.LevelInfo+2, "r", "/", 1), slow},
		{"level debug-4", accessRecord(ts, slog.LevelDebug-4, "r", "/", 1), slow},
		{"path quoted", accessRecord(ts, slog.LevelInfo, "r", `/a"b=c\d`, 1), fast},
		{"path non-ascii", accessRecord(ts, slog.LevelInfo, "r", "/é", 1), slow},
		{"path invalid utf-8", accessRecord(ts, slog.LevelInfo, "r", "/\xff", 1), slow},
		{"path line separator", accessRecord(ts, slog.LevelInfo, "r", "/\u2028", 1), slow},
		{"zero time", accessRecord(time.Time{}, slog.LevelInfo, "r", "/", 1), fast},
		{"monotonic time", accessRecord(time.Now(), slog.LevelInfo, "r", "/", 1), fast},
		{"time 999ms", accessRecord(time.Date(2026, 1, 1, 0, 0, 59, 999999999, time.UTC), slog.LevelInfo, "r", "/", 1), fast},
		{"time whole second", accessRecord(time.Date(2026, 1, 1, 0, 0, 59, 0, time.UTC), slog.LevelInfo, "r", "/", 1), fast},
		{"time +05:30", accessRecord(ts.In(time.FixedZone("IST", 5*3600+1800)), slog.LevelInfo, "r", "/", 1), fast},
		{"time -08:00", accessRecord(ts.In(time.FixedZone("PST", -8*3600)), slog.LevelInfo, "r", "/", 1), fast},
		{"time year 5", accessRecord(time.Date(5, 3, 4, 1, 2, 3, 4e6, time.UTC), slog.LevelInfo, "r", "/", 1), fast},
		{"time year 10000", accessRecord(time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), slog.LevelInfo, "r", "/", 1), slow},
		{"duration 1e6 ms", accessRecord(ts, slog.LevelInfo, "r", "/", 1234567.891), fast},
		{"duration 1e21", accessRecord(ts, slog.LevelInfo, "r", "/", 1e21), textOnly},
		{"duration 1e-7", accessRecord(ts, slog.LevelInfo, "r", "/", 1e-7), textOnly},
		{"empty message", func() slog.Record { r := slog.NewRecord(ts, slog.LevelInfo, "", 0); return r }(), fast},
		{"message with spaces", func() slog.Record { r := slog.NewRecord(ts, slog.LevelInfo, "upstream error", 0); return r }(), fast},
		{"int min", oneAttr(slog.Int64("n", math.MinInt64)), fast},
		{"uint max", oneAttr(slog.Uint64("n", math.MaxUint64)), fast},
		{"bool", oneAttr(slog.Bool("ok", true)), fast},
		{"float -0", oneAttr(slog.Float64("f", math.Copysign(0, -1))), fast},
		{"float 1e20", oneAttr(slog.Float64("f", 1e20)), fast},
		{"float NaN", oneAttr(slog.Float64("f", math.NaN())), slow},
		{"float +Inf", oneAttr(slog.Float64("f", math.Inf(1))), slow},
		{"empty string", oneAttr(slog.String("s", "")), fast},
		{"key with space", oneAttr(slog.String("a b", "v")), slow},
		{"key with =", oneAttr(slog.String("a=b", "v")), slow},
		{"key dotted", oneAttr(slog.String("http.route", "v")), fast},
		{"empty key", oneAttr(slog.String("", "v")), slow},
		{"empty attr", oneAttr(slog.Attr{}), slow},
		{"duration kind", oneAttr(slog.Duration("d", 1500*time.Millisecond)), slow},
		{"time kind", oneAttr(slog.Time("t", ts)), slow},
		{"any kind", oneAttr(slog.Any("err", fmt.Errorf("boom"))), slow},
		{"group", oneAttr(slog.Group("g", slog.Int("a", 1))), slow},
	}
	for c := byte(0); c < 0x80; c++ {
		s := fmt.Sprintf("a%cb", c)
		cases = append(cases, tc{fmt.Sprintf("byte %#02x", c), oneAttr(slog.String("s", s)), fast},
			tc{fmt.Sprintf("byte %#02x alone", c), oneAttr(slog.String("s", string(c))), fast})
	}
	for _, json := range []bool{false, true} {
		for _, c := range cases {
			t.Run(fmt.Sprintf("json=%v/%s", json, c.name), func(t *testing.T) {
				var want, got bytes.Buffer
				var std slog.Handler = slog.NewTextHandler(&want, nil)
				var mine slog.Handler = slog.NewTextHandler(&got, nil)
				if json {
					std, mine = slog.NewJSONHandler(&want, nil), slog.NewJSONHandler(&got, nil)
				}
				counted := &countingStd{Handler: mine}
				h := &lineHandler{std: counted, w: &got, json: json}
				require.NoError(t, std.Handle(context.Background(), c.r))
				require.NoError(t, h.Handle(context.Background(), c.r))
				assert.Equal(t, want.String(), got.String())
				assert.Equal(t, c.path == fast || c.path == textOnly && !json, counted.n == 0, "fast path taken")
			})
		}
	}
}

func TestNewLineHandlerLeavesHooksToSlog(t *testing.T) {
	var buf bytes.Buffer
	for _, opts := range []*slog.HandlerOptions{
		{AddSource: true},
		{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr { return a }},
	} {
		h := newLineHandler(&buf, false, opts)
		assert.IsType(t, &slog.TextHandler{}, h)
		h = newLineHandler(&buf, true, opts)
		assert.IsType(t, &slog.JSONHandler{}, h)
	}
	h := newLineHandler(&buf, false, &slog.HandlerOptions{Level: slog.LevelWarn})
	require.IsType(t, &lineHandler{}, h)
	assert.False(t, h.Enabled(context.Background(), slog.LevelInfo))
	assert.True(t, h.Enabled(context.Background(), slog.LevelWarn))
	assert.IsType(t, &slog.TextHandler{}, h.WithAttrs([]slog.Attr{slog.Int("a", 1)}))
	assert.IsType(t, &slog.TextHandler{}, h.WithGroup("g"))
}

// BenchmarkAccessLine is one access-log line through slog's handlers and
// through lineHandler, to a writer that drops it.
func BenchmarkAccessLine(b *testing.B) {
	r := accessRecord(time.Now(), slog.LevelInfo, "listener 127.0.0.1:8080", "/api/x", 0.123)
	for _, json := range []bool{false, true} {
		for _, fast := range []bool{false, true} {
			b.Run(fmt.Sprintf("json=%v/fast=%v", json, fast), func(b *testing.B) {
				var h slog.Handler
				switch {
				case fast:
					h = newLineHandler(discard{}, json, nil)
				case json:
					h = slog.NewJSONHandler(discard{}, nil)
				default:
					h = slog.NewTextHandler(discard{}, nil)
				}
				b.ReportAllocs()
				for b.Loop() {
					_ = h.Handle(context.Background(), r)
				}
			})
		}
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
