package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/outbound-go/outbound/ambassador"
	"github.com/outbound-go/outbound/ambassador/proxy"
	"github.com/outbound-go/outbound/breaker"
	"github.com/outbound-go/outbound/discovery"
	"github.com/outbound-go/outbound/retry"
)

// demoRequests is how many requests runDemo's burst sends each way.
const demoRequests = 200

// demoOutageRequests is how many requests runDemo sends, one at a time,
// while both upstreams are down, so that the breakers trip.
const demoOutageRequests = 30

// runDemo runs the embedded demo that `go run ./examples/ambassador` shows
// a newcomer: two demo upstreams on loopback — one answers 503 to about a
// third of its requests, the other is sometimes slow — behind an ambassador
// with retry, a circuit breaker and the ewma balancer. It sends a short
// burst straight to the upstreams and the same burst through the
// ambassador, then an outage (both upstreams answer 503) that trips the
// breakers, and waits for them to let traffic through again; it writes a
// summary to w, then keeps serving until ctx is done and returns nil. The
// server's metrics go to mp (the global provider when nil), with the
// breaker transitions counted on the way for the summary; a
// WithMeterProvider in opts is overridden.
func runDemo(ctx context.Context, w io.Writer, mp metric.MeterProvider, opts ...proxy.Option) error {
	ups, err := startDemoUpstreams()
	if err != nil {
		return err
	}
	defer ups.close()
	addrs := ups.addrs

	cfg := &proxy.Config{
		Admin:     proxy.AdminConfig{Address: "127.0.0.1:0"},
		Listeners: []proxy.ListenerConfig{{Address: "127.0.0.1:0", Service: "demo"}},
		Services: map[string]ambassador.ServiceConfig{"demo": {
			Name:      "demo",
			Discovery: discovery.Config{Static: addrs, Balancer: "ewma"},
			Timeout:   5 * time.Second,
			Retry:     &retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond},
			Breaker:   &breaker.Config{ConsecutiveFailures: 3, OpenTimeout: 500 * time.Millisecond},
		}},
		Limits: proxy.LimitsConfig{DrainTimeout: 5 * time.Second},
	}
	var trips atomic.Int64
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	opts = append(opts, proxy.WithMeterProvider(tripCounting{MeterProvider: mp, trips: &trips}))
	srv, err := proxy.NewServer(cfg, opts...)
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	go func() { runErr <- srv.Run(runCtx) }()
	select {
	case <-srv.Ready():
	case err := <-runErr:
		return err
	}
	proxy := "http://" + srv.Addrs()[0].String()

	fmt.Fprintf(w, "outbound demo: two upstreams on loopback — %s answers 503 to about a third of requests, %s is sometimes slow\n", addrs[0], addrs[1])
	fmt.Fprintf(w, "ambassador on %s with retry (3 attempts), a circuit breaker per endpoint and the ewma balancer\n\n", proxy)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	start := time.Now()
	direct := burst(ctx, client, func(i int) string { return "http://" + addrs[i%2] + "/hello" })
	ups.flakyHits.Store(0)
	ups.slowHits.Store(0)
	viaAmb := burst(ctx, client, func(int) string { return proxy + "/hello" })
	attempts := ups.flakyHits.Load() + ups.slowHits.Load()

	fmt.Fprintf(w, "%-28s %8s %10s %9s\n", "", "requests", "succeeded", "rate")
	fmt.Fprintf(w, "%-28s %8d %10d %8.1f%%\n", "straight to the upstreams", demoRequests, direct, pct(direct))
	fmt.Fprintf(w, "%-28s %8d %10d %8.1f%%\n", "through the ambassador", demoRequests, viaAmb, pct(viaAmb))
	fmt.Fprintf(w, "\nupstream attempts behind the ambassador: %d for %d requests", attempts, demoRequests)
	if extra := attempts - demoRequests; extra > 0 {
		fmt.Fprintf(w, " (%d retries)", extra)
	}
	fmt.Fprintf(w, ": %d to the flaky one, %d to the slow one\n", ups.flakyHits.Load(), ups.slowHits.Load())
	fmt.Fprintf(w, "breaker trips in the burst: %d", trips.Load())
	if trips.Load() == 0 && ups.flakyHits.Load() < ups.slowHits.Load() {
		// Say why, so a zero does not read as a breaker that does nothing.
		fmt.Fprint(w, " (ewma moved traffic off the flaky upstream before 3 failures in a row could trip it)")
	}
	fmt.Fprintf(w, "\nburst done in %s\n\n", time.Since(start).Round(time.Millisecond))
	showOutage(ctx, w, client, proxy, ups, &trips)
	fmt.Fprintf(w, "\nthe ambassador keeps serving; try:\n  curl -i %s/hello\n  curl -s http://%s/status\n  curl -s http://%s/metrics\n(Ctrl-C to stop)\n",
		proxy, srv.AdminAddr(), srv.AdminAddr())

	select {
	case <-ctx.Done():
		stop()
		return <-runErr
	case err := <-runErr:
		return err
	}
}

