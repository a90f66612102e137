// Command soak runs the real ambassador binary under mixed traffic for a
// while (10 minutes by default) and fails when its goroutines, open file
// descriptors or resident memory keep growing.
//
//	cd benchmarks && go run ./soak [-duration 10m] [-interval 10s] [-workers 24] [-rps 400]
//
// It builds ./examples/ambassador (or runs -ambassador BIN), starts four
// upstreams on 127.0.0.1 in its own process (fast; slow, 50–200 ms; failing,
// 503 and 500 in turn; reset, a raw TCP server that closes the connection
// before answering or in the middle of a response) and runs the ambassador
// on a generated config: a routed listener and a one-service listener,
// services with retry (per-try timeout, hedging), breakers that trip and
// recover, a rate limit, a weighted split and an h2c upstream; the admin
// listener on a free loopback port.
//
// Traffic: -workers goroutines, together at most -rps requests per second
// (so at most rps × duration requests), each request bounded by -timeout;
// HTTP/1.1 on keep-alive connections (50 %), HTTP/1.1 on a new connection
// per request (20 %) and h2c with prior knowledge (30 %); GET (70 %) and
// POST with a 1–32 KiB body (30 %); answers of 64 B to 16 KiB.
//
// Every -interval it samples the ambassador process: goroutines (go_goroutines
// from the admin /metrics), open fds (/proc/PID/fd) and RSS (VmRSS of
// /proc/PID/status), each the minimum of 5 readings 200 ms apart (RSS: the
// last), and prints a row: elapsed, requests so far, req/s in the
// interval, 2xx so far, goroutines, fds, RSS, and the non-2xx answers and
// failures so far by status code and kind. The baseline is the sample at
// 20 % of the duration (the end of the second minute of the default run),
// the last sample is taken at the end while traffic still runs; the
// verdict fails when any of the three grew between them by more than
// max(10 %, a small absolute slack): 16 + workers goroutines, 8 + workers/2
// fds (40 and 20 at the default 24 workers), 4 MiB of RSS, since requests
// in flight (a few goroutines and sockets each) and the ambassador's
// upstream pools come and go between samples. Then the ambassador gets
// SIGTERM and must exit with status 0 within its drain_timeout (5 s) plus
// 5 s.
//
// Exit status: 0 all well, 1 growth, an unclean exit or a failure of the
// soak itself, 2 bad flags. Everything binds 127.0.0.1 only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// options are the command-line flags.
type options struct {
	duration, interval, timeout time.Duration
	workers                     int
	rps                         float64
	bin                         string
}

