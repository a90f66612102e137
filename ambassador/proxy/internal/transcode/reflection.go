package transcode

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
)

// The reflection methods, newest first. v1 and v1alpha messages are the
// same on the wire, so one set of generated types (v1's) serves both.
const (
	reflectionV1      = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
	reflectionV1Alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
)

// maxReflectedFiles bounds the files one fetch collects.
const maxReflectedFiles = 10000

// fetchReflection asks the server behind cc for every service it has and
// the files that define them with all their imports, over
// grpc.reflection.v1, or v1alpha when the server does not implement v1.
func fetchReflection(ctx context.Context, cc grpc.ClientConnInterface, rb RuleBuilder) (*Descriptors, error) {
	files, err := reflectWith(ctx, cc, reflectionV1)
	if status.Code(err) == codes.Unimplemented {
		files, err = reflectWith(ctx, cc, reflectionV1Alpha)
	}
	if err != nil {
		return nil, err
	}
	return newDescriptors(files, rb)
}

// reflectStream is one ServerReflectionInfo stream: a request, its answer.
type reflectStream struct{ st grpc.ClientStream }

func (s reflectStream) ask(req *rpb.ServerReflectionRequest) (*rpb.ServerReflectionResponse, error) {
	// io.EOF from SendMsg means the stream has ended: RecvMsg returns why
	// (a server that refuses before reading answers its status unread).
	if err := s.st.SendMsg(req); err != nil && err != io.EOF {
		return nil, err
	}
	resp := new(rpb.ServerReflectionResponse)
	if err := s.st.RecvMsg(resp); err != nil {
		return nil, err
	}
	if e := resp.GetErrorResponse(); e != nil {
		return nil, &reflectionError{code: codes.Code(e.GetErrorCode()), msg: e.GetErrorMessage()}
	}
	return resp, nil
}

// reflectionError is an ErrorResponse of the reflection stream (the stream
// itself is fine).
type reflectionError struct {
	code codes.Code
	msg  string
}

func (e *reflectionError) Error() string { return "server reflection: " + e.msg }

// GRPCStatus makes the error's code the answer's.
func (e *reflectionError) GRPCStatus() *status.Status { return status.New(e.code, e.Error()) }

// errorResponse is the code of an ErrorResponse, OK for any other error.
func errorResponse(err error) codes.Code {
	var re *reflectionError
	if errors.As(err, &re) {
		return re.code
	}
	return codes.OK
}

// reflectWith collects the files of every service over one stream of
// method.
func reflectWith(ctx context.Context, cc grpc.ClientConnInterface, method string) ([]*descriptorpb.FileDescriptorProto, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // ends the stream
	st, err := cc.NewStream(ctx, &grpc.StreamDesc{ClientStreams: true, ServerStreams: true}, method)
	if err != nil {
		return nil, err
	}
	s := reflectStream{st}
	resp, err := s.ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_ListServices{ListServices: "*"}})
	if err != nil {
		return nil, err
	}
	got := map[string]*descriptorpb.FileDescriptorProto{}
	var order []*descriptorpb.FileDescriptorProto
	add := func(r *rpb.ServerReflectionResponse) error {
		for _, raw := range r.GetFileDescriptorResponse().GetFileDescriptorProto() {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(raw, fd); err != nil {
				return fmt.Errorf("%w: server reflection sent a bad file: %v", ErrBadDescriptors, err)
			}
			if got[fd.GetName()] == nil {
				got[fd.GetName()] = fd
				order = append(order, fd)
			}
		}
		if len(order) > maxReflectedFiles {
			return fmt.Errorf("%w: server reflection sent more than %d files", ErrBadDescriptors, maxReflectedFiles)
		}
		return nil
	}
	for _, svc := range resp.GetListServicesResponse().GetService() {
		if strings.HasPrefix(svc.GetName(), "grpc.reflection.") {
			continue // not transcoded
		}
		r, err := s.ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: svc.GetName()}})
		if errorResponse(err) == codes.NotFound {
			continue // listed but not described: not callable here
		}
		if err != nil {
			return nil, err
		}
		if err := add(r); err != nil {
			return nil, err
		}
	}
	// The server sends imports along, but need not: ask for what is missing.
	for i := 0; i < len(order); i++ {
		for _, dep := range order[i].GetDependency() {
			if got[dep] != nil {
				continue
			}
			r, err := s.ask(&rpb.ServerReflectionRequest{MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: dep}})
			if err != nil {
				return nil, err
			}
			if err := add(r); err != nil {
				return nil, err
			}
			if got[dep] == nil {
				return nil, fmt.Errorf("%w: server reflection has no file %q", ErrBadDescriptors, dep)
			}
		}
	}
	_ = st.CloseSend()
	return order, nil
}
