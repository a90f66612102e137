package httprule

import (
	"errors"
	"fmt"
	"strings"
)

// segKind is what one segment of a template matches.
type segKind uint8

const (
	segLiteral    segKind = iota // exactly its text (after percent-decoding the path segment)
	segStar                      // "*": one non-empty segment
	segDoubleStar                // "**": the rest of the path, zero or more segments
)

type segment struct {
	kind    segKind
	literal string
}

// variable is a {field.path=...} capture over the segments [start, end).
type variable struct {
	fieldPath string
	start     int
	end       int
}

// Template is a parsed google.api.http path template:
//
//	Template = "/" Segments [ Verb ] ;
//	Segments = Segment { "/" Segment } ;
//	Segment  = "*" | "**" | LITERAL | Variable ;
//	Variable = "{" FieldPath [ "=" Segments ] "}" ;
//	FieldPath = IDENT { "." IDENT } ;
//	Verb     = ":" LITERAL ;
//
// "{field}" is short for "{field=*}". "**" may only be the last segment.
// Variables do not nest and name a field at most once. The template "/"
// (no segments) matches only the path "/".
type Template struct {
	segs []segment
	vars []variable
	verb string
}

// Parse parses a path template of the HttpRule grammar (see Template).
// The error quotes the template and says what is wrong where.
func Parse(tmpl string) (Template, error) {
	t, err := parse(tmpl)
	if err != nil {
		return Template{}, fmt.Errorf("path template %q: %w", tmpl, err)
	}
	return t, nil
}

func parse(tmpl string) (Template, error) {
	if !strings.HasPrefix(tmpl, "/") {
		return Template{}, errors.New("must start with '/'")
	}
	body, verb, err := splitVerb(tmpl[1:])
	if err != nil {
		return Template{}, err
	}
	t := Template{verb: verb}
	if body == "" {
		if verb != "" {
			return Template{}, errors.New("a verb needs a segment before it")
		}
		return t, nil
	}
	p := parser{t: &t, s: body}
	if err := p.segments(false); err != nil {
		return Template{}, err
	}
	if p.s != "" {
		return Template{}, fmt.Errorf("unexpected %q", p.s[0])
	}
	return t, t.check()
}

// splitVerb cuts the ":verb" suffix: a ':' after the last '/' and the last '}'.
func splitVerb(s string) (body, verb string, err error) {
	last := max(strings.LastIndexByte(s, '/'), strings.LastIndexByte(s, '}'))
	i := strings.IndexByte(s[last+1:], ':')
	if i < 0 {
		return s, "", nil
	}
	i += last + 1
	verb = s[i+1:]
	if verb == "" {
		return "", "", errors.New("empty verb after ':'")
	}
	if !validLiteral(verb) {
		return "", "", fmt.Errorf("verb %q: invalid character", verb)
	}
	return s[:i], verb, nil
}

// check enforces the rules the grammar alone does not: "**" last, field
// paths unique.
func (t *Template) check() error {
	for i, s := range t.segs {
		if s.kind == segDoubleStar && i != len(t.segs)-1 {
			return errors.New(`"**" must be the last segment`)
		}
	}
	seen := make(map[string]bool, len(t.vars))
	for _, v := range t.vars {
		if seen[v.fieldPath] {
			return fmt.Errorf("variable %q appears twice", v.fieldPath)
		}
		seen[v.fieldPath] = true
	}
	return nil
}

type parser struct {
	t *Template
	s string // what is left to parse
}

// segments parses Segments up to the end of input or, inVar, up to a '}'.
func (p *parser) segments(inVar bool) error {
	for {
		if err := p.segment(inVar); err != nil {
			return err
		}
		if p.s == "" || p.s[0] == '}' {
			return nil
		}
		if p.s[0] != '/' {
			return fmt.Errorf("unexpected %q", p.s[0])
		}
		p.s = p.s[1:]
	}
}

func (p *parser) segment(inVar bool) error {
	end := strings.IndexAny(p.s, "/}")
	if end < 0 {
		end = len(p.s)
	}
	if strings.HasPrefix(p.s, "{") {
		if inVar {
			return errors.New("variables cannot nest")
		}
		return p.variable()
	}
	text := p.s[:end]
	p.s = p.s[end:]
	switch {
	case text == "*":
		p.t.segs = append(p.t.segs, segment{kind: segStar})
	case text == "**":
		p.t.segs = append(p.t.segs, segment{kind: segDoubleStar})
	case text == "":
		return errors.New("empty segment")
	case !validLiteral(text):
		return fmt.Errorf("segment %q: invalid character", text)
	default:
		p.t.segs = append(p.t.segs, segment{kind: segLiteral, literal: text})
	}
	return nil
}

// variable parses "{" FieldPath [ "=" Segments ] "}".
func (p *parser) variable() error {
	p.s = p.s[1:]
	end := strings.IndexAny(p.s, "=}")
	if end < 0 {
		return errors.New("unclosed '{'")
	}
	path := p.s[:end]
	if err := checkFieldPath(path); err != nil {
		return err
	}
	v := variable{fieldPath: path, start: len(p.t.segs)}
	if p.s[end] == '=' {
		p.s = p.s[end+1:]
		if err := p.segments(true); err != nil {
			return err
		}
		if p.s == "" {
			return errors.New("unclosed '{'")
		}
	} else {
		p.s = p.s[end:]
		p.t.segs = append(p.t.segs, segment{kind: segStar})
	}
	p.s = p.s[1:] // the '}'
	v.end = len(p.t.segs)
	p.t.vars = append(p.t.vars, v)
	if p.s != "" && p.s[0] != '/' {
		return fmt.Errorf("unexpected %q after variable %q", p.s[0], path)
	}
	return nil
}

func checkFieldPath(path string) error {
	if path == "" {
		return errors.New("empty variable name")
	}
	for _, id := range strings.Split(path, ".") {
		if !validIdent(id) {
			return fmt.Errorf("variable %q: %q is not a field name", path, id)
		}
	}
	return nil
}

func validIdent(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validLiteral accepts the URL path characters (RFC 3986 pchar) other than
// '/', and percent-escapes.
func validLiteral(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case strings.IndexByte("-._~!$&'()+,;=:@", c) >= 0:
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func ishex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// String returns the template in its canonical form: "{x}" spelled
// "{x=*}", so two templates matching the same paths print alike only
// when their variable names match too (see shape for the comparison
// without names).
func (t Template) String() string { return t.format(true) }

// shape is the template with variable names dropped: two rules of the
// same verb and shape can never be told apart.
func (t Template) shape() string { return t.format(false) }

func (t Template) format(names bool) string {
	var b strings.Builder
	vi := 0
	for i, s := range t.segs {
		b.WriteByte('/')
		if vi < len(t.vars) && t.vars[vi].start == i {
			b.WriteByte('{')
			if names {
				b.WriteString(t.vars[vi].fieldPath)
			}
			b.WriteByte('=')
		}
		switch s.kind {
		case segStar:
			b.WriteByte('*')
		case segDoubleStar:
			b.WriteString("**")
		default:
			b.WriteString(s.literal)
		}
		if vi < len(t.vars) && t.vars[vi].end == i+1 {
			b.WriteByte('}')
			vi++
		}
	}
	if len(t.segs) == 0 {
		b.WriteByte('/')
	}
	if t.verb != "" {
		b.WriteByte(':')
		b.WriteString(t.verb)
	}
	return b.String()
}
