package httprule

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
)

// binding is one (verb, path) of a method's HttpRule, before validation.
type binding struct {
	verb, path, body, responseBody string
}

// HTTPRule returns the google.api.http option of a method, or nil when it
// has none. It works whether the option was resolved when the descriptor
// was built (the annotations package linked into the unmarshalling
// program) or kept only as unknown fields of the MethodOptions (descriptors
// from server reflection built by a resolver that did not know it): the
// options are re-marshalled and read back with the global types, in which
// this package links annotations.
func HTTPRule(m protoreflect.MethodDescriptor) (*annotations.HttpRule, error) {
	opts := m.Options()
	if opts == nil {
		return nil, nil
	}
	if mo, ok := opts.(*descriptorpb.MethodOptions); ok && mo == nil {
		return nil, nil
	}
	b, err := proto.Marshal(opts)
	if err != nil {
		return nil, fmt.Errorf("%s: options: %w", m.FullName(), err)
	}
	mo := &descriptorpb.MethodOptions{}
	if err := (proto.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(b, mo); err != nil {
		return nil, fmt.Errorf("%s: options: %w", m.FullName(), err)
	}
	if !proto.HasExtension(mo, annotations.E_Http) {
		return nil, nil
	}
	rule, _ := proto.GetExtension(mo, annotations.E_Http).(*annotations.HttpRule)
	return rule, nil
}

// bindings flattens a rule and its additional_bindings.
func bindings(rule *annotations.HttpRule, nested bool) ([]binding, error) {
	b := binding{body: rule.GetBody(), responseBody: rule.GetResponseBody()}
	switch p := rule.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		b.verb, b.path = "GET", p.Get
	case *annotations.HttpRule_Put:
		b.verb, b.path = "PUT", p.Put
	case *annotations.HttpRule_Post:
		b.verb, b.path = "POST", p.Post
	case *annotations.HttpRule_Delete:
		b.verb, b.path = "DELETE", p.Delete
	case *annotations.HttpRule_Patch:
		b.verb, b.path = "PATCH", p.Patch
	case *annotations.HttpRule_Custom:
		b.verb, b.path = p.Custom.GetKind(), p.Custom.GetPath()
		if !validToken(b.verb) {
			return nil, fmt.Errorf("custom kind %q: not an HTTP method token", b.verb)
		}
	default:
		return nil, errors.New("no pattern (get, put, post, delete, patch or custom)")
	}
	out := []binding{b}
	if nested && len(rule.GetAdditionalBindings()) > 0 {
		return nil, fmt.Errorf("%s %q: additional_bindings cannot nest", b.verb, b.path)
	}
	for i, ab := range rule.GetAdditionalBindings() {
		more, err := bindings(ab, true)
		if err != nil {
			return nil, fmt.Errorf("additional_bindings[%d]: %w", i, err)
		}
		out = append(out, more...)
	}
	return out, nil
}

// validToken reports whether s is an RFC 9110 token (a method name).
func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x7f && c > ' ' && !isSeparator(c):
		default:
			return false
		}
	}
	return true
}

func isSeparator(c byte) bool { return strings.IndexByte(`()<>@,;:\"/[]?={}`, c) >= 0 }