func main() {
	var o options
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.DurationVar(&o.duration, "duration", 10*time.Minute, "how long traffic runs")
	fs.DurationVar(&o.interval, "interval", 10*time.Second, "time between samples")
	fs.DurationVar(&o.timeout, "timeout", 5*time.Second, "timeout of each request")
	fs.IntVar(&o.workers, "workers", 24, "concurrent client workers")
	fs.Float64Var(&o.rps, "rps", 400, "requests per second, all workers together")
	fs.StringVar(&o.bin, "ambassador", "", "ambassador binary to run; \"\" builds ./examples/ambassador")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if err := o.validate(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(2)
	}
	if err := run(o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

// validate names the first flag with a value the soak cannot use.
func (o options) validate() error {
	switch {
	case o.duration <= 0:
		return fmt.Errorf("-duration %s: must be positive", o.duration)
	case o.interval <= 0 || o.interval > o.duration:
		return fmt.Errorf("-interval %s: must be positive and at most -duration (%s)", o.interval, o.duration)
	case o.timeout <= 0:
		return fmt.Errorf("-timeout %s: must be positive", o.timeout)
	case o.workers < 1 || o.workers > 1024:
		return fmt.Errorf("-workers %d: must be 1 to 1024", o.workers)
	case !(o.rps > 0): // NaN too
		return fmt.Errorf("-rps %v: must be positive", o.rps)
	}
	return nil
}

// errGrowth is returned when the verdict or the exit check failed.
var errGrowth = errors.New("soak failed")

func run(o options, out io.Writer) error {
	// SIGINT or SIGTERM ends the soak early; the deferred clean-up below
	// still stops the ambassador and removes the scratch directory.
	sigCtx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	dir, err := os.MkdirTemp("", "outbound-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.bin
	if bin == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		bin, err = buildAmbassador(ctx, dir)
		cancel()
		if err != nil {
			return err
		}
	}
	ups, err := startUpstreams()
	if err != nil {
		return err
	}
	defer ups.close()
	amb, err := startAmbassador(bin, dir, ups)
	if err != nil {
		return err
	}
	defer amb.kill()
	admin := &http.Client{Transport: &http.Transport{DialContext: dialLoopback}, Timeout: 5 * time.Second}
	defer admin.CloseIdleConnections()
	if err := amb.waitReady(context.Background(), admin, 15*time.Second); err != nil {
		return err
	}
	fmt.Fprintf(out, "soak: ambassador pid %d, listeners %s %s, admin %s; %s of traffic, %d workers, <= %.0f req/s; load average %s\n",
		amb.pid(), amb.addrs.routes, amb.addrs.single, amb.addrs.admin, o.duration, o.workers, o.rps, loadavg())
	return soak(sigCtx, o, out, amb, admin, ups)
}

// soak runs the traffic, samples, stops the ambassador and judges.
func soak(sigCtx context.Context, o options, out io.Writer, amb *ambassador, admin *http.Client, ups *upstreams) error {
	l := &load{
		amb:     amb.addrs,
		clients: newClients(o.workers),
		limiter: rate.NewLimiter(rate.Limit(o.rps), 1),
		timeout: o.timeout,
		bodies:  requestBodies(),
	}
	defer l.clients.closeIdle()
	ctx, stopLoad := context.WithCancel(context.Background())
	defer stopLoad()
	sm := &sampler{admin: admin, amb: amb, counts: &l.counts}
	first, err := sm.take() // before the traffic
	if err != nil {
		return err
	}
	printHeader(out)
	printRow(out, first, first)
	loadDone := make(chan struct{})
	sm.start = time.Now()
	go func() {
		defer close(loadDone)
		l.run(ctx, o.workers)
	}()
	samples, err := sm.loop(sigCtx, o, out, ups, first)
	stopLoad() // no new requests; SIGTERM while the last ones finish
	took, stopErr := amb.stop(drainTimeout + exitGrace)
	<-loadDone
	if err != nil {
		return err
	}
	final := l.counts.snapshot()
	fmt.Fprintf(out, "\ntotal %d requests, %d 2xx, other: %s; load average %s\n", final.total, final.ok(), final.failures(), loadavg())
	l.counts.mu.Lock()
	for k, msg := range l.counts.firstErrs {
		fmt.Fprintf(out, "  first %s: %s\n", errKindNames[k], msg)
	}
	l.counts.mu.Unlock()
	return judge(o, out, samples, final, took, stopErr)
}

// judge prints the verdict and returns errGrowth when it failed.
func judge(o options, out io.Writer, samples []sample, final snapshot, took time.Duration, stopErr error) error {
	base, ok := baseline(samples, o.duration, 0.2)
	if !ok {
		return fmt.Errorf("no sample at 20%% of %s", o.duration)
	}
	last := samples[len(samples)-1]
	fmt.Fprintf(out, "growth from the sample at 20%% of the run to the last (allowed: max(%.0f%%, slack)):\n", 100*maxGrowth)
	pass := verdict(out, o.workers, base, last)
	if final.ok() == 0 {
		fmt.Fprintln(out, "  no request got a 2xx answer: the soak measured nothing")
		pass = false
	}
	if stopErr != nil {
		fmt.Fprintf(out, "  shutdown: %v\n", stopErr)
		pass = false
	} else {
		fmt.Fprintf(out, "  shutdown: SIGTERM -> exit status 0 in %s (bound %s)\n", took.Round(time.Millisecond), drainTimeout+exitGrace)
	}
	if !pass {
		fmt.Fprintln(out, "verdict: FAIL")
		return errGrowth
	}
	fmt.Fprintln(out, "verdict: PASS")
	return nil
}

// sampler samples the ambassador process during the traffic.
type sampler struct {
	admin  *http.Client
	amb    *ambassador
	counts *counts
	start  time.Time // of the traffic
}

// take samples the process now (a burst of readings, see takeSample),
// with the requests counted at its start.
func (sm *sampler) take() (sample, error) {
	var elapsed time.Duration
	if !sm.start.IsZero() {
		elapsed = time.Since(sm.start)
	}
	reqs := sm.counts.snapshot()
	s, err := takeSample(context.Background(), sm.admin, sm.amb.addrs.admin, sm.amb.pid())
	s.elapsed, s.reqs = elapsed, reqs
	return s, err
}

// loop takes a sample at every scheduled time (each interval, 20 % of the
// run, its end), printing each after first; it stops early when the
// ambassador exits, an upstream fails or ctx ends (a signal).
func (sm *sampler) loop(ctx context.Context, o options, out io.Writer, ups *upstreams, first sample) ([]sample, error) {
	samples := []sample{first}
	for _, at := range schedule(o.duration, o.interval, 0.2) {
		t := time.NewTimer(time.Until(sm.start.Add(at)))
		select {
		case <-ctx.Done():
			t.Stop()
			return samples, errors.New("interrupted: no verdict")
		case <-sm.amb.done:
			t.Stop()
			return samples, fmt.Errorf("ambassador exited during the soak (%v):\n%s", sm.amb.err, sm.amb.log)
		case <-t.C:
		}
		if err := ups.err(); err != nil {
			return samples, err
		}
		s, err := sm.take()
		if err != nil {
			return samples, err
		}
		printRow(out, samples[len(samples)-1], s)
		samples = append(samples, s)
	}
	return samples, nil
}

// schedule is the sample times after the start: every interval up to d,
// frac of d, and d itself, sorted and without duplicates.
func schedule(d, interval time.Duration, frac float64) []time.Duration {
	var at []time.Duration
	for t := interval; t < d; t += interval {
		at = append(at, t)
	}
	at = append(at, time.Duration(float64(d)*frac), d)
	slices.Sort(at)
	return slices.Compact(at)
}

// loadavg is the first three fields of /proc/loadavg, or "?".
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
