package main

import (
	"context"
	"io"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
)

// lineHandler is the process's slog.Handler: slog's TextHandler or
// JSONHandler (std, with the same writer and options) with a fast path for
// the records the ambassador writes most, one access-log line per request.
// A record whose message and attribute values are ASCII strings, integers,
// booleans or finite floats, under keys that need no quoting, at one of the
// four named levels, is formatted straight into a pooled buffer, byte for
// byte as std would write it, without std's per-attribute generality
// (ReplaceAttr hooks, value resolution, groups). Every other record, and
// every handler made by WithAttrs or WithGroup, is std's.
//
// The options must have no ReplaceAttr and no AddSource (newLineHandler
// then returns std itself). w must be safe for concurrent writes, each
// Write one whole line, as logWriter is: lineHandler writes without std's
// mutex.
type lineHandler struct {
	std  slog.Handler
	w    io.Writer
	json bool
}

// newLineHandler is a TextHandler (JSONHandler if json) on w with opts,
// with the fast path of lineHandler when opts allow it.
func newLineHandler(w io.Writer, json bool, opts *slog.HandlerOptions) slog.Handler {
	var std slog.Handler
	if json {
		std = slog.NewJSONHandler(w, opts)
	} else {
		std = slog.NewTextHandler(w, opts)
	}
	if opts != nil && (opts.ReplaceAttr != nil || opts.AddSource) {
		return std
	}
	return &lineHandler{std: std, w: w, json: json}
}

func (h *lineHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.std.Enabled(ctx, l) }

func (h *lineHandler) WithAttrs(as []slog.Attr) slog.Handler { return h.std.WithAttrs(as) }

func (h *lineHandler) WithGroup(name string) slog.Handler { return h.std.WithGroup(name) }

// linePool holds the line buffers; one over maxPooledLine is not kept.
var linePool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

const maxPooledLine = 16 << 10

func (h *lineHandler) Handle(ctx context.Context, r slog.Record) error {
	bp := linePool.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxPooledLine {
			linePool.Put(bp)
		}
	}()
	b, ok := h.appendRecord((*bp)[:0], r)
	*bp = b
	if !ok {
		return h.std.Handle(ctx, r)
	}
	_, err := h.w.Write(b)
	return err
}

// appendRecord appends r's line to b; false if r is not one the fast path
// writes exactly as std does (b is then garbage).
func (h *lineHandler) appendRecord(b []byte, r slog.Record) ([]byte, bool) {
	level, ok := levelName(r.Level)
	if !ok {
		return b, false
	}
	if h.json {
		b = append(b, '{')
	}
	if !r.Time.IsZero() {
		t := r.Time.Round(0)
		if y := t.Year(); y < 0 || y > 9999 {
			return b, false
		}
		b = h.appendKey(b, "time", false)
		if h.json {
			b = append(b, '"')
			b = t.AppendFormat(b, time.RFC3339Nano)
			b = append(b, '"')
		} else {
			b = appendMillis(b, t)
		}
		b = append(b, h.sep()...)
	}
	b = h.appendKey(b, "level", false)
	b = append(b, h.quote()...)
	b = append(b, level...)
	b = append(b, h.quote()...)
	b = append(b, h.sep()...)
	b = h.appendKey(b, "msg", false)
	if b, ok = h.appendString(b, r.Message); !ok {
		return b, false
	}
	r.Attrs(func(a slog.Attr) bool {
		b, ok = h.appendAttr(b, a)
		return ok
	})
	if !ok {
		return b, false
	}
	if h.json {
		b = append(b, '}')
	}
	return append(b, '\n'), true
}

// appendAttr appends sep, a's key and its value; false for a key or value
// the fast path leaves to std.
func (h *lineHandler) appendAttr(b []byte, a slog.Attr) ([]byte, bool) {
	if !plainKey(a.Key) {
		return b, false
	}
	v := a.Value
	switch v.Kind() {
	case slog.KindString:
		b = h.appendKey(b, a.Key, true)
		return h.appendString(b, v.String())
	case slog.KindInt64:
		return strconv.AppendInt(h.appendKey(b, a.Key, true), v.Int64(), 10), true
	case slog.KindUint64:
		return strconv.AppendUint(h.appendKey(b, a.Key, true), v.Uint64(), 10), true
	case slog.KindBool:
		return strconv.AppendBool(h.appendKey(b, a.Key, true), v.Bool()), true
	case slog.KindFloat64:
		f := v.Float64()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return b, false
		}
		b = h.appendKey(b, a.Key, true)
		if !h.json {
			return strconv.AppendFloat(b, f, 'g', -1, 64), true
		}
		// encoding/json's choice: plain digits between 1e-6 and 1e21.
		if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
			return b, false
		}
		return strconv.AppendFloat(b, f, 'f', -1, 64), true
	}
	return b, false
}

func (h *lineHandler) sep() string {
	if h.json {
		return ","
	}
	return " "
}

func (h *lineHandler) quote() string {
	if h.json {
		return `"`
	}
	return ""
}

