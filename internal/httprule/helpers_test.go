package httprule_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	_ "google.golang.org/genproto/googleapis/api/annotations" // resolves [google.api.http] in the text below
	"google.golang.org/protobuf/encoding/prototext"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	_ "google.golang.org/protobuf/types/known/durationpb" // the imports of the test file
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/outbound-go/outbound/internal/httprule"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// msgsText is the head of every test file: the request and response
// messages, in FileDescriptorProto text form.
const msgsText = `
name: "test/v1/lib.proto"
package: "test.v1"
syntax: "proto3"
dependency: "google/protobuf/wrappers.proto"
dependency: "google/protobuf/timestamp.proto"
dependency: "google/protobuf/duration.proto"
dependency: "google/protobuf/field_mask.proto"
enum_type { name: "Kind" value { name: "KIND_UNSPECIFIED" number: 0 } value { name: "KIND_BOOK" number: 1 } value { name: "KIND_MAGAZINE" number: 2 } }
message_type {
  name: "Inner"
  field { name: "s" number: 1 type: TYPE_STRING }
  field { name: "item_count" number: 2 type: TYPE_INT32 }
  field { name: "deep" number: 3 type: TYPE_MESSAGE type_name: ".test.v1.Inner" }
}
message_type {
  name: "Req"
  field { name: "name" number: 1 type: TYPE_STRING }
  field { name: "id" number: 2 type: TYPE_INT64 }
  field { name: "i32" number: 3 type: TYPE_INT32 }
  field { name: "u32" number: 4 type: TYPE_UINT32 }
  field { name: "u64" number: 5 type: TYPE_UINT64 }
  field { name: "s32" number: 6 type: TYPE_SINT32 }
  field { name: "s64" number: 7 type: TYPE_SINT64 }
  field { name: "f32" number: 8 type: TYPE_FIXED32 }
  field { name: "f64" number: 9 type: TYPE_FIXED64 }
  field { name: "sf32" number: 10 type: TYPE_SFIXED32 }
  field { name: "sf64" number: 11 type: TYPE_SFIXED64 }
  field { name: "fl" number: 12 type: TYPE_FLOAT }
  field { name: "db" number: 13 type: TYPE_DOUBLE }
  field { name: "flag" number: 14 type: TYPE_BOOL }
  field { name: "data" number: 15 type: TYPE_BYTES }
  field { name: "kind" number: 16 type: TYPE_ENUM type_name: ".test.v1.Kind" }
  field { name: "inner" number: 17 type: TYPE_MESSAGE type_name: ".test.v1.Inner" }
  field { name: "tags" number: 18 type: TYPE_STRING label: LABEL_REPEATED }
  field { name: "nums" number: 19 type: TYPE_INT32 label: LABEL_REPEATED }
  field { name: "labels" number: 20 type: TYPE_MESSAGE type_name: ".test.v1.Req.LabelsEntry" label: LABEL_REPEATED }
  field { name: "items" number: 21 type: TYPE_MESSAGE type_name: ".test.v1.Inner" label: LABEL_REPEATED }
  field { name: "w64" number: 22 type: TYPE_MESSAGE type_name: ".google.protobuf.Int64Value" }
  field { name: "wb" number: 23 type: TYPE_MESSAGE type_name: ".google.protobuf.BoolValue" }
  field { name: "ws" number: 24 type: TYPE_MESSAGE type_name: ".google.protobuf.StringValue" }
  field { name: "ts" number: 25 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" }
  field { name: "dur" number: 26 type: TYPE_MESSAGE type_name: ".google.protobuf.Duration" }
  field { name: "mask" number: 27 type: TYPE_MESSAGE type_name: ".google.protobuf.FieldMask" }
  field { name: "a" number: 28 type: TYPE_STRING oneof_index: 0 }
  field { name: "b" number: 29 type: TYPE_STRING oneof_index: 0 }
  field { name: "wd" number: 30 type: TYPE_MESSAGE type_name: ".google.protobuf.DoubleValue" }
  field { name: "wbytes" number: 31 type: TYPE_MESSAGE type_name: ".google.protobuf.BytesValue" }
  field { name: "kinds" number: 32 type: TYPE_ENUM type_name: ".test.v1.Kind" label: LABEL_REPEATED }
  field { name: "parent" number: 33 type: TYPE_STRING }
  field { name: "wts" number: 34 type: TYPE_MESSAGE type_name: ".google.protobuf.Timestamp" label: LABEL_REPEATED }
  field { name: "opt" number: 35 type: TYPE_INT32 proto3_optional: true oneof_index: 1 }
  nested_type {
    name: "LabelsEntry"
    field { name: "key" number: 1 type: TYPE_STRING }
    field { name: "value" number: 2 type: TYPE_STRING }
    options { map_entry: true }
  }
  oneof_decl { name: "choice" }
  oneof_decl { name: "_opt" }
}
message_type {
  name: "Resp"
  field { name: "name" number: 1 type: TYPE_STRING }
  field { name: "tags" number: 2 type: TYPE_STRING label: LABEL_REPEATED }
}
`

