package httprule_test

import (
	"errors"
	"net/url"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/outbound-go/outbound/internal/httprule"
)

// bind matches verb and path on the library router and binds the raw query
// into a fresh request message.
func bind(t *testing.T, r *httprule.Router, verb, path, rawQuery string) (protoreflect.Message, error) {
	t.Helper()
	m, ok := r.Match(verb, path)
	require.True(t, ok, "%s %s: no match", verb, path)
	q, err := url.ParseQuery(rawQuery)
	require.NoError(t, err)
	msg := dynamicpb.NewMessage(m.Method.Input())
	return msg, m.Bind(msg, q)
}

// requireJSON asserts msg equals the request message the JSON describes.
func requireJSON(t *testing.T, want string, msg protoreflect.Message) {
	t.Helper()
	exp := dynamicpb.NewMessage(msg.Descriptor())
	require.NoError(t, protojson.Unmarshal([]byte(want), exp), "the test's JSON")
	if !proto.Equal(exp, msg.Interface()) {
		t.Errorf("bound %s\nwant  %s", protojson.Format(msg.Interface()), protojson.Format(exp))
	}
}

func TestBindPath(t *testing.T) {
	r := newRouter(t, library...)
	for _, tc := range []struct{ verb, path, want string }{
		{"GET", "/v1/books/abc", `{"name": "abc"}`},
		{"GET", "/v1/books/a%2Fb", `{"name": "a/b"}`},         // single segment: %2F decoded
		{"GET", "/v1/books/a%20b%3A%25", `{"name": "a b:%"}`}, // everything decoded, once
		{"GET", "/v1/books/a+b", `{"name": "a+b"}`},           // '+' is not a space in a path
		{"GET", "/v1/shelves/s%201/books/b1", `{"parent": "shelves/s 1", "name": "b1"}`},
		{"GET", "/v1/files/a/b%2Fc%20d", `{"parent": "a/b%2Fc d"}`}, // multi-segment: %2F kept
		{"GET", "/v1/files/a%2fb", `{"parent": "a%2fb"}`},
		{"GET", "/v1/files", `{}`},
		{"GET", "/v1/x/y/z", `{"name": "x/y/z"}`},
		{"GET", "/v1/deep/x", `{"inner": {"deep": {"s": "x"}}}`},
		{"POST", "/v1/books/a%3Ab:cancel", `{"name": "a:b"}`},
		{"GET", "/v1/typed/-9223372036854775808/false/KIND_MAGAZINE/2024-01-02T03:04:05.5Z/-7",
			`{"id": "-9223372036854775808", "kind": "KIND_MAGAZINE", "ts": "2024-01-02T03:04:05.500Z", "w64": "-7"}`},
		{"GET", "/v1/typed/1/1/1/2024-01-02T03:04:05%2B01:00/0",
			`{"id": "1", "flag": true, "kind": "KIND_BOOK", "ts": "2024-01-02T02:04:05Z", "w64": "0"}`},
	} {
		t.Run(tc.verb+" "+tc.path, func(t *testing.T) {
			msg, err := bind(t, r, tc.verb, tc.path, "")
			require.NoError(t, err)
			requireJSON(t, tc.want, msg)
		})
	}
}

