package httprule_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/outbound-go/outbound/internal/httprule"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		verb, path      string
		method, pattern string // method "" = no match
		body, respBody  string
	}{
		{"GET", "/v1/books/special", "Static", "/v1/books/special", "", ""},
		{"GET", "/v1/books/speci%61l", "Static", "/v1/books/special", "", ""},
		{"GET", "/v1/books/abc", "GetBook", "/v1/books/{name}", "", ""},
		{"GET", "/v1/b%6Foks/abc", "GetBook", "/v1/books/{name}", "", ""},
		{"GET", "/v1/shelves/s1/books/abc", "GetBook", "/v1/{parent=shelves/*}/books/{name}", "", ""},
		{"GET", "/v1/shelves/s1/books", "ListBooks", "/v1/{parent=shelves/*}/books", "", ""},
		{"GET", "/v1/anything/else", "GetAny", "/v1/{name=**}", "", ""},
		{"GET", "/v1/books/", "GetAny", "/v1/{name=**}", "", ""}, // "*" needs a non-empty segment; "**" takes it
		{"GET", "/v1", "GetAny", "/v1/{name=**}", "", ""},        // "**" matches zero segments
		{"GET", "/v1/files/a/b", "Files", "/v1/files/{parent=**}", "", ""},
		{"GET", "/v1/files", "Files", "/v1/files/{parent=**}", "", ""},
		{"GET", "/v1/deep/x", "Deep", "/v1/deep/{inner.deep.s}", "", ""},
		{"POST", "/v1/books/abc:cancel", "CancelBook", "/v1/books/{name}:cancel", "*", ""},
		{"PATCH", "/v1/books/abc", "UpdateBook", "/v1/books/{name}", "inner", ""},
		{"PUT", "/v1/deep/abc", "PutDeep", "/v1/deep/{name}", "inner.deep", ""},
		{"POST", "/test.v1.Library/Echo", "Echo", "/test.v1.Library/Echo", "*", ""},
		{"SEARCH", "/v1/search/q", "Search", "/v1/search/*", "", "tags"},
		{"DELETE", "/v1/books/abc", "Remove", "/v1/books/{name}", "", ""},
		{"GET", "/v1/typed/1/true/KIND_BOOK/2024-01-02T03:04:05Z/5", "Typed", "/v1/typed/{id}/{flag}/{kind}/{ts}/{w64}", "", ""},

		{"POST", "/v1/books/abc", "", "", "", ""},        // no POST rule without the verb
		{"POST", "/v1/books/abc:undo", "", "", "", ""},   // another verb
		{"POST", "/v1/books/a/b:cancel", "", "", "", ""}, // "*" is one segment
		{"get", "/v1/books/abc", "", "", "", ""},         // verbs compare exactly
		{"GET", "/v2/books/abc", "", "", "", ""},
		{"GET", "v1/books/abc", "", "", "", ""},
		{"GET", "", "", "", "", ""},
		{"DELETE", "/v1/books/abc/x", "", "", "", ""},
		{"DELETE", "/v1/books/", "", "", "", ""},
		{"SEARCH", "/v1/search/q/r", "", "", "", ""},
		{"POST", "/test.v1.Library/Echo/", "", "", "", ""},
		{"POST", "/test.v1.Library/NoRule", "", "", "", ""},
	}
	for name, fdp := range bothForms(t, library...) {
		r, err := httprule.NewRouter(servicesOf(t, fdp))
		require.NoError(t, err)
		t.Run(name, func(t *testing.T) {
			for _, tc := range cases {
				m, ok := r.Match(tc.verb, tc.path)
				if tc.method == "" {
					assert.False(t, ok, "%s %s matched %v %q", tc.verb, tc.path, m.Method, m.Pattern)
					continue
				}
				if !assert.True(t, ok, "%s %s: no match", tc.verb, tc.path) {
					continue
				}
				assert.Equal(t, protoreflect.FullName("test.v1.Library."+tc.method), m.Method.FullName(), "%s %s", tc.verb, tc.path)
				assert.Equal(t, tc.pattern, m.Pattern, "%s %s", tc.verb, tc.path)
				assert.Equal(t, tc.verb, m.Verb)
				assert.Equal(t, tc.body, m.Body, "%s %s", tc.verb, tc.path)
				assert.Equal(t, tc.respBody, m.ResponseBody, "%s %s", tc.verb, tc.path)
			}
		})
	}
}

