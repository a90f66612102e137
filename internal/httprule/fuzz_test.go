package httprule_test

import (
	"errors"
	"net/url"
	"testing"

	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/outbound-go/outbound/internal/httprule"
)

// FuzzParse: any template string parses or fails without a panic, and a
// parsed template's canonical form parses back to itself.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, tmpl string) {
		parsed, err := httprule.Parse(tmpl)
		if err != nil {
			return
		}
		canonical := parsed.String()
		again, err := httprule.Parse(canonical)
		if err != nil {
			t.Fatalf("%q parsed, its canonical form %q does not: %v", tmpl, canonical, err)
		}
		if again.String() != canonical {
			t.Fatalf("%q: canonical %q reparses as %q", tmpl, canonical, again.String())
		}
	})
}

// FuzzMatchBind: random verbs, paths and queries against the library
// router never panic; a matched request binds or fails with a *BindError.
func FuzzMatchBind(f *testing.F) {
	r := newRouter(f, library...)
	f.Fuzz(func(t *testing.T, verb, path, rawQuery string) {
		m, ok := r.Match(verb, path)
		if !ok {
			return
		}
		msg := dynamicpb.NewMessage(m.Method.Input())
		if _, err := m.BodyTarget(msg); err != nil {
			t.Fatalf("BodyTarget on a fresh message: %v", err)
		}
		q, err := url.ParseQuery(rawQuery)
		if err != nil {
			return
		}
		if err := m.Bind(msg, q); err != nil {
			var be *httprule.BindError
			if !errors.As(err, &be) {
				t.Fatalf("%s %s?%s: %T %v, not a *BindError", verb, path, rawQuery, err, err)
			}
		}
	})
}
