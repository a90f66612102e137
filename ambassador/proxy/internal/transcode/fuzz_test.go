package transcode_test

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/outbound-go/outbound/ambassador/proxy/internal/transcode"
	"github.com/outbound-go/outbound/internal/testkit"
)

// fuzzSet is a FileDescriptorSet with service fz.F, method Call(Req)
// returns (google.protobuf.Empty), Req having a field of most kinds:
// 64-bit integers, floats, bytes, an enum, repeated, a map, a nested
// message, a oneof, Timestamp, Any and Struct.
func fuzzSet(t testing.TB) []byte {
	opt := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum()
	rep := descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	f := func(name string, n int32, typ descriptorpb.FieldDescriptorProto_Type, label *descriptorpb.FieldDescriptorProto_Label, msg string) *descriptorpb.FieldDescriptorProto {
		fd := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: typ.Enum(), Label: label, JsonName: proto.String(name)}
		if msg != "" {
			fd.TypeName = proto.String(msg)
		}
		return fd
	}
	type T = descriptorpb.FieldDescriptorProto_Type
	const (
		i64, u32, dbl, boo, str, byt, enm, i32, msg = T(3), T(13), T(1), T(8), T(9), T(12), T(14), T(5), T(11)
	)
	os, oi := f("os", 14, str, opt, ""), f("oi", 15, i32, opt, "")
	os.OneofIndex, oi.OneofIndex = proto.Int32(0), proto.Int32(0)
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("fz.proto"), Package: proto.String("fz"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/empty.proto", "google/protobuf/timestamp.proto", "google/protobuf/any.proto", "google/protobuf/struct.proto"},
		EnumType: []*descriptorpb.EnumDescriptorProto{{Name: proto.String("Kind"), Value: []*descriptorpb.EnumValueDescriptorProto{
			{Name: proto.String("KIND_UNSPECIFIED"), Number: proto.Int32(0)}, {Name: proto.String("KIND_A"), Number: proto.Int32(1)}}}},
		MessageType: []*descriptorpb.DescriptorProto{{
			Name: proto.String("Req"),
			Field: []*descriptorpb.FieldDescriptorProto{
				f("i64", 1, i64, opt, ""), f("u32", 2, u32, opt, ""), f("d", 3, dbl, opt, ""), f("b", 4, boo, opt, ""),
				f("s", 5, str, opt, ""), f("by", 6, byt, opt, ""), f("k", 7, enm, opt, ".fz.Kind"), f("r", 8, i32, rep, ""),
				f("m", 9, msg, rep, ".fz.Req.MEntry"), f("child", 10, msg, opt, ".fz.Req"),
				f("ts", 11, msg, opt, ".google.protobuf.Timestamp"), f("any", 12, msg, opt, ".google.protobuf.Any"),
				f("st", 13, msg, opt, ".google.protobuf.Struct"), os, oi,
			},
			OneofDecl: []*descriptorpb.OneofDescriptorProto{{Name: proto.String("o")}},
			NestedType: []*descriptorpb.DescriptorProto{{Name: proto.String("MEntry"), Options: &descriptorpb.MessageOptions{MapEntry: proto.Bool(true)},
				Field: []*descriptorpb.FieldDescriptorProto{f("key", 1, str, opt, ""), f("value", 2, i64, opt, "")}}},
		}},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("F"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("Call"), InputType: proto.String(".fz.Req"), OutputType: proto.String(".google.protobuf.Empty")}}}},
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(emptypb.File_google_protobuf_empty_proto),
		protodesc.ToFileDescriptorProto(timestamppb.File_google_protobuf_timestamp_proto),
		protodesc.ToFileDescriptorProto(anypb.File_google_protobuf_any_proto),
		protodesc.ToFileDescriptorProto(structpb.File_google_protobuf_struct_proto),
		file,
	}}
	b, err := proto.Marshal(set)
	require.NoError(t, err)
	return b
}

// refusals is a transcode.Local that answers the code it is given.
type refusals struct{}

func (refusals) Refuse(w http.ResponseWriter, _ *http.Request, code int, reason, _ string) {
	w.Header().Set("X-Outbound-Error", reason)
	w.WriteHeader(code)
}

func (refusals) Failed(http.ResponseWriter, *http.Request, error) bool { return false }

// FuzzJSONRequest: random bodies for fz.F/Call through a real grpc-go
// server (which decodes each request as a fz.Req and answers Empty):
// the answer is 200 or 400, never a panic, never anything else.
func FuzzJSONRequest(f *testing.F) {
	set := fuzzSet(f)
	d, err := transcode.ParseFileSet(set, nil)
	require.NoError(f, err)
	md, ok := d.Method("/fz.F/Call")
	require.True(f, ok)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(f, err)
	srv := grpc.NewServer(grpc.UnknownServiceHandler(func(_ any, st grpc.ServerStream) error {
		in := dynamicpb.NewMessage(md.Input())
		if err := st.RecvMsg(in); err != nil {
			return err
		}
		return st.SendMsg(&emptypb.Empty{})
	}))
	testkit.ServeGRPC(f, srv, lis)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(f, err)
	f.Cleanup(func() { _ = cc.Close() })
	h := &transcode.Handler{Conn: cc, Source: transcode.Static{D: d}, Timeout: 5 * time.Second, Local: refusals{}}

	f.Add(`{}`)
	f.Add(``)
	f.Add(`{"i64": "-9223372036854775808", "u32": 4294967295, "d": "NaN", "b": true, "s": "é", "by": "AAE=", "k": "KIND_A"}`)
	f.Add(`{"r": [1, 2, 3], "m": {"a": "1"}, "child": {"child": {"s": "x"}}, "os": "one"}`)
	f.Add(`{"ts": "2026-12-02T00:00:00Z", "st": {"a": [1, null, {"b": false}]}}`)
	f.Add(`{"any": {"@type": "type.googleapis.com/google.protobuf.Timestamp", "value": "1970-01-01T00:00:00Z"}}`)
	f.Add(`{"os": "a", "oi": 1}`)
	f.Add(`{"i64": 1.5}`)
	f.Add(`{"nope": 1}`)
	f.Fuzz(func(t *testing.T, body string) {
		r := httptest.NewRequest(http.MethodPost, "/fz.F/Call", strings.NewReader(body))
		w := httptest.NewRecorder()
		h.Serve(w, r)
		if w.Code != http.StatusOK && w.Code != http.StatusBadRequest {
			t.Fatalf("body %q: status %d: %s", body, w.Code, w.Body.String())
		}
		if w.Code == http.StatusBadRequest && w.Header().Get("X-Outbound-Error") != "bad_request" {
			t.Fatalf("body %q: 400 from the upstream, not a local refusal: %s", body, w.Body.String())
		}
	})
}