// showOutage takes both upstreams down for demoOutageRequests requests sent
// one at a time through the ambassador at proxy, so that the breakers trip
// (3 failures in a row) and the ambassador answers for the upstreams
// (no_endpoints once every endpoint's breaker is open);
// then it brings them back, waits (up to 5s) until a request succeeds
// again, and writes what happened to w.
func showOutage(ctx context.Context, w io.Writer, c *http.Client, proxy string, ups *demoUpstreams, trips *atomic.Int64) {
	before := trips.Load()
	ups.down.Store(true)
	hits := ups.flakyHits.Load() + ups.slowHits.Load()
	self := map[string]int{} // X-Outbound-Error of the answers the ambassador made itself
	for range demoOutageRequests {
		if _, reason := demoGet(ctx, c, proxy+"/hello"); reason != "" {
			self[reason]++
		}
	}
	hits = ups.flakyHits.Load() + ups.slowHits.Load() - hits
	ups.down.Store(false)
	n, why := 0, []string{}
	for _, r := range slices.Sorted(maps.Keys(self)) {
		n += self[r]
		why = append(why, fmt.Sprintf("%s: %d", r, self[r]))
	}
	fmt.Fprintf(w, "outage: both upstreams answer 503 for %d requests: %d upstream attempts, breaker trips: %d, %d requests answered by the ambassador itself without an upstream (%s)\n",
		demoOutageRequests, hits, trips.Load()-before, n, strings.Join(why, ", "))
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for time.Since(start) < 5*time.Second && ctx.Err() == nil {
		if code, _ := demoGet(ctx, c, proxy+"/hello"); code == http.StatusOK {
			fmt.Fprintf(w, "upstreams back: the breakers let a probe through and the ambassador serves again after %s\n", time.Since(start).Round(time.Millisecond))
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	fmt.Fprintf(w, "breaker trips: %d\n", trips.Load())
}

// demoGet sends a GET to url and returns the status and X-Outbound-Error (0
// and "" when the request failed).
func demoGet(ctx context.Context, c *http.Client, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, ""
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, ""
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode, resp.Header.Get(proxy.HeaderError)
}

// demoUpstreams are the demo's two upstreams on loopback: the flaky one
// answers 503 to about a third of its requests, the other is sometimes
// slow; while down is set both answer 503 to everything. The hits count
// the requests each got.
type demoUpstreams struct {
	addrs               []string
	servers             []*http.Server
	flakyHits, slowHits atomic.Int64
	down                atomic.Bool
}

func startDemoUpstreams() (*demoUpstreams, error) {
	u := &demoUpstreams{}
	flaky := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u.flakyHits.Add(1)
		if u.down.Load() || rand.IntN(3) == 0 {
			http.Error(rw, "flaky upstream: try again", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(rw, "hello from the flaky upstream (%s)\n", r.URL.Path)
	})
	slow := http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		u.slowHits.Add(1)
		if u.down.Load() {
			http.Error(rw, "upstream down", http.StatusServiceUnavailable)
			return
		}
		if rand.IntN(5) == 0 {
			select {
			case <-time.After(50 * time.Millisecond):
			case <-r.Context().Done():
				return
			}
		}
		fmt.Fprintf(rw, "hello from the sometimes-slow upstream (%s)\n", r.URL.Path)
	})
	for _, h := range []http.Handler{flaky, slow} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			u.close()
			return nil, fmt.Errorf("demo upstream: %w", err)
		}
		srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
		u.servers = append(u.servers, srv)
		u.addrs = append(u.addrs, ln.Addr().String())
		go func() { _ = srv.Serve(ln) }()
	}
	return u, nil
}

func (u *demoUpstreams) close() {
	for _, srv := range u.servers {
		_ = srv.Close()
	}
}

// burst sends demoRequests GETs, eight at a time, and counts the 2xx answers.
func burst(ctx context.Context, c *http.Client, url func(i int) string) int {
	var ok atomic.Int64
	var wg sync.WaitGroup
	next := make(chan int)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, url(i), nil)
				if err != nil {
					continue
				}
				resp, err := c.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode < 300 {
					ok.Add(1)
				}
			}
		}()
	}
	for i := range demoRequests {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	return int(ok.Load())
}

func pct(n int) float64 { return 100 * float64(n) / demoRequests }

// tripCounting passes every instrument through to MeterProvider and counts
// the breaker transitions to open on the way.
type tripCounting struct {
	metric.MeterProvider
	trips *atomic.Int64
}

func (t tripCounting) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return tripMeter{Meter: t.MeterProvider.Meter(name, opts...), trips: t.trips}
}

type tripMeter struct {
	metric.Meter
	trips *atomic.Int64
}

func (m tripMeter) Int64Counter(name string, opts ...metric.Int64CounterOption) (metric.Int64Counter, error) {
	c, err := m.Meter.Int64Counter(name, opts...)
	if err != nil || name != "outbound.breaker.transitions" {
		return c, err
	}
	return tripCounter{Int64Counter: c, trips: m.trips}, nil
}

type tripCounter struct {
	metric.Int64Counter
	trips *atomic.Int64
}

func (c tripCounter) Add(ctx context.Context, incr int64, opts ...metric.AddOption) {
	attrs := metric.NewAddConfig(opts).Attributes()
	if v, ok := attrs.Value("to"); ok && v.AsString() == "open" {
		c.trips.Add(incr)
	}
	c.Int64Counter.Add(ctx, incr, opts...)
}