func TestBindQuery(t *testing.T) {
	r := newRouter(t, library...)
	for _, tc := range []struct{ query, want string }{
		{"name=x", `{"name": "x"}`},
		{"name=a+b%26c", `{"name": "a b&c"}`},
		{"id=-9223372036854775808&u64=18446744073709551615", `{"id": "-9223372036854775808", "u64": "18446744073709551615"}`},
		{"i32=2147483647&u32=4294967295&s32=-5&s64=-6&f32=7&f64=8&sf32=-9&sf64=-10",
			`{"i32": 2147483647, "u32": 4294967295, "s32": -5, "s64": "-6", "f32": 7, "f64": "8", "sf32": -9, "sf64": "-10"}`},
		{"fl=1.5&db=-1e300", `{"fl": 1.5, "db": -1e300}`},
		{"db=Infinity", `{"db": "Infinity"}`},
		{"flag=true", `{"flag": true}`},
		{"flag=false", `{}`},
		{"data=%2B%2F8%3D", `{"data": "+/8="}`}, // standard base64
		{"data=-_8%3D", `{"data": "+/8="}`},     // URL-safe
		{"data=-_8", `{"data": "+/8="}`},        // unpadded
		{"data=", `{}`},
		{"kind=KIND_BOOK", `{"kind": "KIND_BOOK"}`},
		{"kind=2", `{"kind": "KIND_MAGAZINE"}`},
		{"kind=7", `{"kind": 7}`}, // proto3 enums are open
		{"inner.s=x&inner.item_count=3", `{"inner": {"s": "x", "itemCount": 3}}`},
		{"inner.itemCount=4", `{"inner": {"itemCount": 4}}`}, // JSON name
		{"inner.deep.s=y", `{"inner": {"deep": {"s": "y"}}}`},
		{"tags=a&tags=b&tags=a", `{"tags": ["a", "b", "a"]}`},
		{"nums=1&nums=-2", `{"nums": [1, -2]}`},
		{"kinds=KIND_BOOK&kinds=2", `{"kinds": ["KIND_BOOK", "KIND_MAGAZINE"]}`},
		{"w64=5&wb=true&ws=hi&wd=2.5&wbytes=aGk", `{"w64": "5", "wb": true, "ws": "hi", "wd": 2.5, "wbytes": "aGk="}`},
		{"wb=false&ws=", `{"wb": false, "ws": ""}`}, // a wrapper is set even to its zero
		{"ts=2024-01-02T03:04:05Z&dur=1.5s", `{"ts": "2024-01-02T03:04:05Z", "dur": "1.500s"}`},
		{"mask=name,inner.itemCount", `{"mask": "name,inner.itemCount"}`},
		{"a=x", `{"a": "x"}`},
		{"b=", `{"b": ""}`},
		{"opt=0", `{"opt": 0}`}, // proto3 optional: present even at zero
	} {
		t.Run(tc.query, func(t *testing.T) {
			msg, err := bind(t, r, "GET", "/v1/shelves/s1/books", tc.query)
			require.NoError(t, err)
			parent := msg.Descriptor().Fields().ByName("parent")
			assert.Equal(t, "shelves/s1", msg.Get(parent).String())
			msg.Clear(parent)
			requireJSON(t, tc.want, msg)
		})
	}
}

