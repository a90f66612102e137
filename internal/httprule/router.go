package httprule

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// Router routes HTTP requests to gRPC methods by their google.api.http
// rules. It is immutable once built and safe for concurrent use.
type Router struct {
	byVerb map[string][]*rule // each in precedence order
}

// rule is one validated binding of one method.
type rule struct {
	method       protoreflect.MethodDescriptor
	verb         string
	tmpl         Template
	pattern      string
	body         string
	bodyPath     []protoreflect.FieldDescriptor
	responseBody string
	vars         []boundVar
	order        int // declaration order, the last tie-breaker
}

// boundVar is a template variable resolved against the input message.
type boundVar struct {
	name   string
	fields []protoreflect.FieldDescriptor
	multi  bool // spans several segments: "%2F" stays escaped
}

// NewRouter builds a Router from the google.api.http rules of the methods
// of services (methods without one are left out: the handler reaches them
// by their gRPC path /pkg.Service/Method). Every rule and additional
// binding is checked: its template parses, its variables, body and
// response_body name fields that exist and fit, and no two rules of one
// verb have the same template. The error names the method and the bad
// pattern, one line per problem.
func NewRouter(services []protoreflect.ServiceDescriptor) (*Router, error) {
	r := &Router{byVerb: map[string][]*rule{}}
	var errs []error
	seen := map[string]protoreflect.FullName{} // verb + shape -> method
	order := 0
	for _, sd := range services {
		methods := sd.Methods()
		for i := 0; i < methods.Len(); i++ {
			md := methods.Get(i)
			rules, err := methodRules(md)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			for _, ru := range rules {
				key := ru.verb + " " + ru.tmpl.shape()
				if prev, dup := seen[key]; dup {
					errs = append(errs, fmt.Errorf("%s: %s %q: same verb and template as a rule of %s", md.FullName(), ru.verb, ru.pattern, prev))
					continue
				}
				seen[key] = md.FullName()
				ru.order = order
				order++
				r.byVerb[ru.verb] = append(r.byVerb[ru.verb], ru)
			}
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	for _, rules := range r.byVerb {
		slices.SortStableFunc(rules, comparePrecedence)
	}
	return r, nil
}

// methodRules validates the bindings of one method.
func methodRules(md protoreflect.MethodDescriptor) ([]*rule, error) {
	hr, err := HTTPRule(md)
	if err != nil || hr == nil {
		return nil, err
	}
	bs, err := bindings(hr, false)
	if err != nil {
		return nil, fmt.Errorf("%s: google.api.http: %w", md.FullName(), err)
	}
	out := make([]*rule, 0, len(bs))
	for _, b := range bs {
		ru, err := newRule(md, b)
		if err != nil {
			return nil, fmt.Errorf("%s: google.api.http %s %q: %w", md.FullName(), b.verb, b.path, err)
		}
		out = append(out, ru)
	}
	return out, nil
}

func newRule(md protoreflect.MethodDescriptor, b binding) (*rule, error) {
	t, err := parse(b.path)
	if err != nil {
		return nil, err
	}
	ru := &rule{method: md, verb: b.verb, tmpl: t, pattern: b.path, body: b.body, responseBody: b.responseBody}
	in := md.Input()
	for _, v := range t.vars {
		fields, err := pathFields(in, v.fieldPath)
		if err == nil {
			err = checkVarField(fields[len(fields)-1])
		}
		if err != nil {
			return nil, fmt.Errorf("variable %q: %w", v.fieldPath, err)
		}
		multi := v.end-v.start > 1 || t.segs[v.start].kind == segDoubleStar
		ru.vars = append(ru.vars, boundVar{name: v.fieldPath, fields: fields, multi: multi})
	}
	if b.body != "" && b.body != "*" {
		if ru.bodyPath, err = pathFields(in, b.body); err == nil {
			err = checkBodyField(ru.bodyPath[len(ru.bodyPath)-1])
		}
		if err != nil {
			return nil, fmt.Errorf("body %q: %w", b.body, err)
		}
	}
	if b.responseBody != "" && md.Output().Fields().ByName(protoreflect.Name(b.responseBody)) == nil {
		return nil, fmt.Errorf("response_body %q: no such field in %s", b.responseBody, md.Output().FullName())
	}
	return ru, nil
}

// comparePrecedence orders the rules of one verb, most specific first, as
// the package doc's Precedence section says.
func comparePrecedence(a, b *rule) int {
	sa, sb := a.tmpl.stats(), b.tmpl.stats()
	if sa.literals != sb.literals {
		return sb.literals - sa.literals
	}
	if sa.doubleStars != sb.doubleStars {
		return sa.doubleStars - sb.doubleStars
	}
	if (a.tmpl.verb != "") != (b.tmpl.verb != "") {
		if a.tmpl.verb != "" {
			return -1
		}
		return 1
	}
	for i := 0; i < len(a.tmpl.segs) && i < len(b.tmpl.segs); i++ {
		if ka, kb := a.tmpl.segs[i].kind, b.tmpl.segs[i].kind; ka != kb {
			return int(ka) - int(kb)
		}
	}
	if la, lb := len(a.tmpl.segs), len(b.tmpl.segs); la != lb {
		return lb - la
	}
	return a.order - b.order
}

type templateStats struct{ literals, doubleStars int }

func (t *Template) stats() templateStats {
	var s templateStats
	for _, seg := range t.segs {
		switch seg.kind {
		case segLiteral:
			s.literals++
		case segDoubleStar:
			s.doubleStars++
		}
	}
	return s
}

// Match is the method a request routes to, with what its rule says about
// the body and the path variables it captured.
type Match struct {
	// Method is the gRPC method the request calls.
	Method protoreflect.MethodDescriptor
	// Body is where the request body goes: "" no body, "*" the whole
	// request message, else the field path of a message field in it.
	Body string
	// ResponseBody is "" for the whole response message as the answer,
	// else the name of the response field that is the answer.
	ResponseBody string
	// Verb is the HTTP method of the rule ("GET", or a custom kind).
	Verb string
	// Pattern is the path template of the rule as written in the
	// descriptor, for logs and errors.
	Pattern string

	rule *rule
	vals []string // raw (escaped) variable values, in rule.vars order
}

// Match finds the method for an HTTP verb and a path, the most specific
// rule winning (see the package doc's Precedence section). path is the escaped
// path, r.URL.EscapedPath(): it is split on '/' and each variable's value
// is percent-decoded by Bind per the HttpRule rules (so a single-segment
// variable can carry an escaped '/'); a literal segment matches its
// percent-decoded form. Verbs are compared exactly ("GET", not "get"). An
// empty path is "/" (RFC 9110, section 4.2.3): net/http leaves the path of
// an absolute-form request such as "GET http://host HTTP/1.1" empty.
func (r *Router) Match(verb, path string) (Match, bool) {
	if path == "" {
		path = "/"
	}
	slashes := strings.Count(path, "/") // the path's segments, for a cheap first test
	for _, ru := range r.byVerb[verb] {
		if !ru.tmpl.mayMatch(slashes) {
			continue
		}
		if vals, ok := ru.tmpl.match(path, nil); ok {
			return Match{
				Method: ru.method, Body: ru.body, ResponseBody: ru.responseBody,
				Verb: ru.verb, Pattern: ru.pattern, rule: ru, vals: vals,
			}, true
		}
	}
	return Match{}, false
}
