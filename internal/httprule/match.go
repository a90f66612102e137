package httprule

import (
	"net/url"
	"strings"
)

// maxStackVars is how many variables match captures without allocating.
const maxStackVars = 8

// capture is one variable's value as it stands in the path (still escaped).
type capture struct{ start, end int }

// match reports whether the escaped path matches t, and appends the raw
// value of each variable (substrings of path, not yet decoded) to vals.
func (t *Template) match(path string, vals []string) ([]string, bool) {
	if len(path) == 0 || path[0] != '/' {
		return vals, false
	}
	rest := path[1:]
	if t.verb != "" {
		var ok bool
		if rest, ok = cutVerb(rest, t.verb); !ok {
			return vals, false
		}
	}
	if len(t.segs) == 0 {
		return vals, rest == ""
	}
	var buf [maxStackVars]capture
	caps := buf[:0]
	pos, vi := 0, 0
	var cur capture
	for i, s := range t.segs {
		if pos > len(rest) {
			if s.kind != segDoubleStar {
				return vals, false // the path ran out of segments
			}
			pos = len(rest) // "**" matches zero segments
		}
		if vi < len(t.vars) && t.vars[vi].start == i {
			cur.start = pos
		}
		var end int
		switch s.kind {
		case segDoubleStar:
			end = len(rest)
		default:
			end = strings.IndexByte(rest[pos:], '/')
			if end < 0 {
				end = len(rest)
			} else {
				end += pos
			}
			if !s.matches(rest[pos:end]) {
				return vals, false
			}
		}
		if vi < len(t.vars) && t.vars[vi].end == i+1 {
			cur.end = end
			caps = append(caps, cur)
			vi++
		}
		pos = end + 1
	}
	if pos <= len(rest) {
		return vals, false // segments left over
	}
	if len(caps) > 0 && vals == nil {
		vals = make([]string, 0, len(caps))
	}
	for _, c := range caps {
		vals = append(vals, rest[c.start:c.end])
	}
	return vals, true
}

// mayMatch reports whether a path with this many '/' can match t: one
// per segment, at least one less than the segments with a trailing "**"
// (which matches zero or more). It only rules out; match decides.
func (t *Template) mayMatch(slashes int) bool {
	n := len(t.segs)
	switch {
	case n == 0:
		return slashes == 1
	case t.segs[n-1].kind == segDoubleStar:
		return slashes >= n-1
	default:
		return slashes == n
	}
}

// cutVerb removes ":verb" from the end of the path's last segment.
func cutVerb(rest, verb string) (string, bool) {
	n := len(rest) - len(verb) - 1
	if n < 0 || rest[n] != ':' || rest[n+1:] != verb {
		return rest, false
	}
	if strings.IndexByte(rest[n:], '/') >= 0 {
		return rest, false
	}
	return rest[:n], true
}

// matches reports whether one escaped path segment fits a "*" or a literal.
func (s segment) matches(seg string) bool {
	if s.kind == segStar {
		return seg != ""
	}
	if seg == s.literal {
		return true
	}
	if strings.IndexByte(seg, '%') < 0 && strings.IndexByte(s.literal, '%') < 0 {
		return false
	}
	a, err1 := url.PathUnescape(seg)
	b, err2 := url.PathUnescape(s.literal)
	return err1 == nil && err2 == nil && a == b
}

// decodeValue percent-decodes a captured value as the HttpRule doc says:
// a single-segment variable decodes everything ("%2F" becomes '/'); a
// multi-segment one decodes everything but "%2F"/"%2f", so '/' stays the
// separator and an escaped slash stays escaped.
func decodeValue(raw string, multi bool) (string, error) {
	if strings.IndexByte(raw, '%') < 0 {
		return raw, nil
	}
	if !multi {
		return url.PathUnescape(raw)
	}
	var b strings.Builder
	for {
		i := indexEscapedSlash(raw)
		if i < 0 {
			break
		}
		part, err := url.PathUnescape(raw[:i])
		if err != nil {
			return "", err
		}
		b.WriteString(part)
		b.WriteString(raw[i : i+3])
		raw = raw[i+3:]
	}
	part, err := url.PathUnescape(raw)
	if err != nil {
		return "", err
	}
	b.WriteString(part)
	return b.String(), nil
}

// indexEscapedSlash finds "%2F" or "%2f" in s.
func indexEscapedSlash(s string) int {
	for i := 0; i+2 < len(s); i++ {
		if s[i] == '%' && s[i+1] == '2' && (s[i+2] == 'F' || s[i+2] == 'f') {
			return i
		}
	}
	return -1
}