func TestBindErrors(t *testing.T) {
	r := newRouter(t, library...)
	const list = "/v1/shelves/s1/books"
	for _, tc := range []struct {
		verb, path, query string
		isQuery           bool // the error is about a query parameter
		field, value, msg string
	}{
		{"GET", list, "nope=1", true, "nope", "", `query parameter "nope": no field "nope" in test.v1.Req`},
		{"GET", list, "inner.nope=1", true, "inner.nope", "", `no field "nope" in test.v1.Inner`},
		{"GET", list, "name.x=1", true, "name.x", "", `name is not a message: it has no field "x"`},
		{"GET", list, "labels=x", true, "labels", "", `labels is a map: not settable from a URL`},
		{"GET", list, "labels.key=x", true, "labels.key", "", `labels is repeated or a map`},
		{"GET", list, "items=x", true, "items", "", `items is a message (test.v1.Inner): name a field inside it`},
		{"GET", list, "items.s=x", true, "items.s", "", `items is repeated or a map`},
		{"GET", list, "wts=2024-01-02T03:04:05Z", true, "wts", "", `wts is a repeated message: not settable from a URL`},
		{"GET", list, "inner=x", true, "inner", "", `inner is a message (test.v1.Inner): name a field inside it`},
		{"GET", list, "name=a&name=b", true, "name", "", `2 values for a field that is not repeated`},
		{"GET", list, "parent=x", true, "parent", "", `field parent is bound by the path`},
		{"GET", "/v1/deep/x", "inner.deep.s=y", true, "inner.deep.s", "", `field inner.deep.s is bound by the path`},
		{"GET", "/v1/deep/x", "inner.deep=y", true, "inner.deep", "", `field inner.deep.s is bound by the path`},
		{"PATCH", "/v1/books/x", "inner.s=y", true, "inner.s", "", `field inner is in the body`},
		{"POST", "/v1/books/x:cancel", "id=1", true, "id", "", `not allowed: the body ("*") carries every field the path does not`},
		{"GET", list, "id=abc", true, "id", "abc", `query parameter "id": value "abc": not a decimal int64`},
		{"GET", list, "id=0x10", true, "id", "0x10", `not a decimal int64`},
		{"GET", list, "id=1_000", true, "id", "1_000", `not a decimal int64`},
		{"GET", list, "id=9223372036854775808", true, "id", "9223372036854775808", `out of range for int64`},
		{"GET", list, "i32=2147483648", true, "i32", "2147483648", `out of range for int32`},
		{"GET", list, "u32=-1", true, "u32", "-1", `not a decimal uint32`},
		{"GET", list, "fl=1e39", true, "fl", "1e39", `out of range for float`},
		{"GET", list, "db=x", true, "db", "x", `not a decimal double`},
		{"GET", list, "flag=maybe", true, "flag", "maybe", `not a bool`},
		{"GET", list, "data=!!", true, "data", "!!", `not base64`},
		{"GET", list, "kind=KIND_NOPE", true, "kind", "KIND_NOPE", `not a value of enum test.v1.Kind`},
		{"GET", list, "kind=1.5", true, "kind", "1.5", `not a value of enum test.v1.Kind`},
		{"GET", list, "kinds=1&kinds=x", true, "kinds", "x", `not a value of enum test.v1.Kind`},
		{"GET", list, "nums=1&nums=", true, "nums", "", `not a decimal int32`},
		{"GET", list, "w64=x", true, "w64", "x", `not a decimal int64`},
		{"GET", list, "wb=x", true, "wb", "x", `not a bool`},
		{"GET", list, "ts=yesterday", true, "ts", "yesterday", `not a Timestamp in its JSON form`},
		{"GET", list, "dur=5", true, "dur", "5", `not a Duration in its JSON form`},
		{"GET", list, "mask=a_b", true, "mask", "a_b", `not a FieldMask in its JSON form`},
		{"GET", list, "name=%FF", true, "name", "\xff", `not valid UTF-8`},
		{"GET", list, "ws=%FF", true, "ws", "\xff", `not valid UTF-8`},
		{"GET", list, "a=x&b=y", true, "b", "y", `oneof choice already has a set`},
		{"GET", "/v1/books/%FF", "", false, "name", "\xff", `path variable "name": value "\xff": not valid UTF-8`},
		{"GET", "/v1/books/%zz", "", false, "name", "%zz", `path variable "name": value "%zz": invalid percent-encoding`},
		{"GET", "/v1/files/a/%zz", "", false, "parent", "a/%zz", `invalid percent-encoding`},
		{"GET", "/v1/typed/x/true/1/2024-01-02T03:04:05Z/1", "", false, "id", "x", `path variable "id": value "x": not a decimal int64`},
		{"GET", "/v1/typed/1/yes/1/2024-01-02T03:04:05Z/1", "", false, "flag", "yes", `not a bool`},
		{"GET", "/v1/typed/1/true/KIND_X/2024-01-02T03:04:05Z/1", "", false, "kind", "KIND_X", `not a value of enum`},
		{"GET", "/v1/typed/1/true/1/now/1", "", false, "ts", "now", `not a Timestamp in its JSON form`},
		{"GET", "/v1/typed/1/true/1/2024-01-02T03:04:05Z/1.5", "", false, "w64", "1.5", `not a decimal int64`},
	} {
		t.Run(tc.path+"?"+tc.query, func(t *testing.T) {
			_, err := bind(t, r, tc.verb, tc.path, tc.query)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.msg)
			var be *httprule.BindError
			require.True(t, errors.As(err, &be), "%T", err)
			assert.Equal(t, tc.isQuery, be.Query)
			assert.Equal(t, tc.field, be.Field)
			assert.Equal(t, tc.value, be.Value)
		})
	}
}

// TestBindQueryErrorsInKeyOrder: with several bad parameters the error
// names the first by key, whatever the map order.
func TestBindQueryErrorsInKeyOrder(t *testing.T) {
	r := newRouter(t, library...)
	for range 20 {
		_, err := bind(t, r, "GET", "/v1/shelves/s1/books", "zz=1&id=x&aa=1&nope=2")
		require.Error(t, err)
		assert.Contains(t, err.Error(), `query parameter "aa"`)
	}
}

func TestBodyTargetThenBind(t *testing.T) {
	r := newRouter(t, library...)
	for _, tc := range []struct {
		verb, path, query, body, want string
	}{
		// body "*": the JSON fills the message; the path variable wins over it.
		{"POST", "/v1/books/x:cancel", "", `{"name": "fromBody", "id": "3"}`, `{"name": "x", "id": "3"}`},
		{"POST", "/test.v1.Library/Echo", "", `{"name": "e"}`, `{"name": "e"}`},
		// body "inner": the JSON fills inner; query fills the rest.
		{"PATCH", "/v1/books/x", "id=4", `{"s": "in", "itemCount": 2}`, `{"name": "x", "id": "4", "inner": {"s": "in", "itemCount": 2}}`},
		// body "inner.deep": the intermediate message is created.
		{"PUT", "/v1/deep/x", "", `{"s": "d"}`, `{"name": "x", "inner": {"deep": {"s": "d"}}}`},
		{"PUT", "/v1/deep/x", "inner.s=q", `{}`, `{"name": "x", "inner": {"s": "q", "deep": {}}}`},
	} {
		t.Run(tc.verb+" "+tc.path, func(t *testing.T) {
			m, ok := r.Match(tc.verb, tc.path)
			require.True(t, ok)
			msg := dynamicpb.NewMessage(m.Method.Input())
			target, err := m.BodyTarget(msg)
			require.NoError(t, err)
			require.NotNil(t, target)
			require.NoError(t, protojson.Unmarshal([]byte(tc.body), target.Interface()))
			q, err := url.ParseQuery(tc.query)
			require.NoError(t, err)
			require.NoError(t, m.Bind(msg, q))
			requireJSON(t, tc.want, msg)
		})
	}
}

