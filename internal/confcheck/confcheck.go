// Package confcheck holds what the config checks of package ambassador (a
// ServiceConfig) and package ambassador/proxy (the process config) share:
// the Problem and ConfigError they report and the Checker that collects
// problems with their key paths and YAML lines. Nothing here is for users;
// proxy re-exports Problem and ConfigError as its own names.
package confcheck

import (
	"fmt"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/outbound-go/outbound/internal/fielderr"
)

// Problem is one thing wrong with a config.
type Problem struct {
	// Path is the dotted key path, with [i] for list items, such as
	// "services.users.retry.max_attempts" or "listeners[1].routes[0].service".
	// It is empty for a YAML syntax error.
	Path string
	// Line is the 1-based line in the YAML document, 0 when unknown (a
	// Config built in code, or a key that is missing).
	Line int
	// Msg says what is wrong.
	Msg string
}

// String formats the problem as "PATH: message (line N)".
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Line > 0 {
		b.WriteString(" (line ")
		b.WriteString(strconv.Itoa(p.Line))
		b.WriteString(")")
	}
	return b.String()
}

// ConfigError lists every problem found in a config, sorted by line.
type ConfigError struct {
	Problems []Problem
}

// Error returns one "KEY.PATH: message (line N)" per line.
func (e *ConfigError) Error() string {
	var b strings.Builder
	for i, p := range e.Problems {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(p.String())
	}
	return b.String()
}

// NewError sorts ps by line (problems without a line last, in order) and
// wraps them in a *ConfigError.
func NewError(ps []Problem) *ConfigError {
	sort.SliceStable(ps, func(i, j int) bool {
		li, lj := ps[i].Line, ps[j].Line
		if (li == 0) != (lj == 0) {
			return lj == 0
		}
		return li < lj
	})
	return &ConfigError{Problems: ps}
}

// Checker collects problems into *Ps. Lines maps key paths to YAML lines
// (nil for a config built in code).
type Checker struct {
	Lines map[string]int
	Ps    *[]Problem
	// Bad holds the paths the decoder already reported; semantic problems
	// at or under them would only repeat the cause.
	Bad map[string]bool
}

// Covered reports whether path or one of its parents is in Bad.
func (c Checker) Covered(path string) bool {
	for path != "" {
		if c.Bad[path] {
			return true
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return false
		}
		path = path[:i]
	}
	return false
}

// Line returns the line of path or of its nearest parent known to the decoder.
func (c Checker) Line(path string) int {
	for path != "" {
		if l, ok := c.Lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			return 0
		}
		path = path[:i]
	}
	return 0
}

// Add adds a problem at path unless the decoder reported it or a parent.
func (c Checker) Add(path, format string, args ...any) {
	if c.Covered(path) {
		return
	}
	*c.Ps = append(*c.Ps, Problem{Path: path, Line: c.Line(path), Msg: fmt.Sprintf(format, args...)})
}

// Policy records the problems of a policy's Validate under prefix: each
// *fielderr.Error (found with errors.As, walking the errors.Join tree) at
// prefix plus its Field, any other error at prefix with its whole text.
func (c Checker) Policy(prefix string, err error) {
	fielderr.Each(err, func(field, msg string) {
		c.Add(Join(prefix, field), "%s", msg)
	})
}

// LeafErrors flattens the errors.Join tree of err.
func LeafErrors(err error) []error {
	if err == nil {
		return nil
	}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range u.Unwrap() {
			out = append(out, LeafErrors(e)...)
		}
		return out
	}
	return []error{err}
}

// Join appends key to the path prefix ("a" + "b" = "a.b", "a" + "[0]" =
// "a[0]", "a" + "" = "a").
func Join(prefix, key string) string {
	if prefix == "" {
		return key
	}
	if key == "" {
		return prefix
	}
	if strings.HasPrefix(key, "[") {
		return prefix + key
	}
	return prefix + "." + key
}

// HasPrefix reports whether a problem was recorded at path or under it.
func HasPrefix(ps []Problem, path string) bool {
	for _, p := range ps {
		if p.Path == path || strings.HasPrefix(p.Path, path+".") || strings.HasPrefix(p.Path, path+"[") {
			return true
		}
	}
	return false
}

// CheckRange reports path unless 0 ≤ v ≤ hi; what says how hi reads
// ("1000000", "24h0m0s", "16MiB").
func (c Checker) CheckRange(path string, v, hi int64, what string) {
	if v < 0 {
		c.CheckNonNegative(path, v)
		return
	}
	if v > hi {
		c.Add(path, "must be at most %s", what)
	}
}

// CheckNonNegative reports path when v < 0.
func (c Checker) CheckNonNegative(path string, v int64) {
	if v < 0 {
		c.Add(path, "must be ≥ 0")
	}
}

// CheckHostPort returns an error naming addr unless it is host:port with a
// valid port.
func CheckHostPort(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port", addr)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("%q has an invalid host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("%q has an invalid port", addr)
	}
	return nil
}
