// Command httpclient shows the in-process stack: ambassador.NewTransport
// turns a plain http.Client into one that sends http://users/... to two local
// upstreams with retry and a circuit breaker per endpoint, round robin between them.
// One upstream answers 503 to every other request; the client never sees it.
// It prints what each upstream saw, what the client saw, and the attempt
// outcomes the retry policy counted in outbound.retry.attempts.
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
	"strings"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

func main() {
	requests := flag.Int("requests", 20, "how many requests the client sends")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *requests); err != nil {
		fmt.Fprintln(os.Stderr, "httpclient:", err)
		os.Exit(1)
	}
}

// upstream is a local server that fails every failEvery-th request with 503
// (never, when failEvery is 0) and counts what it answered.
func upstream(failEvery int64) (*httptest.Server, *atomic.Int64, *atomic.Int64) {
	var ok, failed atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failEvery > 0 && (ok.Load()+failed.Load())%failEvery == 0 {
			failed.Add(1)
			http.Error(w, "temporarily unavailable", http.StatusServiceUnavailable)
			return
		}
		ok.Add(1)
		fmt.Fprintln(w, "hello")
	}))
	return srv, &ok, &failed
}

func run(ctx context.Context, w io.Writer, requests int) error {
	flaky, flakyOK, flakyFailed := upstream(2)
	defer flaky.Close()
	steady, steadyOK, _ := upstream(0)
	defer steady.Close()

	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer func() { _ = mp.Shutdown(context.Background()) }()

	// The three lines a user writes: a service config, a transport, a client.
	rt, err := ambassador.NewTransport(ambassador.ServiceConfig{
		Name:      "users",
		Discovery: discovery.Config{Static: []string{flaky.Listener.Addr().String(), steady.Listener.Addr().String()}},
		Retry:     &retry.Config{BaseDelay: 5 * time.Millisecond},
		Breaker:   &breaker.Config{},
	}, ambassador.WithMeterProvider(mp))
	if err != nil {
		return err
	}
	defer rt.(io.Closer).Close()
	client := &http.Client{Transport: rt, Timeout: 10 * time.Second}

	succeeded := 0
	for i := 0; i < requests; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://users/hello", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			succeeded++
		}
	}
	fmt.Fprintf(w, "flaky upstream:  %d answered, %d failed with 503\n", flakyOK.Load(), flakyFailed.Load())
	fmt.Fprintf(w, "steady upstream: %d answered\n", steadyOK.Load())
	fmt.Fprintf(w, "client: %d of %d requests succeeded\n", succeeded, requests)

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(ctx, &rm); err != nil {
		return err
	}
	var lines []string
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok || m.Name != "outbound.retry.attempts" {
				continue
			}
			for _, dp := range sum.DataPoints {
				o, _ := dp.Attributes.Value(attribute.Key("outcome"))
				lines = append(lines, fmt.Sprintf("  %s{outcome=%s} %d", m.Name, o.AsString(), dp.Value))
			}
		}
	}
	sort.Strings(lines)
	fmt.Fprintln(w, strings.Join(lines, "\n"))
	return nil
}
