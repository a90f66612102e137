package proxy_test

import (
	"context"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/reflection"
	rpbv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/internal/testkit"
)

// shopFile is a proto3 file built in the test: service shop.Shelves with
// google.api.http rules,
//
//	GetBook    GET  /v1/shelves/{shelf}/books/{id}   (query: view)
//	CreateBook POST /v1/shelves/{shelf}/books        body: "book"
//	Title      GET  /v1/shelves/{shelf}/books/{id}/title  response_body: "title"
func shopFile(t *testing.T) *descriptorpb.FileDescriptorProto {
	t.Helper()
	field := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, msg string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String(name)}
		if msg != "" {
			f.TypeName = proto.String(msg)
		}
		return f
	}
	str, i64, msg := descriptorpb.FieldDescriptorProto_TYPE_STRING, descriptorpb.FieldDescriptorProto_TYPE_INT64, descriptorpb.FieldDescriptorProto_TYPE_MESSAGE
	rule := func(r *annotations.HttpRule) *descriptorpb.MethodOptions {
		o := &descriptorpb.MethodOptions{}
		proto.SetExtension(o, annotations.E_Http, r)
		return o
	}
	return &descriptorpb.FileDescriptorProto{
		Name: proto.String("shop/shop.proto"), Package: proto.String("shop"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/api/annotations.proto"},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("GetBookRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("shelf", 1, str, ""), field("id", 2, i64, ""), field("view", 3, str, "")}},
			{Name: proto.String("Book"), Field: []*descriptorpb.FieldDescriptorProto{
				field("shelf", 1, str, ""), field("id", 2, i64, ""), field("title", 3, str, ""), field("view", 4, str, "")}},
			{Name: proto.String("CreateBookRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("shelf", 1, str, ""), field("book", 2, msg, ".shop.Book")}},
		},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("Shelves"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("GetBook"), InputType: proto.String(".shop.GetBookRequest"), OutputType: proto.String(".shop.Book"),
				Options: rule(&annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/shelves/{shelf}/books/{id}"}})},
			{Name: proto.String("CreateBook"), InputType: proto.String(".shop.CreateBookRequest"), OutputType: proto.String(".shop.Book"),
				Options: rule(&annotations.HttpRule{Pattern: &annotations.HttpRule_Post{Post: "/v1/shelves/{shelf}/books"}, Body: "book"})},
			{Name: proto.String("Title"), InputType: proto.String(".shop.GetBookRequest"), OutputType: proto.String(".shop.Book"),
				Options: rule(&annotations.HttpRule{Pattern: &annotations.HttpRule_Get{Get: "/v1/shelves/{shelf}/books/{id}/title"}, ResponseBody: "title"})},
		}}},
	}
}

// shopFiles links shopFile with its imports and returns the registry and
// the set (imports first) for a descriptor set file.
func shopFiles(t *testing.T) (*protoregistry.Files, *descriptorpb.FileDescriptorSet) {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(annotations.File_google_api_http_proto),
		protodesc.ToFileDescriptorProto(annotations.File_google_api_annotations_proto),
		shopFile(t),
	}}
	files, err := protodesc.NewFiles(set)
	require.NoError(t, err)
	return files, set
}