// bothForms returns the file with its rules resolved as extensions and
// with them as unknown fields, checking that each form is what it says.
func bothForms(t *testing.T, methods ...method) map[string]*descriptorpb.FileDescriptorProto {
	resolved := fileProto(t, methods...)
	unknown := withUnknownOptions(t, resolved)
	opts := resolved.GetService()[0].GetMethod()[0].GetOptions()
	require.True(t, proto.HasExtension(opts, annotations.E_Http))
	opts = unknown.GetService()[0].GetMethod()[0].GetOptions()
	require.False(t, proto.HasExtension(opts, annotations.E_Http))
	require.NotEmpty(t, opts.ProtoReflect().GetUnknown())
	return map[string]*descriptorpb.FileDescriptorProto{"resolved": resolved, "unknown": unknown}
}

func TestHTTPRuleBothForms(t *testing.T) {
	for name, fdp := range bothForms(t, method{"M", `get: "/v1/{name}" body: "inner" additional_bindings { post: "/v1/x" }`}, method{"N", ""}) {
		t.Run(name, func(t *testing.T) {
			methods := servicesOf(t, fdp)[0].Methods()
			rule, err := httprule.HTTPRule(methods.Get(0))
			require.NoError(t, err)
			require.NotNil(t, rule)
			assert.Equal(t, "/v1/{name}", rule.GetGet())
			assert.Equal(t, "inner", rule.GetBody())
			require.Len(t, rule.GetAdditionalBindings(), 1)
			assert.Equal(t, "/v1/x", rule.GetAdditionalBindings()[0].GetPost())
			rule, err = httprule.HTTPRule(methods.Get(1))
			require.NoError(t, err)
			assert.Nil(t, rule)
		})
	}
}

// TestPrecedence checks each step of the documented order on its own, with
// the rules declared both ways round where order must not matter.
func TestPrecedence(t *testing.T) {
	for _, tc := range []struct {
		name, path    string
		winner, loser string // rule texts of GET
		orderMatters  bool
	}{
		{"more literals beat an earlier literal", "/a/b/c/d", `"/a/{name}/c/d"`, `"/a/b/{name}/{parent}"`, false},
		{"fewer double stars", "/a/b", `"/a/{name}"`, `"/a/{name=**}"`, false},
		{"double star vs literals", "/a/b/c", `"/a/b/{name=**}"`, `"/a/{name=**}"`, false},
		{"verb first", "/a/b:go", `"/a/{name}:go"`, `"/a/{name}"`, false},
		{"literal before star, leftmost", "/a/b/c", `"/a/b/{name}"`, `"/a/{name}/c"`, false},
		{"star before double star, leftmost", "/a/b/c/d", `"/a/*/{name=**}"`, `"/a/{name=**}"`, false},
		{"declaration order last", "/a/b/c", `"/a/{name}/*"`, `"/a/*/{name}"`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRouter(t, method{"Win", "get: " + tc.winner}, method{"Lose", "get: " + tc.loser})
			m, ok := r.Match("GET", tc.path)
			require.True(t, ok)
			assert.Equal(t, protoreflect.Name("Win"), m.Method.Name())
			r = newRouter(t, method{"Lose", "get: " + tc.loser}, method{"Win", "get: " + tc.winner})
			m, ok = r.Match("GET", tc.path)
			require.True(t, ok)
			if tc.orderMatters {
				assert.Equal(t, protoreflect.Name("Lose"), m.Method.Name())
			} else {
				assert.Equal(t, protoreflect.Name("Win"), m.Method.Name())
			}
		})
	}
}