func TestBodyTargetNoBody(t *testing.T) {
	r := newRouter(t, library...)
	m, ok := r.Match("GET", "/v1/books/x")
	require.True(t, ok)
	target, err := m.BodyTarget(dynamicpb.NewMessage(m.Method.Input()))
	require.NoError(t, err)
	assert.Nil(t, target)
}

func TestBodyTargetOneofTaken(t *testing.T) {
	fdp := fileProto(t, method{"M", `post: "/v1/x" body: "inner"`})
	// Put kind and inner (declared one after the other) into a oneof.
	req := fdp.GetMessageType()[1]
	// (Real oneofs come before the synthetic one of the proto3 optional opt.)
	req.OneofDecl = slices.Insert(req.OneofDecl, 1, &descriptorpb.OneofDescriptorProto{Name: proto.String("pick")})
	req.GetField()[15].OneofIndex = proto.Int32(1)
	req.GetField()[16].OneofIndex = proto.Int32(1)
	opt := req.GetField()[34]
	require.Equal(t, "opt", opt.GetName())
	opt.OneofIndex = proto.Int32(2)
	r, err := httprule.NewRouter(servicesOf(t, fdp))
	require.NoError(t, err)
	m, ok := r.Match("POST", "/v1/x")
	require.True(t, ok)
	msg := dynamicpb.NewMessage(m.Method.Input())
	msg.Set(msg.Descriptor().Fields().ByName("kind"), protoreflect.ValueOfEnum(1))
	_, err = m.BodyTarget(msg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `body "inner": oneof pick already has kind set`)
}

func TestMisuse(t *testing.T) {
	r := newRouter(t, library...)
	m, ok := r.Match("GET", "/v1/books/x")
	require.True(t, ok)
	wrong := dynamicpb.NewMessage(m.Method.Output())
	err := m.Bind(wrong, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "test.v1.Library.GetBook takes a test.v1.Req message")
	_, err = m.BodyTarget(wrong)
	require.Error(t, err)
	err = httprule.Match{}.Bind(dynamicpb.NewMessage(m.Method.Input()), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Router.Match did not return")
}

// TestBindClosedEnum: a proto2 (closed) enum takes only its declared
// numbers; an open one any int32 (see TestBindQuery).
func TestBindClosedEnum(t *testing.T) {
	fdp := &descriptorpb.FileDescriptorProto{}
	require.NoError(t, prototext.Unmarshal([]byte(`
		name: "closed.proto" package: "closed" syntax: "proto2"
		enum_type { name: "Color" value { name: "RED" number: 1 } value { name: "BLUE" number: 2 } }
		message_type { name: "Req"
			field { name: "color" number: 1 type: TYPE_ENUM type_name: ".closed.Color" label: LABEL_OPTIONAL }
			field { name: "n" number: 2 type: TYPE_INT32 label: LABEL_OPTIONAL } }
		service { name: "S" method { name: "M" input_type: ".closed.Req" output_type: ".closed.Req"
			options { [google.api.http] { get: "/c/{n}" } } } }`), fdp))
	r, err := httprule.NewRouter(servicesOf(t, fdp))
	require.NoError(t, err)
	m, ok := r.Match("GET", "/c/0")
	require.True(t, ok)
	msg := dynamicpb.NewMessage(m.Method.Input())
	require.NoError(t, m.Bind(msg, url.Values{"color": {"2"}}))
	requireJSON(t, `{"color": "BLUE", "n": 0}`, msg) // proto2: n is present at zero
	err = m.Bind(dynamicpb.NewMessage(m.Method.Input()), url.Values{"color": {"3"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `query parameter "color": value "3": not a value of enum closed.Color`)
}
