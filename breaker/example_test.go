package breaker_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/outbound-go/outbound/breaker"
)

// An upstream that keeps failing is cut off after consecutive_failures
// failures: the next request is refused without being sent.
func Example() {
	var hits int
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits++
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer upstream.Close()

	b, err := breaker.New(breaker.Config{ConsecutiveFailures: 2, OpenTimeout: time.Minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: b.RoundTripper(tr)}

	for range 3 {
		resp, err := client.Get(upstream.URL)
		if err != nil {
			fmt.Println("refused:", errors.Is(err, breaker.ErrOpen))
			continue
		}
		resp.Body.Close()
		fmt.Println("status:", resp.StatusCode)
	}
	fmt.Println("upstream saw", hits, "requests; breaker is", b.State(upstream.Listener.Addr().String()))
	// Output:
	// status: 503
	// status: 503
	// refused: true
	// upstream saw 2 requests; breaker is open
}

// The state-change callback runs outside every lock, so it may log, update
// a dashboard or call back into the Breaker.
func ExampleWithOnStateChange() {
	failing := http.RoundTripper(roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		return &http.Response{StatusCode: http.StatusBadGateway, Body: http.NoBody, Request: r}, nil
	}))
	b, _ := breaker.New(breaker.Config{ConsecutiveFailures: 1},
		breaker.WithOnStateChange(func(key string, from, to breaker.State) {
			fmt.Printf("%s: %s -> %s\n", key, from, to)
		}))
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.7:8080/", nil)
	resp, err := b.RoundTripper(failing).RoundTrip(req)
	if err == nil {
		resp.Body.Close()
	}
	// Output:
	// 10.0.0.7:8080: closed -> open
}

// Discovery asks Ready before it picks an endpoint; the question takes no
// probe slot.
func ExampleBreaker_Ready() {
	failing := roundTripperFunc(func(r *http.Request) (*http.Response, error) {
		return nil, errors.New("connection refused")
	})
	b, _ := breaker.New(breaker.Config{ConsecutiveFailures: 1, OpenTimeout: time.Minute})
	rt := b.RoundTripper(failing)
	req, _ := http.NewRequest(http.MethodGet, "http://10.0.0.7:8080/", nil)
	_, _ = rt.RoundTrip(req)

	fmt.Println("10.0.0.7:8080 ready:", b.Ready("10.0.0.7:8080"))
	fmt.Println("10.0.0.8:8080 ready:", b.Ready("10.0.0.8:8080"))
	for _, k := range b.Snapshot() {
		fmt.Println(k.Key, k.State)
	}
	// Output:
	// 10.0.0.7:8080 ready: false
	// 10.0.0.8:8080 ready: true
	// 10.0.0.7:8080 open
}
