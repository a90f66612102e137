package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/outbound-go/outbound/ratelimit"
)

// A client limited to one request per second, with a burst of 2, that
// refuses at once when the bucket is empty. The clock is frozen so that the
// output does not depend on the machine's speed.
func Example() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer upstream.Close()

	frozen := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := ratelimit.New(ratelimit.Config{RPS: 1, Burst: 2},
		ratelimit.WithClock(frozenClock{at: frozen}))
	if err != nil {
		fmt.Println(err)
		return
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: lim.RoundTripper(base)}

	for i := 1; i <= 3; i++ {
		resp, err := client.Get(upstream.URL)
		var le *ratelimit.LimitedError
		switch {
		case errors.As(err, &le):
			fmt.Printf("request %d: limited (ErrLimited: %v), retry after %v\n", i, errors.Is(err, ratelimit.ErrLimited), le.RetryAfter)
		case err != nil:
			fmt.Printf("request %d: %v\n", i, err)
		default:
			resp.Body.Close()
			fmt.Printf("request %d: %d\n", i, resp.StatusCode)
		}
	}
	// Output:
	// request 1: 200
	// request 2: 200
	// request 3: limited (ErrLimited: true), retry after 1s
}

// An upstream that answers 429 with Retry-After pauses its host: the
// following requests are refused locally until the pause ends.
func Example_retryAfter() {
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "30")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer upstream.Close()

	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := ratelimit.New(ratelimit.Config{RPS: 100},
		ratelimit.WithClock(frozenClock{at: now}))
	if err != nil {
		fmt.Println(err)
		return
	}
	base := &http.Transport{}
	defer base.CloseIdleConnections()
	client := &http.Client{Transport: lim.RoundTripper(base)}

	resp, err := client.Get(upstream.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	resp.Body.Close()
	fmt.Println("upstream said:", resp.StatusCode, "Retry-After", resp.Header.Get("Retry-After"))

	_, err = client.Get(upstream.URL)
	var le *ratelimit.LimitedError
	if errors.As(err, &le) {
		fmt.Println("next request: refused locally, retry after", le.RetryAfter)
	}
	// Output:
	// upstream said: 429 Retry-After 30
	// next request: refused locally, retry after 30s
}

// In wait mode a request without a token waits for its turn, up to
// max_wait and never past its context's deadline. Here the sleep hook only
// prints the wait it was asked for.
func ExampleLimiter_Acquire() {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	sleep := func(ctx context.Context, d time.Duration) error {
		fmt.Println("  waiting", d)
		return nil
	}
	lim, err := ratelimit.New(ratelimit.Config{RPS: 10, Burst: 1, MaxWait: 150 * time.Millisecond},
		ratelimit.WithClock(frozenClock{at: now, sleep: sleep}))
	if err != nil {
		fmt.Println(err)
		return
	}
	for i := 1; i <= 3; i++ {
		fmt.Printf("request %d\n", i)
		if err := lim.Acquire(context.Background(), "users"); err != nil {
			fmt.Println("  refused:", err)
		}
	}
	// Output:
	// request 1
	// request 2
	//   waiting 100ms
	// request 3
	//   refused: ratelimit: rate limited for "users", retry after 200ms
}

// Validate names every bad field.
func ExampleConfig_Validate() {
	err := ratelimit.Config{Burst: -1, Scope: "everywhere"}.Validate()
	fmt.Println(err)
	// Output:
	// rps: required, must be > 0
	// burst: must be ≥ 0 (0 = ceil(rps)), got -1
	// scope: must be "host" or "global", got "everywhere"
}

// The interceptors refuse gRPC calls with codes.ResourceExhausted; the error
// still matches ErrLimited and carries the wait.
func ExampleLimiter_UnaryClientInterceptor() {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	srv := grpc.NewServer()
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go func() { _ = srv.Serve(lis) }()
	defer srv.Stop()

	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	lim, err := ratelimit.New(ratelimit.Config{RPS: 2, Burst: 1},
		ratelimit.WithClock(frozenClock{at: now}))
	if err != nil {
		fmt.Println(err)
		return
	}
	conn, err := grpc.NewClient(lis.Addr().String(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithUnaryInterceptor(lim.UnaryClientInterceptor()))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer conn.Close()
	client := healthpb.NewHealthClient(conn)

	for i := 1; i <= 2; i++ {
		resp, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
		var le *ratelimit.LimitedError
		if errors.As(err, &le) {
			fmt.Printf("call %d: %v (ErrLimited: %v), retry after %v\n", i, status.Code(err), errors.Is(err, ratelimit.ErrLimited), le.RetryAfter)
			continue
		}
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("call %d: %v\n", i, resp.GetStatus())
	}
	// Output:
	// call 1: SERVING
	// call 2: ResourceExhausted (ErrLimited: true), retry after 500ms
}

// frozenClock is a ratelimit.Clock stopped at one instant; Sleep calls
// sleep if set and otherwise returns at once.
type frozenClock struct {
	at    time.Time
	sleep func(ctx context.Context, d time.Duration) error
}

func (c frozenClock) Now() time.Time { return c.at }

func (c frozenClock) Sleep(ctx context.Context, d time.Duration) error {
	if c.sleep != nil {
		return c.sleep(ctx, d)
	}
	return ctx.Err()
}
