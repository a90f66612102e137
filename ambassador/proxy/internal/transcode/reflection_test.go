package transcode_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
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

// headerFirst is a client stream whose SendMsg waits for the response
// headers first, so a server that refuses unread has ended the stream by
// the time the request is sent (what a loaded machine does by chance).
type headerFirst struct{ grpc.ClientStream }

func (s headerFirst) SendMsg(m any) error {
	_, _ = s.Header()
	return s.ClientStream.SendMsg(m)
}

// TestReflectionRefusedUnreadKeepsItsStatus: a reflection server that
// answers UNAVAILABLE before reading the request makes the send see the
// stream's end (io.EOF); the fetch fails with the server's status, not
// with "EOF".
func TestReflectionRefusedUnreadKeepsItsStatus(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer(grpc.StreamInterceptor(func(any, grpc.ServerStream, *grpc.StreamServerInfo, grpc.StreamHandler) error {
		return status.Error(codes.Unavailable, "reflection is down")
	}))
	rpb.RegisterServerReflectionServer(srv, &stingyReflection{})
	testkit.ServeGRPC(t, srv, lis)
	var sawEOF atomic.Bool
	cc, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			cs, err := streamer(ctx, desc, cc, method, opts...)
			if err != nil {
				return nil, err
			}
			return eofSpy{headerFirst{cs}, &sawEOF}, nil
		}))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })

	_, err = transcode.NewReflection(cc, 5*time.Second, nil).Descriptors(context.Background())
	require.True(t, sawEOF.Load(), "the send saw the stream's end")
	st, ok := status.FromError(err)
	require.True(t, ok, "%v", err)
	assert.Equal(t, codes.Unavailable, st.Code())
	assert.Equal(t, "reflection is down", st.Message())
}

// eofSpy records that a SendMsg returned io.EOF.
type eofSpy struct {
	grpc.ClientStream
	saw *atomic.Bool
}

func (s eofSpy) SendMsg(m any) error {
	err := s.ClientStream.SendMsg(m)
	if err == io.EOF {
		s.saw.Store(true)
	}
	return err
}
