// Command ambassador runs the outbound ambassador: a localhost reverse proxy
// that applies retry, rate limiting, discovery and circuit breaking to every
// request it forwards.
//
//	ambassador [-config FILE] [-check] [-log-format text|json] [-watch]
//
// Without -config it runs the embedded demo. Exit codes: 0 clean shutdown,
// 1 runtime failure, 2 bad flags or config. SIGTERM/SIGINT drain and exit;
// SIGHUP reloads the config, and so, with -watch, does a change of FILE
// itself (written in place, renamed over, or a Kubernetes ConfigMap's ..data
// symlink swapped), not of other files in its directory; events less than
// 100ms apart are one reload. /metrics counts reloads by result in
// outbound_config_reloads_total.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/outbound-go/outbound/ambassador/proxy"
)

// usageError marks bad flags or config: exit code 2.
type usageError struct{ error }

func main() {
	fs := flag.NewFlagSet("ambassador", flag.ContinueOnError)
	configPath := fs.String("config", "", "config `FILE`; without it the embedded demo runs")
	check := fs.Bool("check", false, "validate the config FILE, print every problem and exit (2 if any)")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	watch := fs.Bool("watch", false, "reload the config when FILE itself changes (as on SIGHUP; events under 100ms apart are one reload)")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this loopback `host:port` (off by default; for profiling only)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	setGCPercent()
	setMaxProcs()
	if *pprofAddr != "" {
		stopPprof, err := servePprof(*pprofAddr)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		defer stopPprof()
	}
	err := run(context.Background(), *configPath, *check, *logFormat, *watch, os.Stdout, os.Stderr)
	var ue usageError
	switch {
	case err == nil:
	case errors.As(err, &ue):
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "ambassador:", err)
		os.Exit(1)
	}
}

// defaultGCPercent is the GOGC the ambassador runs with unless the GOGC
// environment variable says otherwise. A proxy's live heap is small (a few
// MiB: routing tables, idle connections, pooled buffers) and its garbage is
// per-request, so the default of 100 collects very often for little memory
// saved; 400 cut the CPU per proxied request by about a tenth in
// benchmarks/proxy on a 2-core machine, for a heap of tens of MiB.
const defaultGCPercent = 400

// setGCPercent applies defaultGCPercent unless GOGC is set.
func setGCPercent() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(defaultGCPercent)
	}
}

// defaultMaxProcs is the GOMAXPROCS the ambassador runs with unless the
// GOMAXPROCS environment variable says otherwise. It runs beside an
// application and shares its machine: on one P it spent a quarter less CPU
// per proxied request at 32 connections and a third less at one (the idle
// second P's thread is woken and spins for every handoff) in
// benchmarks/proxy on a 2-core machine, and served more requests per
// second. One P caps the process at one core; a busy ambassador with cores
// to spare sets GOMAXPROCS.
const defaultMaxProcs = 1

// setMaxProcs applies defaultMaxProcs unless GOMAXPROCS is set.
func setMaxProcs() {
	if _, ok := os.LookupEnv("GOMAXPROCS"); !ok {
		runtime.GOMAXPROCS(defaultMaxProcs)
	}
}

func run(ctx context.Context, configPath string, check bool, logFormat string, watch bool, stdout, stderr io.Writer) error {
	// Log lines (one per request) are written by a background goroutine,
	// many per system call under load; what is pending is written on return.
	lw := newLogWriter(stderr)
	defer lw.Close()
	stderr = lw
	var h slog.Handler
	hopts := &slog.HandlerOptions{}
	if configPath == "" {
		hopts.Level = slog.LevelWarn // the demo's summary, not 400 access-log lines
	}
	switch logFormat {
	case "text":
		h = slog.NewTextHandler(stderr, hopts)
	case "json":
		h = slog.NewJSONHandler(stderr, hopts)
	default:
		return usageError{fmt.Errorf("-log-format: want text or json, got %q", logFormat)}
	}
	logger := slog.New(h)
	if check && configPath == "" {
		return usageError{errors.New("-check needs -config FILE")}
	}

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
	defer stop()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	exporter, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return err
	}
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exporter))
	defer func() { _ = mp.Shutdown(context.Background()) }()
	opts := []proxy.ServerOption{
		proxy.WithServerLogger(logger),
		proxy.WithServerMeterProvider(mp),
		proxy.WithMetricsHandler(promhttp.HandlerFor(reg, promhttp.HandlerOpts{})),
	}

	if configPath == "" {
		return proxy.RunDemo(ctx, stdout, opts...)
	}
	cfg, err := proxy.LoadConfig(configPath)
	if err != nil {
		return usageError{err}
	}
	if check {
		fmt.Fprintln(stdout, "config OK")
		return nil
	}
	srv, err := proxy.NewServer(cfg, opts...)
	if err != nil {
		return usageError{err}
	}

	r, err := newReloader(configPath, srv, logger, mp)
	if err != nil {
		return err
	}
	return r.serve(ctx, watch)
}
