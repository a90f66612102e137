package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/outbound-go/outbound/discovery"
)

var quiet = discovery.WithLogger(slog.New(slog.DiscardHandler))

// Requests for http://users/… are spread over the service's endpoints.
func ExampleService_RoundTripper() {
	hello := func(name string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s served %s", name, r.URL.Path)
		}))
	}
	a, b := hello("a"), hello("b")
	defer a.Close()
	defer b.Close()

	svc, err := discovery.NewService("users",
		discovery.Static(a.Listener.Addr().String(), b.Listener.Addr().String()),
		discovery.Config{Balancer: discovery.RoundRobin}, quiet)
	if err != nil {
		panic(err)
	}
	defer svc.Close()
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: svc.RoundTripper(base)}

	var answers []string
	for i := 0; i < 4; i++ {
		resp, err := client.Get("http://users/v1/users/42")
		if err != nil {
			panic(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answers = append(answers, string(body))
	}
	sort.Strings(answers)
	for _, a := range answers {
		fmt.Println(a)
	}
	// Output:
	// a served /v1/users/42
	// a served /v1/users/42
	// b served /v1/users/42
	// b served /v1/users/42
}

// Validate names every problem by its yaml key.
func ExampleConfig_Validate() {
	err := discovery.Config{
		Static:   []string{"127.0.0.1:8081", "127.0.0.1"},
		DNS:      "users.internal:8080",
		Balancer: "fastest",
	}.Validate()
	fmt.Println(err)
	// Output:
	// discovery: set one source, got static and dns
	// discovery: static[1]: address "127.0.0.1": want host:port
	// discovery: balancer: unknown balancer "fastest": want round_robin, least_request or ewma
}

// With every endpoint ejected (here by a Health that rejects all of them),
// a request fails at once with ErrNoEndpoints.
func ExampleWithHealth() {
	ejectAll := discovery.HealthFunc(func(endpoint string) bool { return false })
	svc, err := discovery.NewService("users", discovery.Static("127.0.0.1:8081", "127.0.0.1:8082"),
		discovery.Config{}, discovery.WithHealth(ejectAll), quiet)
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	client := &http.Client{Transport: svc.RoundTripper(http.DefaultTransport)}
	_, err = client.Get("http://users/")
	fmt.Println(errors.Is(err, discovery.ErrNoEndpoints))
	fmt.Println(err)
	// Output:
	// true
	// Get "http://users/": discovery: service "users": no ready endpoints
}

// A gRPC client balances over the service's endpoints through the
// resolver and balancer DialOptions selects.
func ExampleService_DialOptions() {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()

	svc, err := discovery.NewService("users", discovery.Static(l.Addr().String()),
		discovery.Config{Balancer: discovery.EWMA}, quiet)
	if err != nil {
		panic(err)
	}
	defer svc.Close()

	conn, err := grpc.NewClient(svc.Target(),
		append(svc.DialOptions(), grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		panic(err)
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if err != nil {
		panic(err)
	}
	fmt.Println(svc.Target(), resp.GetStatus())
	// Output: outbound:///users SERVING
}
