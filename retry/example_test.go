package retry_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	testgrpc "google.golang.org/grpc/interop/grpc_testing"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/retry"
)

// A flaky upstream fails twice with 503, then answers; the client wrapped
// with the policy sees only the answer.
func ExamplePolicy_RoundTripper() {
	var hits atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) <= 2 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprint(w, "hello")
	}))
	defer upstream.Close()

	p, err := retry.New(retry.Config{MaxAttempts: 3})
	if err != nil {
		fmt.Println(err)
		return
	}
	client := &http.Client{Transport: p.RoundTripper(upstream.Client().Transport)}
	resp, err := client.Get(upstream.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, string(body), "after", hits.Load(), "attempts")
	// Output: 200 hello after 3 attempts
}

type flakyService struct {
	testgrpc.UnimplementedTestServiceServer
	calls atomic.Int32
}

func (s *flakyService) UnaryCall(context.Context, *testgrpc.SimpleRequest) (*testgrpc.SimpleResponse, error) {
	if s.calls.Add(1) == 1 {
		return nil, status.Error(codes.Unavailable, "warming up")
	}
	return &testgrpc.SimpleResponse{Username: "ada"}, nil
}

// A gRPC server answers UNAVAILABLE once; the unary interceptor retries.
func ExamplePolicy_UnaryClientInterceptor() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	svc := &flakyService{}
	srv := grpc.NewServer()
	testgrpc.RegisterTestServiceServer(srv, svc)
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	p, err := retry.New(retry.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(p.UnaryClientInterceptor()),
		grpc.WithStreamInterceptor(p.StreamClientInterceptor()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	resp, err := testgrpc.NewTestServiceClient(conn).UnaryCall(context.Background(), &testgrpc.SimpleRequest{})
	fmt.Println(resp.GetUsername(), status.Code(err), "after", svc.calls.Load(), "calls")
	// Output: ada OK after 2 calls
}
