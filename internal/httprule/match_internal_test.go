package httprule

import (
	"regexp"
	"strings"
	"testing"
)

// oracle is the regular expression a template means, one group per
// variable: the second, independent spelling of the matching rules that
// FuzzTemplateMatch compares match with.
func oracle(t *Template) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("(?s)^") // s: "." takes '\n' too, as "**" does
	vi := 0
	for i, s := range t.segs {
		if vi < len(t.vars) && t.vars[vi].start == i {
			b.WriteString("(")
		}
		switch s.kind {
		case segLiteral:
			b.WriteString("/" + regexp.QuoteMeta(s.literal))
		case segStar:
			b.WriteString("/[^/]+")
		case segDoubleStar:
			b.WriteString("(?:/.*)?")
		}
		if vi < len(t.vars) && t.vars[vi].end == i+1 {
			b.WriteString(")")
			vi++
		}
	}
	if len(t.segs) == 0 {
		b.WriteString("/")
	}
	if t.verb != "" {
		b.WriteString(":" + regexp.QuoteMeta(t.verb))
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// FuzzTemplateMatch: for templates without escapes, match agrees with the
// template's regular expression on whether a path matches and on every
// captured value, and the segment-count prefilter never rules out a match.
// Paths are what Router.Match gives match: beginning with '/' (it turns an
// empty path into "/"; the regular expression would let "**" match "").
func FuzzTemplateMatch(f *testing.F) {
	for _, s := range [][2]string{
		{"/v1/{name}", "/v1/x"}, {"/v1/{name=**}", "/v1"}, {"/v1/{name=**}:go", "/v1/a/b:go"},
		{"/a/{x=b/*}/c", "/a/b/q/c"}, {"/{x}:v", "/:v"}, {"/", "/"}, {"/a/**", "/a/"},
		{"/a/*/{y=**}", "/a/b/c/d"}, {"/a:b/c", "/a:b/c"}, {"/v1/{name}:cancel", "/v1/x:y:cancel"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, tmpl, path string) {
		tp, err := Parse(tmpl)
		if err != nil || strings.Contains(tmpl, "%") || strings.Contains(path, "%") || !strings.HasPrefix(path, "/") {
			return
		}
		vals, ok := tp.match(path, nil)
		want := oracle(&tp).FindStringSubmatch(path)
		if ok != (want != nil) {
			t.Fatalf("%q on %q: match %v, regexp %v", tmpl, path, ok, want != nil)
		}
		if !ok {
			return
		}
		if !tp.mayMatch(strings.Count(path, "/")) {
			t.Fatalf("%q on %q: prefilter ruled out a match", tmpl, path)
		}
		for i, v := range vals {
			// The regexp's group includes the '/' before the first segment.
			if got := strings.TrimPrefix(want[i+1], "/"); got != v {
				t.Fatalf("%q on %q: variable %d = %q, regexp %q", tmpl, path, i, v, got)
			}
		}
	})
}
