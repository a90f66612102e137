package proxy_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/reflection"
	rpbalpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// healthFake is a grpc.health.v1 server whose answers the test steers by
// the requested service name:
//
//	"users"        SERVING (Watch: SERVING, then what the test sets on hs)
//	"code:N"       fails with code N and a BadRequest detail
//	"flaky"        UNAVAILABLE on the first call, then SERVING
//	"echo-md"      SERVING, with the call's tenant and authorization
//	               metadata echoed as header x-tenant and trailer x-auth,
//	               and its blob-bin as header x-echo-bin
//	"break-after"  Watch: one SERVING, then DATA_LOSS
//
// Check calls are counted in checks.
type healthFake struct {
	healthpb.UnimplementedHealthServer
	hs     *health.Server
	checks atomic.Int64
	flaky  atomic.Int64
	// reflections counts server reflection streams; the first
	// failReflections of them fail with UNAVAILABLE.
	reflections     atomic.Int64
	failReflections atomic.Int64
}

// countReflection is the fake's stream interceptor.
func (f *healthFake) countReflection(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	if strings.HasPrefix(info.FullMethod, "/grpc.reflection.") {
		if f.reflections.Add(1) <= f.failReflections.Load() {
			return status.Error(codes.Unavailable, "reflection is down")
		}
	}
	return handler(srv, ss)
}

func (f *healthFake) Check(ctx context.Context, req *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	f.checks.Add(1)
	name := req.GetService()
	switch {
	case strings.HasPrefix(name, "code:"):
		n, _ := strconv.Atoi(strings.TrimPrefix(name, "code:"))
		st, err := status.New(codes.Code(n), "fake says "+name).WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: "service", Description: "steered"}}})
		if err != nil {
			return nil, err
		}
		return nil, st.Err()
	case name == "flaky":
		if f.flaky.Add(1) == 1 {
			return nil, status.Error(codes.Unavailable, "first attempt fails")
		}
	case name == "echo-md":
		md, _ := metadata.FromIncomingContext(ctx)
		_ = grpc.SetHeader(ctx, metadata.Pairs("x-tenant", strings.Join(md.Get("tenant"), ","), "x-bin", "\x00\x01",
			"x-traceparent", strings.Join(md.Get("traceparent"), ","), "x-echo-bin", strings.Join(md.Get("blob-bin"), ",")))
		_ = grpc.SetTrailer(ctx, metadata.Pairs("x-auth", strings.Join(md.Get("authorization"), ",")))
	default:
		return f.hs.Check(ctx, req)
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func (f *healthFake) Watch(req *healthpb.HealthCheckRequest, st healthpb.Health_WatchServer) error {
	if req.GetService() == "break-after" {
		if err := st.Send(&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}); err != nil {
			return err
		}
		return status.Error(codes.DataLoss, "broke after one")
	}
	return f.hs.Watch(req, st)
}

// reflectionKind says which server reflection an upstream registers.
type reflectionKind int

const (
	noReflection reflectionKind = iota
	reflectionV1AndAlpha
	reflectionAlphaOnly
)

// startHealthFake serves a healthFake on loopback with the reflection kind.
func startHealthFake(t *testing.T, kind reflectionKind) (string, *healthFake) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &healthFake{hs: health.NewServer()}
	srv := grpc.NewServer(grpc.StreamInterceptor(f.countReflection))
	f.hs.SetServingStatus("users", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(srv, f)
	switch kind {
	case reflectionV1AndAlpha:
		reflection.Register(srv)
	case reflectionAlphaOnly:
		rpbalpha.RegisterServerReflectionServer(srv, reflection.NewServer(reflection.ServerOptions{Services: srv}))
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(lis)
	}()
	t.Cleanup(func() {
		f.hs.Shutdown() // ends open Watch streams
		srv.Stop()
		<-done
	})
	return lis.Addr().String(), f
}

// healthDescriptorSet writes the compiled grpc.health.v1 descriptors (with
// their imports, of which it has none) as a FileDescriptorSet in dir.
func healthDescriptorSet(t *testing.T, dir, name string) {
	t.Helper()
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(healthpb.File_grpc_health_v1_health_proto)}}
	require.Empty(t, healthpb.File_grpc_health_v1_health_proto.Imports().Len(), "health.proto imports nothing")
	b, err := proto.Marshal(set)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
}

// transcodeAmbassador runs an ambassador from the YAML config yml written
// to dir (so descriptor_set paths are relative to dir) and returns the URL
// of its first listener.
func transcodeAmbassador(t *testing.T, dir, yml string, opts ...proxy.Option) string {
	t.Helper()
	path := filepath.Join(dir, "ambassador.yaml")
	require.NoError(t, os.WriteFile(path, []byte(yml), 0o600))
	cfg, err := proxy.LoadConfig(path)
	require.NoError(t, err, "config:\n%s", yml)
	s, err := proxy.NewServer(cfg, append([]proxy.Option{proxy.WithLogger(quietLogger())}, opts...)...)
	require.NoError(t, err)
	return serve(t, s)[0]
}

// transcodeConfig is a config with one transcode listener for service up
// at endpoint, with extra lines under the service and the transcode
// section ts ("{}" for reflection).
func transcodeConfig(endpoint, ts, extra string) string {
	var b strings.Builder
	b.WriteString("admin: {address: 127.0.0.1:0}\nlisteners:\n  - {address: 127.0.0.1:0, service: up, transcode: " + ts + "}\n")
	b.WriteString("services:\n  up:\n    protocol: h2c\n    discovery: {static: [" + endpoint + "]}\n")
	for _, l := range strings.Split(strings.TrimSpace(extra), "\n") {
		if l != "" {
			b.WriteString("    " + l + "\n")
		}
	}
	return b.String()
}

// postJSON posts body to url and returns the response with its body read.
func postJSON(t *testing.T, c *http.Client, url, body string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// protodescHealthWithExtraMethod is grpc.health.v1's file with one more
// unary method, Slow, that no upstream implements.
func protodescHealthWithExtraMethod(t *testing.T) *descriptorpb.FileDescriptorProto {
	t.Helper()
	fd := protodesc.ToFileDescriptorProto(healthpb.File_grpc_health_v1_health_proto)
	svc := fd.Service[0]
	svc.Method = append(svc.Method, &descriptorpb.MethodDescriptorProto{Name: proto.String("Slow"),
		InputType: proto.String(".grpc.health.v1.HealthCheckRequest"), OutputType: proto.String(".grpc.health.v1.HealthCheckResponse")})
	return fd
}

// writeSet writes files as a FileDescriptorSet at dir/name.
func writeSet(t *testing.T, dir, name string, files ...*descriptorpb.FileDescriptorProto) {
	t.Helper()
	b, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: files})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), b, 0o600))
}