// appendKey appends key (a plainKey) and the key-value separator, after
// the attribute separator if lead.
func (h *lineHandler) appendKey(b []byte, key string, lead bool) []byte {
	if lead {
		b = append(b, h.sep()...)
	}
	if h.json {
		b = append(b, '"')
		b = append(b, key...)
		return append(b, '"', ':')
	}
	b = append(b, key...)
	return append(b, '=')
}

// What a byte of a string value needs, as bits: quoteText, the text
// handler quotes the string (space, '=', '"', control characters, empty);
// escapeJSON, the JSON handler escapes it ('"', '\\', control
// characters); nonASCII, the fast path leaves the string to std.
const (
	quoteText = 1 << iota
	escapeJSON
	nonASCII
)

// byteNeeds is what each byte needs; plainKeyByte, the bytes of a plainKey.
var byteNeeds, plainKeyByte = func() (needs, key [256]uint8) {
	for c := range 256 {
		switch {
		case c >= 0x80:
			needs[c] = nonASCII
		case c < 0x20 || c == '"':
			needs[c] = quoteText | escapeJSON
		case c == ' ' || c == '=':
			needs[c] = quoteText
		case c == '\\':
			needs[c] = escapeJSON
		}
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.' {
			key[c] = 1
		}
	}
	return needs, key
}()

// appendString appends s as std writes a string value: for text, as it is,
// or Go-quoted when empty or holding a space, '=', '"' or a control
// character; for JSON, in quotes with '"', '\\' and control characters
// escaped. Non-ASCII strings are left to std (false).
func (h *lineHandler) appendString(b []byte, s string) ([]byte, bool) {
	var needs uint8
	if s == "" {
		needs = quoteText
	}
	for i := 0; i < len(s); i++ {
		needs |= byteNeeds[s[i]]
	}
	switch {
	case needs&nonASCII != 0:
		return b, false
	case h.json && needs&escapeJSON == 0:
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"'), true
	case h.json:
		return appendJSONString(b, s), true
	case needs&quoteText == 0:
		return append(b, s...), true
	}
	return appendQuoted(b, s), true
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends the ASCII string s as a JSON string, with '"',
// '\\' and control characters escaped (\n, \r, \t by name).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendQuoted appends the ASCII string s Go-quoted, as strconv.Quote
// does: '"' and '\\' escaped, \a \b \f \n \r \t \v by name, other
// control characters and DEL as \xhh.
func appendQuoted(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c < 0x7f && c != '"' && c != '\\' {
			b = append(b, c)
			continue
		}
		b = append(b, '\\')
		switch c {
		case '"', '\\':
			b = append(b, c)
		case '\a':
			b = append(b, 'a')
		case '\b':
			b = append(b, 'b')
		case '\f':
			b = append(b, 'f')
		case '\n':
			b = append(b, 'n')
		case '\r':
			b = append(b, 'r')
		case '\t':
			b = append(b, 't')
		case '\v':
			b = append(b, 'v')
		default:
			b = append(b, 'x', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(b, '"')
}

// plainKey reports whether key is written as it is by both handlers: not
// empty, only letters, digits, '_', '-' and '.'.
func plainKey(key string) bool {
	for i := 0; i < len(key); i++ {
		if plainKeyByte[key[i]] == 0 {
			return false
		}
	}
	return key != ""
}

// levelName is the name std writes for the four named levels; false for
// the others (INFO+2 and the like).
func levelName(l slog.Level) (string, bool) {
	switch l {
	case slog.LevelDebug:
		return "DEBUG", true
	case slog.LevelInfo:
		return "INFO", true
	case slog.LevelWarn:
		return "WARN", true
	case slog.LevelError:
		return "ERROR", true
	}
	return "", false
}

// appendMillis appends t as the TextHandler writes a record's time: RFC
// 3339 with exactly three digits of milliseconds (truncated), and Z or the
// zone's ±hh:mm. t's year is in [0, 9999].
func appendMillis(b []byte, t time.Time) []byte {
	year, month, day := t.Date()
	hour, minute, sec := t.Clock()
	b = appendDigits(b, year, 4)
	b = append(b, '-')
	b = appendDigits(b, int(month), 2)
	b = append(b, '-')
	b = appendDigits(b, day, 2)
	b = append(b, 'T')
	b = appendDigits(b, hour, 2)
	b = append(b, ':')
	b = appendDigits(b, minute, 2)
	b = append(b, ':')
	b = appendDigits(b, sec, 2)
	b = append(b, '.')
	b = appendDigits(b, t.Nanosecond()/1e6, 3)
	_, offset := t.Zone()
	if offset == 0 {
		return append(b, 'Z')
	}
	sign := byte('+')
	if offset < 0 {
		sign, offset = '-', -offset
	}
	b = append(b, sign)
	b = appendDigits(b, offset/3600, 2)
	b = append(b, ':')
	return appendDigits(b, offset/60%60, 2)
}

// appendDigits appends the non-negative n zero-padded to width digits.
func appendDigits(b []byte, n, width int) []byte {
	var d [4]byte
	for i := width - 1; i >= 0; i-- {
		d[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, d[:width]...)
}