// TestRouterErrors: every refused rule, with the method and pattern named.
func TestRouterErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		methods []method
		msg     string
	}{
		{"bad template", []method{{"M", `get: "/v1/{name"`}}, `test.v1.Library.M: google.api.http GET "/v1/{name": unclosed '{'`},
		{"no field", []method{{"M", `get: "/v1/{nope}"`}}, `test.v1.Library.M: google.api.http GET "/v1/{nope}": variable "nope": no field "nope" in test.v1.Req`},
		{"repeated var", []method{{"M", `get: "/v1/{tags}"`}}, `variable "tags": tags is repeated`},
		{"message var", []method{{"M", `get: "/v1/{inner}"`}}, `variable "inner": inner is a message (test.v1.Inner): name a field inside it`},
		{"map var", []method{{"M", `get: "/v1/{labels}"`}}, `variable "labels": labels is a map`},
		{"through repeated", []method{{"M", `get: "/v1/{items.s}"`}}, `variable "items.s": items is repeated or a map`},
		{"through scalar", []method{{"M", `get: "/v1/{name.x}"`}}, `variable "name.x": name is not a message: it has no field "x"`},
		{"JSON name in a template", []method{{"M", `get: "/v1/{inner.itemCount}"`}}, `no field "itemCount" in test.v1.Inner`},
		{"body no field", []method{{"M", `post: "/v1/x" body: "nope"`}}, `test.v1.Library.M: google.api.http POST "/v1/x": body "nope": no field "nope"`},
		{"body scalar", []method{{"M", `post: "/v1/x" body: "name"`}}, `body "name": name: the body must name a singular message field`},
		{"body repeated", []method{{"M", `post: "/v1/x" body: "items"`}}, `body "items": items: the body must name a singular message field`},
		{"body map", []method{{"M", `post: "/v1/x" body: "labels"`}}, `body "labels": labels: the body must name a singular message field`},
		{"response_body", []method{{"M", `get: "/v1/x" response_body: "nope"`}}, `response_body "nope": no such field in test.v1.Resp`},
		{"no pattern", []method{{"M", `body: "*"`}}, `test.v1.Library.M: google.api.http: no pattern`},
		{"empty custom kind", []method{{"M", `custom { kind: "" path: "/x" }`}}, `custom kind "": not an HTTP method token`},
		{"bad custom kind", []method{{"M", `custom { kind: "GE T" path: "/x" }`}}, `custom kind "GE T": not an HTTP method token`},
		{"nested additional bindings", []method{{"M", `get: "/a" additional_bindings { get: "/b" additional_bindings { get: "/c" } }`}},
			`test.v1.Library.M: google.api.http: additional_bindings[0]: GET "/b": additional_bindings cannot nest`},
		{"bad additional binding", []method{{"M", `get: "/a" additional_bindings { get: "/b/{nope}" }`}}, `test.v1.Library.M: google.api.http GET "/b/{nope}": variable "nope"`},
		{"same shape", []method{{"M", `get: "/v1/x/{name}"`}, {"N", `get: "/v1/x/{id}"`}},
			`test.v1.Library.N: GET "/v1/x/{id}": same verb and template as a rule of test.v1.Library.M`},
		{"same shape in own binding", []method{{"M", `get: "/v1/x/{name}" additional_bindings { get: "/v1/x/{parent}" }`}},
			`test.v1.Library.M: GET "/v1/x/{parent}": same verb and template as a rule of test.v1.Library.M`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := httprule.NewRouter(servicesOf(t, fileProto(t, tc.methods...)))
			require.Error(t, err)
			assert.Nil(t, r)
			assert.Contains(t, err.Error(), tc.msg)
		})
	}
}

func TestRouterErrorsListsEveryBadRule(t *testing.T) {
	_, err := httprule.NewRouter(servicesOf(t, fileProto(t,
		method{"A", `get: "/v1/{nope}"`}, method{"B", `get: "/ok"`}, method{"C", `get: "x"`})))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.v1.Library.A:")
	assert.Contains(t, err.Error(), "test.v1.Library.C:")
	assert.NotContains(t, err.Error(), "test.v1.Library.B")
}

func TestSameTemplateOtherVerbIsFine(t *testing.T) {
	r := newRouter(t, method{"Get", `get: "/v1/{name}"`}, method{"Del", `delete: "/v1/{name}"`})
	m, ok := r.Match("DELETE", "/v1/x")
	require.True(t, ok)
	assert.Equal(t, protoreflect.Name("Del"), m.Method.Name())
}

// An empty path (an absolute-form request without one) is "/": a catch-all
// or root rule takes it, with an empty variable.
func TestEmptyPathIsRoot(t *testing.T) {
	r := newRouter(t, method{"All", `get: "/{name=**}"`})
	for _, path := range []string{"", "/"} {
		m, ok := r.Match("GET", path)
		require.True(t, ok, "%q", path)
		assert.Equal(t, protoreflect.Name("All"), m.Method.Name())
	}
	r = newRouter(t, method{"Root", `get: "/"`})
	_, ok := r.Match("GET", "")
	assert.True(t, ok, "the root rule takes an empty path")
}

func TestEmptyRouter(t *testing.T) {
	r, err := httprule.NewRouter(nil)
	require.NoError(t, err)
	_, ok := r.Match("GET", "/")
	assert.False(t, ok)
	r = newRouter(t, method{"Root", `get: "/"`})
	_, ok = r.Match("GET", "/")
	assert.True(t, ok)
	_, ok = r.Match("GET", "/x")
	assert.False(t, ok)
}
