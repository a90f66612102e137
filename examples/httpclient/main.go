// Command httpclient shows retry in-process: it starts a local flaky server
// that fails twice with 503 and then answers, wraps an http.Client with a
// retry.Policy, makes one request and prints what happened — each attempt
// the server saw, the final status and body, and the attempt outcomes the
// policy counted in outbound.retry.attempts.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"sort"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/retry"
)

func main() {
	failures := flag.Int("failures", 2, "how many requests the flaky server fails with 503 before it answers")
	attempts := flag.Int("attempts", 3, "retry max_attempts (total attempts including the first)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *failures, *attempts); err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, failures, attempts int) error {
	var hits atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		if int(n) <= failures {
			fmt.Printf("server: attempt %d -> 503\n", n)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		fmt.Printf("server: attempt %d -> 200\n", n)
		fmt.Fprintln(w, "hello from the flaky server")
	}))
	defer upstream.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	policy, err := retry.New(retry.Config{MaxAttempts: attempts, BaseDelay: 50 * time.Millisecond},
		retry.WithMeterProvider(mp), retry.WithService("flaky"))
	if err != nil {
		return err
	}
	client := &http.Client{Transport: policy.RoundTripper(http.DefaultTransport), Timeout: 10 * time.Second}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, upstream.URL+"/hello", nil)
	if err != nil {
		return err
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	fmt.Printf("client: %s after %d attempts in %s: %q\n",
		resp.Status, hits.Load(), time.Since(start).Round(time.Millisecond), body)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			lines := []string{}
			for _, dp := range sum.DataPoints {
				o, _ := dp.Attributes.Value(attribute.Key("outcome"))
				lines = append(lines, fmt.Sprintf("  %s{outcome=%s} %d", m.Name, o.AsString(), dp.Value))
			}
			sort.Strings(lines)
			for _, l := range lines {
				fmt.Println(l)
			}
		}
	}
	return nil
}