// startShop serves shop.Shelves through dynamicpb: GetBook and Title
// answer the book named by the request, CreateBook the book it was given
// on its shelf. With reflect set it also serves server reflection from
// the test's registry.
func startShop(t *testing.T, files *protoregistry.Files, reflect bool) string {
	t.Helper()
	d, err := files.FindDescriptorByName("shop.Shelves")
	require.NoError(t, err)
	sd := d.(protoreflect.ServiceDescriptor)
	book := sd.Methods().ByName("GetBook").Output()
	get := func(in *dynamicpb.Message) *dynamicpb.Message {
		f := in.Descriptor().Fields()
		out := dynamicpb.NewMessage(book)
		out.Set(book.Fields().ByName("shelf"), in.Get(f.ByName("shelf")))
		out.Set(book.Fields().ByName("id"), in.Get(f.ByName("id")))
		out.Set(book.Fields().ByName("view"), in.Get(f.ByName("view")))
		out.Set(book.Fields().ByName("title"), protoreflect.ValueOfString("title of "+in.Get(f.ByName("shelf")).String()))
		return out
	}
	create := func(in *dynamicpb.Message) *dynamicpb.Message {
		f := in.Descriptor().Fields()
		out := dynamicpb.NewMessage(book)
		proto.Merge(out, in.Get(f.ByName("book")).Message().Interface())
		out.Set(book.Fields().ByName("shelf"), in.Get(f.ByName("shelf")))
		return out
	}
	method := func(name string, f func(*dynamicpb.Message) *dynamicpb.Message) grpc.MethodDesc {
		in := sd.Methods().ByName(protoreflect.Name(name)).Input()
		return grpc.MethodDesc{MethodName: name, Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			m := dynamicpb.NewMessage(in)
			if err := dec(m); err != nil {
				return nil, err
			}
			return f(m), nil
		}}
	}
	srv := grpc.NewServer()
	srv.RegisterService(&grpc.ServiceDesc{ServiceName: "shop.Shelves", HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{method("GetBook", get), method("CreateBook", create), method("Title", get)}}, struct{}{})
	if reflect {
		rpbv1.RegisterServerReflectionServer(srv, reflection.NewServerV1(reflection.ServerOptions{Services: srv, DescriptorResolver: files}))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	testkit.ServeGRPC(t, srv, lis)
	return lis.Addr().String()
}

// TestTranscodeHTTPRules: google.api.http bindings of a service built in
// the test from a FileDescriptorProto and served through dynamicpb: path
// variables, a query parameter, a body field, a response_body; the
// gRPC-style path still works, and an unbound path is 404 no_route.
func TestTranscodeHTTPRules(t *testing.T) {
	t.Run("descriptor set file", func(t *testing.T) { testHTTPRules(t, false) })
	t.Run("server reflection", func(t *testing.T) { testHTTPRules(t, true) })
}

func testHTTPRules(t *testing.T, reflect bool) {
	files, set := shopFiles(t)
	up := startShop(t, files, reflect)
	dir := t.TempDir()
	b, err := proto.Marshal(set)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "shop.pb"), b, 0o600))
	ts := "{descriptor_set: shop.pb}"
	if reflect {
		ts = "{}"
	}
	url := transcodeAmbassador(t, dir, transcodeConfig(up, ts, ""))
	c := client(t)

	code, reason, body := fetch(t, c, http.MethodGet, url+"/v1/shelves/fiction/books/42?view=full", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Empty(t, reason)
	assert.JSONEq(t, `{"shelf": "fiction", "id": "42", "title": "title of fiction", "view": "full"}`, body, "int64 as a string")

	resp, body := postJSON(t, c, url+"/v1/shelves/poetry/books", `{"title": "Odes", "id": "7"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.JSONEq(t, `{"shelf": "poetry", "id": "7", "title": "Odes"}`, body)

	code, _, body = fetch(t, c, http.MethodGet, url+"/v1/shelves/a%20b/books/1/title", "")
	require.Equal(t, http.StatusOK, code, body)
	assert.Equal(t, `"title of a b"`, strings.TrimSpace(body), "response_body: the field alone")

	resp, body = postJSON(t, c, url+"/shop.Shelves/GetBook", `{"shelf": "s", "id": "1"}`)
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.JSONEq(t, `{"shelf": "s", "id": "1", "title": "title of s"}`, body)

	code, reason, body = fetch(t, c, http.MethodGet, url+"/v1/shelves/fiction/books/notanumber", "")
	assert.Equal(t, http.StatusBadRequest, code, body)
	assert.Equal(t, proxy.ReasonBadRequest, reason)
	code, reason, _ = fetch(t, c, http.MethodDelete, url+"/v1/shelves/fiction/books/1", "")
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, proxy.ReasonNoRoute, reason)
}