// method is one method of the test service: its name and the body of its
// google.api.http option in text form ("" for none).
type method struct{ name, rule string }

// fileProto builds the test file with one service "Library" holding methods.
func fileProto(t testing.TB, methods ...method) *descriptorpb.FileDescriptorProto {
	t.Helper()
	var b strings.Builder
	b.WriteString(msgsText)
	b.WriteString("service { name: \"Library\"\n")
	for _, m := range methods {
		fmt.Fprintf(&b, "  method { name: %q input_type: \".test.v1.Req\" output_type: \".test.v1.Resp\"", m.name)
		if m.rule != "" {
			fmt.Fprintf(&b, " options { [google.api.http] { %s } }", m.rule)
		}
		b.WriteString(" }\n")
	}
	b.WriteString("}\n")
	fdp := &descriptorpb.FileDescriptorProto{}
	require.NoError(t, prototext.Unmarshal([]byte(b.String()), fdp))
	return fdp
}

// withUnknownOptions is fdp as a program that does not link the
// annotations package sees it: marshalled and read back by a resolver
// without google.api.http, the rules stay unknown fields.
func withUnknownOptions(t testing.TB, fdp *descriptorpb.FileDescriptorProto) *descriptorpb.FileDescriptorProto {
	t.Helper()
	b, err := proto.Marshal(fdp)
	require.NoError(t, err)
	out := &descriptorpb.FileDescriptorProto{}
	require.NoError(t, proto.UnmarshalOptions{Resolver: new(protoregistry.Types)}.Unmarshal(b, out))
	return out
}

func servicesOf(t testing.TB, fdp *descriptorpb.FileDescriptorProto) []protoreflect.ServiceDescriptor {
	t.Helper()
	fd, err := protodesc.NewFile(fdp, protoregistry.GlobalFiles)
	require.NoError(t, err)
	var out []protoreflect.ServiceDescriptor
	for i := 0; i < fd.Services().Len(); i++ {
		out = append(out, fd.Services().Get(i))
	}
	return out
}

func newRouter(t testing.TB, methods ...method) *httprule.Router {
	t.Helper()
	r, err := httprule.NewRouter(servicesOf(t, fileProto(t, methods...)))
	require.NoError(t, err)
	return r
}

// library is the router most tests share.
var library = []method{
	{"GetBook", `get: "/v1/books/{name}" additional_bindings { get: "/v1/{parent=shelves/*}/books/{name}" }`},
	{"ListBooks", `get: "/v1/{parent=shelves/*}/books"`},
	{"GetAny", `get: "/v1/{name=**}"`},
	{"CancelBook", `post: "/v1/books/{name}:cancel" body: "*"`},
	{"UpdateBook", `patch: "/v1/books/{name}" body: "inner"`},
	{"PutDeep", `put: "/v1/deep/{name}" body: "inner.deep"`},
	{"Echo", `post: "/test.v1.Library/Echo" body: "*"`},
	{"Search", `custom { kind: "SEARCH" path: "/v1/search/*" } response_body: "tags"`},
	{"Deep", `get: "/v1/deep/{inner.deep.s}"`},
	{"Files", `get: "/v1/files/{parent=**}"`},
	{"Static", `get: "/v1/books/special"`},
	{"Typed", `get: "/v1/typed/{id}/{flag}/{kind}/{ts}/{w64}"`},
	{"Remove", `delete: "/v1/books/{name}"`},
	{"NoRule", ``},
}
