package transcode_test

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/outbound-go/outbound/ambassador/proxy/internal/transcode"
	"github.com/outbound-go/outbound/internal/testkit"
)

// stingyReflection is a grpc.reflection.v1 server that sends each file
// alone, never its imports, so the client must ask for them by name. It
// lists a service it cannot describe, too.
type stingyReflection struct {
	rpb.UnimplementedServerReflectionServer
	files  map[string]*descriptorpb.FileDescriptorProto // by file name
	byName map[string]string                            // service name -> file name
}

func (s *stingyReflection) ServerReflectionInfo(st rpb.ServerReflection_ServerReflectionInfoServer) error {
	for {
		req, err := st.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resp := &rpb.ServerReflectionResponse{}
		file := func(name string) {
			fd, ok := s.files[name]
			if !ok {
				resp.MessageResponse = &rpb.ServerReflectionResponse_ErrorResponse{ErrorResponse: &rpb.ErrorResponse{
					ErrorCode: int32(codes.NotFound), ErrorMessage: "no " + name}}
				return
			}
			b, _ := proto.Marshal(fd)
			resp.MessageResponse = &rpb.ServerReflectionResponse_FileDescriptorResponse{
				FileDescriptorResponse: &rpb.FileDescriptorResponse{FileDescriptorProto: [][]byte{b}}}
		}
		switch r := req.MessageRequest.(type) {
		case *rpb.ServerReflectionRequest_ListServices:
			resp.MessageResponse = &rpb.ServerReflectionResponse_ListServicesResponse{ListServicesResponse: &rpb.ListServiceResponse{
				Service: []*rpb.ServiceResponse{{Name: "a.S"}, {Name: "ghost.Gone"}, {Name: "grpc.reflection.v1.ServerReflection"}}}}
		case *rpb.ServerReflectionRequest_FileContainingSymbol:
			file(s.byName[r.FileContainingSymbol])
		case *rpb.ServerReflectionRequest_FileByFilename:
			file(r.FileByFilename)
		}
		if err := st.Send(resp); err != nil {
			return err
		}
	}
}

// TestReflectionFetchesImports: a.proto imports b.proto, which imports
// google/protobuf/timestamp.proto; a server that sends no import along is
// asked for each by name, and a listed service it cannot describe is
// skipped.
func TestReflectionFetchesImports(t *testing.T) {
	str := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum()
	b := &descriptorpb.FileDescriptorProto{Name: proto.String("b.proto"), Package: proto.String("b"), Syntax: proto.String("proto3"),
		Dependency: []string{"google/protobuf/timestamp.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Req"), Field: []*descriptorpb.FieldDescriptorProto{
			{Name: proto.String("s"), Number: proto.Int32(1), Type: str, Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), JsonName: proto.String("s")}}}}}
	a := &descriptorpb.FileDescriptorProto{Name: proto.String("a.proto"), Package: proto.String("a"), Syntax: proto.String("proto3"),
		Dependency: []string{"b.proto", "google/protobuf/timestamp.proto"},
		Service: []*descriptorpb.ServiceDescriptorProto{{Name: proto.String("S"), Method: []*descriptorpb.MethodDescriptorProto{
			{Name: proto.String("M"), InputType: proto.String(".b.Req"), OutputType: proto.String(".google.protobuf.Timestamp")}}}}}
	ts := protodesc.ToFileDescriptorProto(timestamppb.File_google_protobuf_timestamp_proto)
	refl := &stingyReflection{
		files:  map[string]*descriptorpb.FileDescriptorProto{"a.proto": a, "b.proto": b, ts.GetName(): ts},
		byName: map[string]string{"a.S": "a.proto"},
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	rpb.RegisterServerReflectionServer(srv, refl)
	testkit.ServeGRPC(t, srv, lis)
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })

	src := transcode.NewReflection(cc, 5*time.Second, nil)
	d, err := src.Descriptors(context.Background())
	require.NoError(t, err)
	md, ok := d.Method("/a.S/M")
	require.True(t, ok)
	assert.Equal(t, protoreflect.FullName("b.Req"), md.Input().FullName())
	assert.Equal(t, protoreflect.FullName("google.protobuf.Timestamp"), md.Output().FullName())
	require.Len(t, d.Services(), 1, "ghost.Gone skipped, reflection itself left out")
	again, err := src.Descriptors(context.Background())
	require.NoError(t, err)
	assert.Same(t, d, again, "kept")
}
